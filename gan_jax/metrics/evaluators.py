"""Feature-metric evaluators: FID, KID, precision/recall and the Inception
score of generated samples against a real dataset split, plus the mode count
of Stacked MNIST.

Every evaluator takes (info, config, **arguments from config.evals[name]) and
has run(sample_fn) yielding (metric, value). Arguments shared by the feature
metrics:
  features: 'inception' (pytorch-fid's network; comparable with published
    numbers) or 'digits' (the offline digit classifier).
  num_samples: generated samples scored.
  split: the real split they are compared with.
  seed: latent seed of the samples.

With several processes each one generates and featurizes its share of the
samples (`features.SampleFeatures`); FID merges the processes' statistics,
KID, precision/recall and IS gather the features. Every process computes the
same values; process 0's record is the one written (workdir.Workdir).
"""
from typing import Callable, Iterator, Tuple

import numpy as np

from gan_jax.metrics import classifier, features as features_lib
from gan_jax.metrics.fid import frechet_distance, kernel_inception_distance
from gan_jax.metrics.inception_score import inception_score
from gan_jax.metrics.precision_recall import precision_recall

SampleFn = Callable[[int, int], np.ndarray]


class _FeatureMetric:
    """Base: samples -> features -> a metric against the reference split."""

    def __init__(self, info, config, *, features: str = 'inception',
                 num_samples: int = 10_000, split: str = 'train', seed: int = 0):
        if info.kind != 'images':
            raise ValueError(f'feature metrics need an image dataset, not '
                             f'{config.dataset!r}')
        if features not in features_lib.EXTRACTORS:
            raise ValueError(f'unknown features {features!r}; valid: '
                             f'{", ".join(features_lib.EXTRACTORS)}')
        if features == 'digits' and info.shape[-1] != 1:
            # Refused at start-up, not at the first evaluation.
            raise ValueError(
                f'digit features read one-channel images, but dataset '
                f'{config.dataset!r} gives {info.shape[-1]} channels: set '
                "--config.data.channels=1 (dataset folder), features='inception' "
                'or --config.evals=none')
        if features == 'inception':
            # Built (and its weights loaded) now, so that missing weights stop
            # the run at start-up rather than at its first evaluation.
            try:
                features_lib.get_extractor('inception')
            except FileNotFoundError as e:
                raise ValueError(f"features='inception': {e} Or use features='digits' "
                                 '(digit-like data) or --config.evals=none') from None
        self.features, self.num_samples = features, int(num_samples)
        self.split, self.seed = split, seed
        self.dataset, self.data_config = config.dataset, config.data

    def _extractor(self):
        return features_lib.get_extractor(self.features)

    def _reference(self):
        return features_lib.reference_stats(self.data_config, self.dataset,
                                            self.split, self._extractor())

    def _fake(self, sample_fn: SampleFn):
        return features_lib.sample_features(sample_fn, self._extractor(),
                                            self.num_samples, self.seed)


class FID(_FeatureMetric):
    """Fréchet distance between the samples' and the split's features."""

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        ref = self._reference()
        # Merged over processes: each featurized its share of the samples.
        fake = self._fake(sample_fn).stats('pool')
        yield 'fid', frechet_distance(fake.mean(), fake.cov(), ref['mean'], ref['cov'])


class KID(_FeatureMetric):
    """Kernel inception distance: mean and std over `num_subsets` random
    subsets of `subset_size` rows of each set.

    Yields kid, kid_std, and subset_size and num_subsets as used: subset_size
    is the smaller set's size when a set has fewer rows (with a warning from
    `kernel_inception_distance`), so the record shows when kid_std comes from
    overlapping or identical subsets.
    """

    def __init__(self, info, config, *, num_subsets: int = 100,
                 subset_size: int = 1000, **kwargs):
        super().__init__(info, config, **kwargs)
        self.num_subsets, self.subset_size = int(num_subsets), int(subset_size)
        # Refused here, at configuration time, rather than at the first
        # evaluation hours into training.
        if self.subset_size < 2 or self.num_subsets < 1:
            raise ValueError(f'kid needs subset_size >= 2 and num_subsets >= 1, got '
                             f'{self.subset_size} and {self.num_subsets}')

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        result = kernel_inception_distance(self._fake(sample_fn)['pool'],
                                           self._reference()['features'],
                                           num_subsets=self.num_subsets,
                                           subset_size=self.subset_size)
        yield from result.items()


class PrecisionRecall(_FeatureMetric):
    """Improved precision and recall, k = 3 (at most 10,000 reference rows)."""

    def __init__(self, info, config, *, k: int = 3, **kwargs):
        super().__init__(info, config, **kwargs)
        self.k = k

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        result = precision_recall(self._reference()['features'],
                                  self._fake(sample_fn)['pool'], k=self.k)
        yield from result.items()


class InceptionScore(_FeatureMetric):
    """Inception score of the samples over `splits` consecutive parts (split i
    holds samples i·N//splits .. (i+1)·N//splits, see
    `inception_score.split_bounds`); with features='digits' the classifier's
    10 classes replace Inception's 1008. Yields is, is_std, and splits and
    num_samples, which fix the boundaries."""

    def __init__(self, info, config, *, splits: int = 10, **kwargs):
        super().__init__(info, config, **kwargs)
        self.splits = int(splits)
        if not 1 <= self.splits <= self.num_samples:
            raise ValueError(f'is needs 1 <= splits <= num_samples, got splits = '
                             f'{self.splits} for {self.num_samples} samples: raise '
                             f'num_samples or lower splits')

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        logits = self._fake(sample_fn)['logits'].astype(np.float64)
        if logits.ndim != 2:
            raise ValueError('the inception score needs one label per image; '
                             'use stacked_modes for Stacked MNIST')
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        mean, std = inception_score(probs, splits=self.splits)
        yield 'is', mean
        yield 'is_std', std
        yield 'splits', self.splits
        yield 'num_samples', len(probs)


class StackedModes:
    """Stacked MNIST modes (VEEGAN/PacGAN protocol): each channel of
    `num_samples` samples is read by the digit classifier; a mode (one of
    1,000 digit triples) is covered when at least one sample falls in it;
    reverse KL(p_gen ‖ uniform over 1,000)."""

    def __init__(self, info, config, *, num_samples: int = 26_000, seed: int = 0):
        if info.shape[-1] != 3 or config.dataset != 'stacked_mnist':
            raise ValueError('stacked_modes needs the stacked_mnist dataset')
        self.num_samples, self.seed = int(num_samples), seed

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        extractor = features_lib.get_extractor('digits')
        logits = features_lib.sample_features(sample_fn, extractor,
                                              self.num_samples, self.seed)['logits']
        yield from stacked_mode_metrics(np.argmax(logits, -1)).items()


def stacked_mode_metrics(digits: np.ndarray):
    """digits: [N, 3] per-channel classes -> {'modes': covered modes in
    [0, 1000], 'kl': KL(p_gen ‖ uniform) in [0, log 1000]}."""
    counts = np.bincount(classifier.stacked_modes(digits), minlength=1000)
    p = counts / counts.sum()
    nz = p > 0
    return {'modes': int(np.sum(counts > 0)),
            'kl': float(np.sum(p[nz] * np.log(p[nz] * 1000)))}
