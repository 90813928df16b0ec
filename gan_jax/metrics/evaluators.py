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
"""
from typing import Callable, Iterator, Tuple

import numpy as np

from gan_jax.metrics import classifier, features as features_lib
from gan_jax.metrics.fid import StreamingStats, frechet_distance, \
    kernel_inception_distance
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
        fake = StreamingStats(ref['mean'].shape[0])
        fake.update(self._fake(sample_fn)['pool'])
        yield 'fid', frechet_distance(fake.mean(), fake.cov(), ref['mean'], ref['cov'])


class KID(_FeatureMetric):
    """Kernel inception distance (mean and std over 100 subsets of ≤ 1000)."""

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        result = kernel_inception_distance(self._fake(sample_fn)['pool'],
                                           self._reference()['features'])
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
    """Inception score of the samples (10 splits); with features='digits' the
    classifier's 10 classes replace Inception's 1008."""

    def run(self, sample_fn: SampleFn) -> Iterator[Tuple[str, float]]:
        logits = self._fake(sample_fn)['logits'].astype(np.float64)
        if logits.ndim != 2:
            raise ValueError('the inception score needs one label per image; '
                             'use stacked_modes for Stacked MNIST')
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        mean, std = inception_score(probs)
        yield 'is', mean
        yield 'is_std', std


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
