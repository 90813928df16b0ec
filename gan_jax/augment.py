"""Differentiable augmentation, DiffAugment (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): color, translation and cutout,
applied to real and generated images alike before the discriminator, so the
generator's gradient flows through the augmentation.

All functions map images [B, H, W, C] (values around [-1, 1]) to the same
shape, draw their randomness from an explicit key, and are differentiable in
the images.
"""
from typing import Callable, Dict, Sequence

import jax
import jax.numpy as jnp

from gan_jax.types import PRNGKey


def brightness(rng: PRNGKey, x: jax.Array) -> jax.Array:
    """Adds one offset in [-0.5, 0.5) per image."""
    return x + (jax.random.uniform(rng, (x.shape[0], 1, 1, 1), x.dtype) - 0.5)


def saturation(rng: PRNGKey, x: jax.Array) -> jax.Array:
    """Scales each pixel's deviation from its channel mean by [0, 2)."""
    mean = jnp.mean(x, axis=3, keepdims=True)
    return (x - mean) * (jax.random.uniform(rng, (x.shape[0], 1, 1, 1), x.dtype) * 2) + mean


def contrast(rng: PRNGKey, x: jax.Array) -> jax.Array:
    """Scales each image's deviation from its mean by [0.5, 1.5)."""
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (jax.random.uniform(rng, (x.shape[0], 1, 1, 1), x.dtype) + 0.5) + mean


def translation(rng: PRNGKey, x: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Shifts each image by whole pixels in [-ratio·size, ratio·size] per axis,
    filling with zeros."""
    b, h, w, _ = x.shape
    ky, kx = jax.random.split(rng)
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = jax.random.randint(ky, (b, 1, 1), -sy, sy + 1)
    tx = jax.random.randint(kx, (b, 1, 1), -sx, sx + 1)
    ys = jnp.arange(h)[None, :, None] - ty   # source row of each output row
    xs = jnp.arange(w)[None, None, :] - tx
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    gathered = x[jnp.arange(b)[:, None, None], jnp.clip(ys, 0, h - 1),
                 jnp.clip(xs, 0, w - 1)]
    return jnp.where(valid[..., None], gathered, 0.0)


def cutout(rng: PRNGKey, x: jax.Array, ratio: float = 0.5) -> jax.Array:
    """Zeroes one square of ratio·size per image at a random center."""
    b, h, w, _ = x.shape
    ky, kx = jax.random.split(rng)
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2))
    cx = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2))
    ys = jnp.arange(h)[None, :, None] - cy + ch // 2
    xs = jnp.arange(w)[None, None, :] - cx + cw // 2
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return jnp.where(inside[..., None], 0.0, x)


POLICIES: Dict[str, Sequence[Callable]] = {
    'color': (brightness, saturation, contrast),
    'translation': (translation,),
    'cutout': (cutout,),
}


def parse_policy(policy: str) -> Sequence[str]:
    """'color,translation,cutout' -> ('color', 'translation', 'cutout').

    Raises:
      ValueError: for an unknown part, listing the valid ones.
    """
    parts = tuple(p for p in policy.split(',') if p)
    for part in parts:
        if part not in POLICIES:
            raise ValueError(f'unknown augmentation {part!r}; valid: '
                             f'{", ".join(POLICIES)}')
    return parts


def diff_augment(rng: PRNGKey, x: jax.Array, policy: str) -> jax.Array:
    """Applies the comma-separated `policy` in order; '' returns x itself.

    Args:
      rng: key; the same key gives the same augmentation.
      x: images [B, H, W, C].
      policy: e.g. 'color,translation,cutout'.
    Returns:
      augmented images, same shape and dtype.
    """
    functions = [f for part in parse_policy(policy) for f in POLICIES[part]]
    for key, fn in zip(jax.random.split(rng, max(1, len(functions))), functions):
        x = fn(key, x)
    return x
