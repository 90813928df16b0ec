"""Feature extractors by name, reference statistics of real data (computed once
and cached on disk), and the features of generated samples.

Extractors: 'inception' (pytorch-fid's InceptionV3, 2048-d pool3 features,
images resized to 299 by PyTorch bilinear; needs converted weights, see
gan_jax/metrics/inception.py) and 'digits' (the LeNet digit classifier, 128-d,
offline). Each maps images [N, H, W, C] in [-1, 1] to {'pool': [N, d],
'logits': [N, K]} and has a `name` that goes into every cache key.

Several processes share the work: each generates and featurizes its
contiguous share of the rows (`parallel.process_share`), and the statistics
(count, sum, sum of outer products, float64) or, where a metric needs them,
the features themselves are joined across processes (`FeatureSet`). Every
process then holds the same numbers; on one process nothing is gathered and
the computation is the one-process one, operation for operation.
"""
import functools
import inspect
import logging
import os
from typing import Callable, Dict, Optional, Tuple

import jax
import numpy as np

from gan_jax import parallel
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


def split_rows(num: int) -> Tuple[int, int]:
    """This process's rows [lo, hi) of `num` rows to featurize: its
    `parallel.process_share`, or all of them on one process or when there
    are fewer rows than processes (then each process does the whole work and
    nothing is gathered)."""
    if jax.process_count() == 1 or num < jax.process_count():
        return 0, num
    return parallel.process_share(num)


class FeatureSet:
    """Features of `num` rows, of which this process computed rows [lo, hi).

    `stats(key)` and `gathered(key)` are collectives when the rows are split
    (every process must ask for the same keys in the same order; the
    evaluators do), computed once each; `fs['pool']` is `gathered('pool')`.
    """

    def __init__(self, local: Dict[str, np.ndarray], num: int, rows: Tuple[int, int]):
        """
        Args:
          local: {'pool': [hi - lo, d], 'logits': [hi - lo, ...]}.
          num: rows over all processes.
          rows: (lo, hi) of this process; (0, num) when not split.
        """
        self.local, self.num, self.rows = local, num, tuple(rows)
        self.split = self.rows != (0, num)
        self._stats: Dict[str, StreamingStats] = {}
        self._gathered: Dict[str, np.ndarray] = {}

    def stats(self, key: str = 'pool') -> StreamingStats:
        """Mean and covariance statistics of all `num` rows of features[key]
        ([num, d]), merged over the processes in process order."""
        if key not in self._stats:
            local = self.local[key]
            stats = StreamingStats(local.shape[1])
            stats.update(local)
            if self.split:
                parts = {k: parallel.allgather(v)
                         for k, v in stats.to_arrays().items()}
                stats = StreamingStats(local.shape[1])
                for i in range(len(parts['count'])):
                    stats.merge(StreamingStats.from_arrays(
                        {k: v[i] for k, v in parts.items()}))
            self._stats[key] = stats
        return self._stats[key]

    def gathered(self, key: str) -> np.ndarray:
        """features[key] of all `num` rows, in order ([num, ...])."""
        if key not in self._gathered:
            local = self.local[key]
            self._gathered[key] = (parallel.allgather_rows(local) if self.split
                                   else local)
        return self._gathered[key]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.gathered(key)


def _takes_rows(fn: Callable) -> bool:
    try:
        return 'rows' in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read (builtins)
        return False


def sample_rows(sample_fn: Callable[..., np.ndarray], num: int, seed: int,
                rows: Tuple[int, int]) -> np.ndarray:
    """Rows [lo, hi) of sample_fn(num, seed).

    A sample_fn with a `rows=(lo, hi)` keyword generates only those rows
    (it draws the latents of all `num` and keeps rows lo..hi, so the share
    is the same whatever the process count); any other is called for all
    `num` and sliced. rows = (0, num) is the plain call.
    """
    lo, hi = rows
    if (lo, hi) == (0, num):
        return sample_fn(num, seed)
    if _takes_rows(sample_fn):
        return sample_fn(num, seed, rows=(lo, hi))
    return np.asarray(sample_fn(num, seed))[lo:hi]


