"""Mode-collapse metrics for 2-D Gaussian mixtures, as in VEEGAN (Srivastava et
al. 2017) and PacGAN (Lin et al. 2018, Table 1).

A sample is high quality when it lies within 3σ of its nearest mode; a mode is
captured when it is the nearest mode of at least one high-quality sample; the
reverse KL is KL(p_gen ‖ uniform) between the histogram of high-quality samples
over modes and the uniform distribution over the K modes.
"""
from typing import Callable, Dict, Iterator, Tuple

import numpy as np


def mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float
                 ) -> Dict[str, float]:
    """Modes captured, share of high-quality samples and reverse KL.

    Args:
      samples: [N, 2] generated points.
      centers: [K, 2] mode centers.
      std: the modes' standard deviation σ.
    Returns:
      {'modes': captured modes in [0, K], 'high_quality': share in [0, 1],
       'reverse_kl': in [0, log K], nan when no sample is high quality}.
    """
    samples = np.asarray(samples, np.float64)
    dists = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = np.argmin(dists, axis=1)
    good = dists[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    if counts.sum() == 0:
        kl = float('nan')
    else:
        p = counts / counts.sum()
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(p[nz] * len(centers))))
    return {'modes': int(np.sum(counts > 0)),
            'high_quality': float(np.mean(good)),
            'reverse_kl': kl}


class Evaluator:
    """Mode metrics of `num_samples` generated points (PacGAN uses 2,500)."""

    def __init__(self, info, config=None, *, num_samples: int = 2500, seed: int = 0):
        if 'centers' not in info.extras:
            raise ValueError('the modes evaluator needs a 2-D mixture dataset '
                             '(ring or grid)')
        self.centers = info.extras['centers']
        self.std = info.extras['std']
        self.num_samples = num_samples
        self.seed = seed

    def run(self, sample_fn: Callable[[int, int], np.ndarray]
            ) -> Iterator[Tuple[str, float]]:
        """Yields (name, value) for the samples of sample_fn(num, seed)."""
        samples = sample_fn(self.num_samples, self.seed)
        yield from mode_metrics(samples, self.centers, self.std).items()
