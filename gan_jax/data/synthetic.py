"""A synthetic image dataset held in memory: `data.synthetic_examples` random
uint8 images of shape `data.synthetic_shape` (and labels 0..9), for
benchmarks and checks on machines without TensorFlow or any dataset.

The images are drawn once from a fixed seed (a dataset does not change with
the run's seed), kept in memory and served exactly as the TFDS image datasets
are (`gan_jax.data.images`): gathered by position from a per-epoch
permutation of the run's seed (`gan_jax.data.order`), flips drawn from (seed,
batch index), batches leaving the host as uint8 and finished by
`images.finish_on_host` / `images.finish_on_device`. So resume is exact and
the input path is the one a real run takes, with no TensorFlow imported.
"""
import functools
from typing import Dict, Iterator, Tuple

import numpy as np

from gan_jax.data import images, order

NAME = 'synthetic'
NUM_CLASSES = 10
# Fixed: every run (and sweep member) sees the same images.
_DATA_SEED = 20261202


def shape(data_config) -> Tuple[int, int, int]:
    """(H, W, C) of the images: data.synthetic_shape."""
    return tuple(int(n) for n in data_config.synthetic_shape)


def check(data_config) -> str:
    """'' when data.synthetic_shape and data.synthetic_examples are valid, else
    a one-line message naming the key."""
    value = tuple(data_config.synthetic_shape)
    if len(value) != 3 or not all(isinstance(n, int) and n > 0 for n in value):
        return (f'data.synthetic_shape must be three positive integers (H, W, C), '
                f'got {value!r}')
    if data_config.synthetic_examples < 1:
        return (f'data.synthetic_examples must be >= 1, got '
                f'{data_config.synthetic_examples}')
    return ''


@functools.lru_cache(maxsize=4)
def _arrays(image_shape: Tuple[int, int, int], num: int
            ) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([_DATA_SEED, num, *image_shape])
    x = rng.integers(0, 256, size=(num,) + image_shape, dtype=np.uint8)
    y = rng.integers(0, NUM_CLASSES, size=num).astype(np.int32)
    return x, y


def load_split(data_config) -> Tuple[np.ndarray, np.ndarray]:
    """The whole dataset: (images uint8 [N, H, W, C] in 0..255, labels int32
    [N] in 0..9), N = data.synthetic_examples; the same arrays on every call."""
    return _arrays(shape(data_config), int(data_config.synthetic_examples))


def raw_batches(config, *, start_batch: int = 0, process_index: int = 0,
                process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
    """Endless batches as stored, in the form of `images.raw_batches`: this
    process's slice of each global batch.

    Yields:
      {'x': uint8 [n_critic, B / process_count, H, W, C], 'flip': bool
       [n_critic, B / process_count] (only with data.random_flip), 'label':
       int32 [n_critic, B / process_count] (only with data.labels)}.
    """
    dc = config.data
    x_all, y_all = load_split(dc)
    per_update = config.batch_size
    local = per_update // process_count
    lo, hi = process_index * local, (process_index + 1) * local
    size = config.n_critic * per_update
    index = start_batch
    while True:
        # The positions and flips of images.raw_batches, so a synthetic run
        # reads its data exactly as a TFDS run of the same seed would.
        idx = order.epoch_indices(len(x_all), config.seed, index * size, size)
        idx = idx.reshape(config.n_critic, per_update)[:, lo:hi]
        batch = {}
        if dc.random_flip:
            batch['flip'] = np.random.default_rng([config.seed, 4, index]).random(
                (config.n_critic, per_update))[:, lo:hi] < 0.5
        batch['x'] = x_all[idx]
        if dc.labels:
            batch['label'] = y_all[idx]
        yield batch
        index += 1


def batches(config, *, start_batch: int = 0, process_index: int = 0,
            process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
    """`raw_batches` finished on the host (`images.finish_on_host`): {'x':
    float32 [n_critic, B / process_count, H, W, C] in [-1, 1]} (+ 'label')."""
    for raw in raw_batches(config, start_batch=start_batch,
                           process_index=process_index, process_count=process_count):
        yield images.finish_on_host(raw)
