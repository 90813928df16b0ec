"""Feature extractors by name, reference statistics of real data (computed once
and cached on disk), and the features of generated samples.

Extractors: 'inception' (pytorch-fid's InceptionV3, 2048-d pool3 features,
images resized to 299 by PyTorch bilinear; needs converted weights, see
gan_jax/metrics/inception.py) and 'digits' (the LeNet digit classifier, 128-d,
offline). Each maps images [N, H, W, C] in [-1, 1] to {'pool': [N, d],
'logits': [N, K]} and has a `name` that goes into every cache key.
"""
import functools
import logging
import os
from typing import Callable, Dict

import numpy as np

from gan_jax.metrics import classifier
from gan_jax.metrics.fid import StreamingStats

log = logging.getLogger(__name__)

EXTRACTORS = ('inception', 'digits')
# Rows of reference features kept for KID and precision/recall (the mean and
# covariance always use the whole split).
MAX_REFERENCE_FEATURES = 10_000


@functools.lru_cache(maxsize=None)
def get_extractor(name: str):
    """The feature extractor called `name` (built once per process).

    Raises:
      ValueError: unknown name.
      FileNotFoundError: 'inception' without converted weights (the message
        says how to get them).
    """
    if name == 'digits':
        return classifier.DigitFeatures()
    if name == 'inception':
        from gan_jax.metrics import inception
        return inception.FeatureExtractor()
    raise ValueError(f'unknown feature extractor {name!r}; valid: '
                     f'{", ".join(EXTRACTORS)}')


def extract(extractor, images: np.ndarray, batch_size: int = 1000
            ) -> Dict[str, np.ndarray]:
    """Features of images [N, H, W, C] (uint8 in 0..255 or float in [-1, 1]),
    in chunks of `batch_size` so large sets never sit in memory as floats."""
    from gan_jax.data.images import to_float
    outs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        if chunk.dtype == np.uint8:
            chunk = to_float(chunk)
        outs.append(extractor(chunk))
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def cache_path(dataset: str, split: str, shape, crop: int, extractor_name: str
                ) -> str:
    """The cache file of a split's reference features for one extractor."""
    size = 'x'.join(str(s) for s in shape)
    crop_part = f'-crop{crop}' if crop else ''
    return os.path.join(classifier.cache_dir(), 'reference',
                        f'{dataset}-{split}-{size}{crop_part}-{extractor_name}.npz')


def reference_stats(data_config, dataset: str, split: str, extractor
                    ) -> Dict[str, np.ndarray]:
    """Statistics of the real images of a dataset split in `extractor`'s features.

    Computed once and cached under cache_dir()/reference/, keyed by dataset,
    split, image shape (and CelebA crop) and extractor name (which names its
    resize method).

    Args:
      data_config: config.data (data_dir, image_size, crop, download).
      dataset: a TFDS image dataset name; split: e.g. 'train' or 'test'.
    Returns:
      {'mean': [d] float64, 'cov': [d, d] float64, 'count': () int,
       'features': [min(count, 10000), d] float32 (a seeded random subset, for
       KID and precision/recall), 'logits': the same rows' logits}.
    Raises:
      ValueError: dataset has no real images to compare against.
      DataError: dataset not prepared.
    """
    from gan_jax.data import images as images_lib
    if dataset not in images_lib.TFDS_DATASETS:
        raise ValueError(f'no reference images for dataset {dataset!r}: feature '
                         f'metrics compare with one of '
                         f'{", ".join(images_lib.TFDS_DATASETS)}')
    shape = images_lib.output_shape(data_config, dataset)
    crop = data_config.crop if dataset == 'celeb_a' else 0
    path = cache_path(dataset, split, shape, crop, extractor.name)
    if os.path.exists(path):
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except Exception as e:  # a partial or corrupt cache file is recomputed
            log.warning('cannot read cached reference statistics %s (%s); '
                        'recomputing them', path, e)
    real, _ = images_lib.load_split(data_config, dataset, split)
    log.info('computing reference statistics of %s/%s (%d images) in %s features',
             dataset, split, len(real), extractor.name)
    out = extract(extractor, real)
    stats = StreamingStats(out['pool'].shape[1])
    stats.update(out['pool'])
    keep = np.sort(np.random.default_rng(0).permutation(len(real))
                   [:MAX_REFERENCE_FEATURES])
    result = {'mean': stats.mean(), 'cov': stats.cov(), 'count': np.asarray(len(real)),
              'features': out['pool'][keep].astype(np.float32),
              'logits': out['logits'][keep].astype(np.float32)}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp.npz'
    np.savez(tmp, **result)
    os.replace(tmp, path)
    return result


class SampleFeatures:
    """Features of generated samples, computed once per (sample_fn, extractor,
    num, seed): several evaluators in one evaluation round share them."""

    def __init__(self):
        self._key = None
        self._value = None

    def __call__(self, sample_fn: Callable[[int, int], np.ndarray], extractor,
                 num: int, seed: int) -> Dict[str, np.ndarray]:
        """{'pool': [num, d], 'logits': [num, K]} of sample_fn(num, seed)."""
        # The key holds sample_fn itself, so its id cannot be reused while cached.
        key = (sample_fn, extractor.name, num, seed)
        if self._key != key:
            self._value = None  # free the previous round's features first
            self._value = extract(extractor, sample_fn(num, seed))
            self._key = key
        return self._value


sample_features = SampleFeatures()
