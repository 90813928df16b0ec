"""Fréchet distance (Heusel et al. 2017, FID) and kernel inception distance
(Bińkowski et al. 2018, KID) on feature vectors, in float64 numpy.

Features arrive in batches; `StreamingStats` accumulates their mean and
covariance without dropping any sample (a final partial batch counts like the
others), so the statistics equal those of the whole set in one go.
"""
import warnings
from typing import Dict, Optional

import numpy as np

# Eigenvalues a covariance may have below zero, relative to its largest:
# exact ones are >= 0 (and d - n + 1 are exactly 0 when n < d), but rounding
# makes those zeros about ±1e-13 relative in float64 statistics and ±1e-8 in
# statistics stored as float32 (n = 1000, d = 2048). A matrix that is no
# covariance has negative eigenvalues of the order of the largest.
_PSD_RTOL = 1e-6


def _drop_rounding(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues [d] of a symmetric PSD matrix, ascending, with those below
    the eigensolver's resolution (d · eps · largest) set to 0: the square root
    would turn their rounding noise, ±1e-13 relative, into ±3e-7 each, a 1e-7
    error in FID at n = 50, d = 2048 where d - n of them are exact zeros."""
    cutoff = len(eigenvalues) * np.finfo(np.float64).eps * max(eigenvalues[-1], 0.0)
    return np.where(eigenvalues > cutoff, eigenvalues, 0.0)


class StreamingStats:
    """Running mean and covariance of feature rows [n, d] in float64.

    Sums of x and of x xᵀ are accumulated around a fixed shift (the first
    batch's mean) to keep the float64 sums well conditioned.
    """

    def __init__(self, dim: int):
        self.dim = dim
        self.count = 0
        self._shift: Optional[np.ndarray] = None
        self._sum = np.zeros(dim, np.float64)
        self._outer = np.zeros((dim, dim), np.float64)

    def update(self, features: np.ndarray) -> None:
        """Adds rows of `features` [n, dim] (any float dtype)."""
        x = np.asarray(features, np.float64).reshape(-1, self.dim)
        if not len(x):
            return
        if self._shift is None:
            self._shift = x.mean(axis=0)
        centred = x - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.count += len(x)

    def merge(self, other: 'StreamingStats') -> None:
        """Adds the rows `other` has seen (the statistics of the union).

        `other`'s sums are re-centred from its shift t onto this one's s
        (x - s = (x - t) + δ, δ = t - s), exact in exact arithmetic; an empty
        self takes other's shift.
        """
        if other.dim != self.dim:
            raise ValueError(f'cannot merge statistics of dimension {other.dim} '
                             f'into {self.dim}')
        if other.count == 0:
            return
        if self._shift is None:
            self._shift = other._shift.copy()
        delta = other._shift - self._shift
        self._sum += other._sum + other.count * delta
        self._outer += (other._outer + np.outer(other._sum, delta)
                        + np.outer(delta, other._sum)
                        + other.count * np.outer(delta, delta))
        self.count += other.count

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """{'count': () int64, 'shift': [dim], 'sum': [dim], 'outer': [dim, dim]}
        (float64; shift is 0 before any row): the whole state, for sending to
        other processes (`from_arrays` rebuilds it)."""
        shift = np.zeros(self.dim) if self._shift is None else self._shift
        return {'count': np.int64(self.count), 'shift': shift, 'sum': self._sum,
                'outer': self._outer}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> 'StreamingStats':
        """The statistics `to_arrays` described."""
        stats = cls(len(arrays['sum']))
        stats.count = int(arrays['count'])
        if stats.count:
            stats._shift = np.array(arrays['shift'], np.float64)
        stats._sum = np.array(arrays['sum'], np.float64)
        stats._outer = np.array(arrays['outer'], np.float64)
        return stats

    def mean(self) -> np.ndarray:
        """[dim] mean of all rows seen.

        Raises:
          ValueError: no rows seen yet.
        """
        if self.count == 0:
            raise ValueError('StreamingStats.mean() of no features: call update() '
                             'with at least one row first')
        return self._shift + self._sum / self.count

    def cov(self) -> np.ndarray:
        """[dim, dim] unbiased covariance (divides by count - 1), as numpy's
        np.cov(rowvar=False) and pytorch-fid compute it.

        Raises:
          ValueError: fewer than 2 rows seen (the unbiased estimate divides by
            count - 1).
        """
        if self.count < 2:
            raise ValueError(f'StreamingStats.cov() needs at least 2 feature rows, '
                             f'got {self.count}: the unbiased covariance divides by '
                             f'count - 1; score more samples')
        mean_centred = self._sum / self.count
        return (self._outer - self.count * np.outer(mean_centred, mean_centred)) / (
            self.count - 1)


def _check_symmetric(cov: np.ndarray, name: str) -> None:
    scale = max(np.max(np.abs(cov)), np.finfo(np.float64).tiny)
    # Covariances from sums of x xᵀ are symmetric to rounding (~1e-16
    # relative); an asymmetry of 1e-6 means another kind of matrix.
    if np.max(np.abs(cov - cov.T)) > 1e-6 * scale:
        raise ValueError(f'{name} is not symmetric: is it a covariance?')


def _check_psd(eigenvalues: np.ndarray, name: str) -> None:
    if eigenvalues[0] < -_PSD_RTOL * max(eigenvalues[-1], 0.0) or (
            eigenvalues[-1] < 0):
        raise ValueError(f'{name} has eigenvalue {eigenvalues[0]:.3g} (largest '
                         f'{eigenvalues[-1]:.3g}): a covariance is positive '
                         'semi-definite')


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """Tr (Σ₁Σ₂)^½ of two covariances [d, d], from eigenvalues.

    Σ₁Σ₂ is similar to the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (conjugate by
    Σ₁^½), so both have the same eigenvalues λᵢ >= 0 and Tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ.
    Working with symmetric matrices only (eigh) keeps the result real and its
    error relative to the covariances' scale; scipy.linalg.sqrtm of the
    non-symmetric product leaves an imaginary part that grows with the scale
    and with the product's singularity (n < d).

    Raises:
      ValueError: an input is not symmetric positive semi-definite (cov2 is
        checked through Σ₁^½ Σ₂ Σ₁^½, which by Sylvester's law has the same
        signs of eigenvalues as Σ₂ when Σ₁ has full rank).
    """
    _check_symmetric(cov1, 'cov1')
    _check_symmetric(cov2, 'cov2')
    w1, v1 = np.linalg.eigh(cov1)
    _check_psd(w1, 'cov1')
    root1 = (v1 * np.sqrt(_drop_rounding(w1))) @ v1.T
    inner = root1 @ cov2 @ root1
    # Symmetric in exact arithmetic; averaging the triangles lets eigvalsh see
    # the rounding of both instead of one.
    lam = np.linalg.eigvalsh((inner + inner.T) / 2)
    _check_psd(lam, 'cov1^1/2 cov2 cov1^1/2')
    return float(np.sum(np.sqrt(_drop_rounding(lam))))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """‖μ₁-μ₂‖² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½) in float64.

    The trace of the square root comes from eigenvalues (see
    `trace_sqrt_product`): it equals pytorch-fid's sqrtm-based value where
    that is accurate, and stays accurate at any feature scale and for singular
    covariances (fewer samples than dimensions), where pytorch-fid needs an
    eps offset on the diagonals.

    Args:
      mu1, mu2: [d] means; cov1, cov2: [d, d] covariances.
    Returns:
      the distance, >= 0 up to rounding; scales as s² when all features are
      multiplied by s.
    Raises:
      ValueError: a covariance is not symmetric positive semi-definite.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2)
                 - 2 * trace_sqrt_product(cov1, cov2))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets [n1, d] and [n2, d] (n1, n2 >= 2)."""
    a, b = StreamingStats(features1.shape[1]), StreamingStats(features2.shape[1])
    a.update(features1)
    b.update(features2)
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray, *,
                              num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> Dict[str, float]:
    """KID: the unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.

    Args:
      features1, features2: [n1, d], [n2, d] features.
      num_subsets: number of random subsets (>= 1).
      subset_size: rows drawn (without replacement) from each set per subset
        (>= 2). When a set has fewer rows, the subsets use min(n1, n2) rows and
        a warning says so: the spread over subsets then underestimates the
        metric's sampling error (it is exactly 0 when n1 = n2 = the size
        used, every subset being the whole of both sets).
      seed: subset sampling seed.
    Returns:
      {'kid': mean over subsets, 'kid_std': their standard deviation,
       'subset_size': the rows per subset actually used,
       'num_subsets': the subsets averaged}; the last two are ints.
    Raises:
      ValueError: subset_size < 2 or a set with fewer than 2 rows (the
        unbiased estimate divides by m (m - 1)), or num_subsets < 1.
    """
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    if num_subsets < 1:
        raise ValueError(f'KID needs num_subsets >= 1, got {num_subsets}')
    if subset_size < 2:
        raise ValueError(f'KID needs subset_size >= 2, got {subset_size}: the '
                         'unbiased MMD² divides by m (m - 1)')
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f'KID needs at least 2 rows in each set, got {len(x)} and '
                         f'{len(y)}: score more samples')
    if m < subset_size:
        whole = ('; every subset is the whole of both sets, so kid_std = 0 says '
                 'nothing about the error' if m == len(x) == len(y) else '')
        warnings.warn(f'KID subset_size {subset_size} exceeds the {len(x)} and '
                      f'{len(y)} rows given; using subsets of {m}{whole}. Score '
                      f'at least {subset_size} samples, or lower subset_size.',
                      stacklevel=2)
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                      + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return {'kid': float(np.mean(values)), 'kid_std': float(np.std(values)),
            'subset_size': int(m), 'num_subsets': int(num_subsets)}
