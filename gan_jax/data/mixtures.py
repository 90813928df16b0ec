"""2-D toy data: the Gaussian mixtures of PacGAN (Lin et al. 2018) and VEEGAN
(Srivastava et al. 2017), the ring of 8 modes at (cos 2πi/8, sin 2πi/8),
σ = 0.01, and the grid of 25 modes at {-4, -2, 0, 2, 4}², σ = 0.05; and the
Swiss roll of Gulrajani et al. 2017's toy experiments (gan_toy.py:
scikit-learn's make_swiss_roll with noise 0.25, its x and z coordinates,
divided by 7.5), which has no modes."""
from typing import Any, Dict, Iterator

import numpy as np

from gan_jax.data import order

RING_STD = 0.01
GRID_STD = 0.05
# The Swiss roll of Gulrajani et al. (2017): t ~ 1.5π (1 + 2 U[0, 1]),
# (t cos t, t sin t) + 0.25 N(0, I), all divided by 7.5.
SWISSROLL_NOISE = 0.25
SWISSROLL_SCALE = 7.5


def ring_centers(num_modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """[num_modes, 2] float64 centers evenly spaced on a circle.

    The angles are 2πi/num_modes for i < num_modes: all distinct (a
    linspace(0, 2π, num_modes) would repeat the first mode at 2π).
    """
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centers(values=(-4.0, -2.0, 0.0, 2.0, 4.0)) -> np.ndarray:
    """[len(values)², 2] float64 centers on a square grid."""
    xs, ys = np.meshgrid(values, values, indexing='ij')
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def swissroll(rng: np.random.Generator, num: int) -> np.ndarray:
    """num points [num, 2] float32 of the Swiss roll: t = 1.5π(1 + 2u), u ~
    U[0, 1], the point (t cos t, t sin t) + SWISSROLL_NOISE · N(0, I₂), all
    divided by SWISSROLL_SCALE (values within about ±2)."""
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=num))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    points = points + SWISSROLL_NOISE * rng.standard_normal((num, 2))
    return (points / SWISSROLL_SCALE).astype(np.float32)


# Gaussian mixtures: name -> (centers function, std).
MIXTURES = {
    'ring': (ring_centers, RING_STD),
    'grid': (grid_centers, GRID_STD),
}
# Point sets without modes: name -> sampler(rng, num) -> [num, 2] float32.
CURVES = {
    'swissroll': swissroll,
}
# Every 2-D toy dataset.
NAMES = tuple(MIXTURES) + tuple(CURVES)


def centers_and_std(name: str):
    """(centers [K, 2] float64, std) of the mixture `name`.

    Raises:
      ValueError: `name` is not a Gaussian mixture (e.g. the Swiss roll).
    """
    if name not in MIXTURES:
        raise ValueError(f'{name!r} is not a Gaussian mixture with modes; '
                         f'mixtures: {", ".join(MIXTURES)}')
    make_centers, std = MIXTURES[name]
    return make_centers(), std


def extras(name: str) -> Dict[str, Any]:
    """What evaluators and plots know of the 2-D dataset `name`: {'centers',
    'std'} for a mixture (the modes evaluator needs them), {} otherwise."""
    if name in CURVES:
        return {}
    centers, std = centers_and_std(name)
    return {'centers': centers, 'std': std}


def _sampler(name: str):
    """rng, num -> [num, 2] float32 points of the 2-D dataset `name`."""
    if name in CURVES:
        return CURVES[name]
    centers, std = centers_and_std(name)
    return lambda rng, num: sample(rng, num, centers, std)


def sample(rng: np.random.Generator, num: int, centers: np.ndarray,
           std: float) -> np.ndarray:
    """num points [num, 2] float32: a uniform mode plus isotropic N(0, std²)."""
    modes = rng.integers(0, len(centers), size=num)
    points = centers[modes] + std * rng.standard_normal((num, 2))
    return points.astype(np.float32)


def batches(name: str, *, seed: int, batch_shape, num_train: int,
            start_batch: int = 0) -> Iterator[np.ndarray]:
    """Endless batches of mixture points, deterministic in (seed, position).

    With num_train > 0 a fixed training set of num_train points is drawn once
    and read in a fresh permutation each epoch (PacGAN's protocol); with 0,
    every batch is a fresh draw.

    Args:
      name: one of NAMES ('ring', 'grid', 'swissroll').
      seed: data seed.
      batch_shape: leading shape of one batch, e.g. (n_critic, B).
      num_train: size of the fixed training set, or 0.
      start_batch: index of the first batch to yield (to resume a run).
    Yields:
      float32 [*batch_shape, 2].
    """
    draw = _sampler(name)
    size = int(np.prod(batch_shape))
    if num_train <= 0:
        index = start_batch
        while True:
            rng = np.random.default_rng([seed, 3, index])
            yield draw(rng, size).reshape(*batch_shape, 2)
            index += 1
    points = draw(np.random.default_rng([seed, 1]), num_train)
    index = start_batch
    while True:
        take = order.epoch_indices(num_train, seed, index * size, size)
        yield points[take].reshape(*batch_shape, 2)
        index += 1
