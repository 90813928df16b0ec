"""Fréchet distance (Heusel et al. 2017, FID) and kernel inception distance
(Bińkowski et al. 2018, KID) on feature vectors, in float64 numpy.

Features arrive in batches; `StreamingStats` accumulates their mean and
covariance without dropping any sample (a final partial batch counts like the
others), so the statistics equal those of the whole set in one go.
"""
import warnings
from typing import Dict, Optional

import numpy as np
import scipy.linalg


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

    def mean(self) -> np.ndarray:
        """[dim] mean of all rows seen."""
        return self._shift + self._sum / self.count

    def cov(self) -> np.ndarray:
        """[dim, dim] unbiased covariance (divides by count - 1), as numpy's
        np.cov(rowvar=False) and pytorch-fid compute it."""
        mean_centred = self._sum / self.count
        return (self._outer - self.count * np.outer(mean_centred, mean_centred)) / (
            self.count - 1)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray, eps: float = 1e-6) -> float:
    """‖μ₁-μ₂‖² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½) in float64.

    Args:
      mu1, mu2: [d] means; cov1, cov2: [d, d] covariances.
      eps: added to both diagonals when the product is singular (as
        pytorch-fid does), so the square root stays finite.
    Returns:
      the distance, >= 0 up to rounding.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Singular covariances (e.g. features that are always 0) are common and
        # handled below; scipy's warning about them is noise.
        warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(mu1)) * eps
            covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    # Rounding can leave a tiny imaginary part; a large one means the
    # covariances are not valid (not positive semi-definite).
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f'imaginary component {np.max(np.abs(covmean.imag))} '
                             'in the matrix square root: are these covariances?')
        covmean = covmean.real
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets [n1, d] and [n2, d]."""
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
      num_subsets: number of random subsets.
      subset_size: rows drawn (without replacement) from each set per subset;
        capped at the smaller set's size.
      seed: subset sampling seed.
    Returns:
      {'kid': mean over subsets, 'kid_std': their standard deviation}.
    """
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
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
    return {'kid': float(np.mean(values)), 'kid_std': float(np.std(values))}