def image_stats(extractor, images: np.ndarray, *,
                max_features: int = MAX_REFERENCE_FEATURES
                ) -> Dict[str, np.ndarray]:
    """Statistics of images [N, H, W, C] (uint8 or float in [-1, 1]) in
    `extractor`'s features, the work split over processes (`split_rows`).

    Returns:
      {'mean': [d] float64, 'cov': [d, d] float64, 'count': () int,
       'features': [min(N, max_features), d] float32 (the rows of a seeded
       random subset, in order), 'logits': the same rows' logits}.
    """
    num = len(images)
    lo, hi = split_rows(num)
    out = FeatureSet(extract(extractor, images[lo:hi]), num, (lo, hi))
    stats = out.stats('pool')
    keep = np.sort(np.random.default_rng(0).permutation(num)[:max_features])
    mine = keep[(keep >= lo) & (keep < hi)] - lo
    kept = {k: parallel.allgather_rows(v[mine]) if out.split else v[mine]
            for k, v in out.local.items()}
    return {'mean': stats.mean(), 'cov': stats.cov(), 'count': np.asarray(num),
            'features': kept['pool'].astype(np.float32),
            'logits': kept['logits'].astype(np.float32)}


def _all_processes(flag: bool) -> bool:
    """True when `flag` holds on every process (a collective when several)."""
    return bool(parallel.allgather(np.bool_(flag)).all())


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

    Computed once (the work split over processes, see `image_stats`) and
    cached under cache_dir()/reference/, keyed by dataset, split, image shape
    (and CelebA crop) and extractor name (which names its resize method).
    Every process writes the cache file (through its own temporary file, so
    processes sharing a file system never read a partial one); the cache is
    used only when every process can read it, so that all take part in a
    computation or none does.

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
    from gan_jax.data import folder, images as images_lib
    if dataset not in images_lib.TFDS_DATASETS + (folder.NAME,):
        raise ValueError(f'no reference images for dataset {dataset!r}: feature '
                         f'metrics compare with one of '
                         f'{", ".join(images_lib.TFDS_DATASETS + (folder.NAME,))}')
    shape = images_lib.output_shape(data_config, dataset)
    crop = data_config.crop if dataset == 'celeb_a' else 0
    # A folder is its own reference (all its images, whatever `split`),
    # cached under its content key: an edited folder gets new statistics.
    cached_name = (f'folder-{folder.content_key(data_config)}'
                   if dataset == folder.NAME else dataset)
    path = cache_path(cached_name, 'all' if dataset == folder.NAME else split,
                      shape, crop, extractor.name)
    cached: Optional[Dict[str, np.ndarray]] = None
    if os.path.exists(path):
        try:
            with np.load(path) as f:
                cached = {k: f[k] for k in f.files}
        except Exception as e:  # a partial or corrupt cache file is recomputed
            log.warning('cannot read cached reference statistics %s (%s); '
                        'recomputing them', path, e)
    if _all_processes(cached is not None):
        return cached
    real, _ = images_lib.load_split(data_config, dataset, split)
    log.info('computing reference statistics of %s/%s (%d images) in %s features',
             dataset, split, len(real), extractor.name)
    result = image_stats(extractor, real)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp{jax.process_index()}.npz'
    np.savez(tmp, **result)
    os.replace(tmp, path)
    return result


class SampleFeatures:
    """Features of generated samples, computed once per (sample_fn, extractor,
    num, seed): several evaluators in one evaluation round share them.

    Each process generates and featurizes its share of the `num` samples
    (`split_rows`, `sample_rows`); the result is a `FeatureSet`.
    """

    def __init__(self):
        self._key = None
        self._value = None

    def __call__(self, sample_fn: Callable[..., np.ndarray], extractor,
                 num: int, seed: int) -> FeatureSet:
        """The FeatureSet of sample_fn(num, seed): fs['pool'] [num, d],
        fs['logits'] [num, K], fs.stats('pool')."""
        # The key holds sample_fn itself, so its id cannot be reused while cached.
        key = (sample_fn, extractor.name, num, seed)
        if self._key != key:
            self._value = None  # free the previous round's features first
            rows = split_rows(num)
            local = extract(extractor, sample_rows(sample_fn, num, seed, rows))
            self._value = FeatureSet(local, num, rows)
            self._key = key
        return self._value


sample_features = SampleFeatures()
