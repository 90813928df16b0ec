"""Gradient penalties on the discriminator's input: WGAN-GP (Gulrajani et al.
2017, eq. 3), R1 and R2 (Mescheder et al. 2018, eq. 9: R1 = γ/2 E‖∇D(x)‖²).

Each function returns the *unweighted* penalty; the update step multiplies it by
the config's weight (for R1 that weight is γ/2). The input gradient is taken per
sample through `sum(D(x))`, which is exact when D treats the samples of a batch
independently (no batch norm in training mode, the usual WGAN-GP rule).
"""
from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.types import PRNGKey

DFn = Callable[[jax.Array], jax.Array]  # x [B, ...] -> logits [B]


def _per_sample_grad_sq_norm(d_fn: DFn, x: jax.Array) -> jax.Array:
    """‖∇ₓD(x)‖² for each sample: [B, ...] -> [B]."""
    grads = jax.grad(lambda inputs: jnp.sum(d_fn(inputs)))(x)
    return jnp.sum(jnp.square(grads).reshape(x.shape[0], -1), axis=-1)


def gradient_penalty(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: PRNGKey,
                     *, target: float = 1.0) -> jax.Array:
    """WGAN-GP: E[(‖∇D(x̂)‖ - target)²] at x̂ = εx + (1-ε)x̃, ε ~ U[0, 1] per sample.

    Args:
      d_fn: maps x [B, ...] to logits [B].
      real: [B, ...] data samples.
      fake: [B, ...] generated samples (treated as constants).
      rng: key for the interpolation weights.
      target: the gradient norm penalised towards (1 for WGAN-GP).
    Returns:
      scalar >= 0.
    """
    fake = jax.lax.stop_gradient(fake)
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = jax.random.uniform(rng, eps_shape, dtype=real.dtype)
    mixed = eps * real + (1.0 - eps) * fake
    # sqrt has an infinite derivative at 0; the epsilon keeps the gradient of a
    # flat discriminator finite.
    norms = jnp.sqrt(_per_sample_grad_sq_norm(d_fn, mixed) + 1e-12)
    return jnp.mean(jnp.square(norms - target))


def r1_penalty(d_fn: DFn, real: jax.Array) -> jax.Array:
    """R1: E‖∇D(x)‖² on data samples (multiply by γ/2 for the paper's term).

    Args:
      d_fn: maps x [B, ...] to logits [B].
      real: [B, ...] data samples.
    Returns:
      scalar >= 0; 0 for a discriminator that is constant in x.
    """
    return jnp.mean(_per_sample_grad_sq_norm(d_fn, real))


def r2_penalty(d_fn: DFn, fake: jax.Array) -> jax.Array:
    """R2: E‖∇D(x̃)‖² on generated samples (treated as constants).

    Args:
      d_fn: maps x [B, ...] to logits [B].
      fake: [B, ...] generated samples.
    Returns:
      scalar >= 0.
    """
    return jnp.mean(_per_sample_grad_sq_norm(d_fn, jax.lax.stop_gradient(fake)))
