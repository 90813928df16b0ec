"""Sampling from a trained generator: samples, and latents from a seed."""
from typing import Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.types import PyTree


def latents(seed: int, num: int, z_dim: int) -> jax.Array:
    """Standard normal latents [num, z_dim], a fixed function of (seed, num)."""
    return jax.random.normal(jax.random.PRNGKey(seed), (num, z_dim), jnp.float32)


def sample(G: nn.Module, params: PyTree, g_state: Dict[str, PyTree],
           z: jax.Array, labels: Optional[jax.Array] = None, *,
           batch_size: int = 1000) -> np.ndarray:
    """Runs G in inference mode (batch norm uses its running statistics).

    Args:
      G: generator module.
      params: its 'params' (the EMA weights, usually).
      g_state: its other collections, e.g. 'batch_stats'.
      z: [N, z_dim] latents.
      labels: optional [N] int32.
      batch_size: latents per call, to bound memory.
    Returns:
      np.ndarray float32 [N, *out_shape]: images in [-1, 1] or 2-D points.
    """
    apply = jax.jit(lambda v, z_, y_: G.apply(v, z_, y_, train=False))
    variables = {'params': params, **g_state}
    chunks = []
    for start in range(0, z.shape[0], batch_size):
        y = None if labels is None else labels[start:start + batch_size]
        chunks.append(np.asarray(apply(variables, z[start:start + batch_size], y)))
    return np.concatenate(chunks).astype(np.float32)


def save_scatter(points: np.ndarray, path: str, *, centers: Optional[np.ndarray] = None,
                 title: str = '') -> None:
    """Writes a PNG scatter plot of 2-D points [N, 2] over the mixture centers."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, label='samples')
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=30, marker='x', c='red',
                   label='modes')
        span = np.abs(centers).max() * 1.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect('equal')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
