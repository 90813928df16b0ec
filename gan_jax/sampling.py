"""Sampling from a trained generator: samples, and latents from a seed."""
import functools
from typing import Dict, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import models
from gan_jax.ops import xla_options
from gan_jax.types import PyTree


def latents(seed: int, num: int, z_dim: int) -> jax.Array:
    """Standard normal latents [num, z_dim], a fixed function of (seed, num)."""
    return jax.random.normal(jax.random.PRNGKey(seed), (num, z_dim), jnp.float32)


def parse_seed_range(text: str) -> range:
    """'A-B' -> range(A, B + 1) (inclusive, StyleGAN's --seeds); 'A' -> one
    seed. Seeds lie in [0, 2**32).

    Raises:
      ValueError: anything else (one line).
    """
    parts = text.split('-')
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (-1, -1)
    except ValueError:
        lo = hi = -1
    if lo < 0 or hi < lo or hi >= 2**32:
        raise ValueError(f'seeds must be A-B with 0 <= A <= B < 2**32, got {text!r}')
    return range(lo, hi + 1)


def seed_latents(seeds: Sequence[int], z_dim: int) -> jax.Array:
    """One standard normal latent per seed, [len(seeds), z_dim]: row i is a
    function of seeds[i] alone (StyleGAN's per-seed convention), so an image
    does not depend on which other seeds are drawn with it."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(np.asarray(seeds, np.uint32)))
    return jax.vmap(lambda k: jax.random.normal(k, (z_dim,), jnp.float32))(keys)


def seed_labels(G: nn.Module, seeds: Sequence[int],
                class_index: Optional[int] = None) -> Optional[jax.Array]:
    """Labels [len(seeds)] int32 of a conditional generator (K classes):
    `class_index` for every seed, or seed mod K (a function of the seed
    alone); None for an unconditional generator."""
    k = models.num_classes_of(G)
    if not k:
        return None
    seeds = np.asarray(seeds, np.int64)
    return jnp.asarray(np.full(len(seeds), class_index) if class_index is not None
                       else seeds % k, jnp.int32)


def class_labels(G: nn.Module, num: int) -> Optional[jax.Array]:
    """Labels 0, 1, ..., K-1, 0, ... [num] int32 for a conditional generator
    (one with num_classes = K > 0), else None: each row of an 8-wide grid of a
    10-class model cycles through the classes."""
    k = models.num_classes_of(G)
    return jnp.arange(num, dtype=jnp.int32) % k if k else None


def _apply_inference(G: nn.Module, variables: PyTree, z: jax.Array,
                     labels: Optional[jax.Array],
                     truncation: Optional[Tuple[float, Optional[int]]] = None
                     ) -> jax.Array:
    kwargs = {}
    if truncation is not None:  # only generators with a w_avg take it
        kwargs = dict(truncation_psi=truncation[0], truncation_cutoff=truncation[1])
    out = G.apply(variables, z, labels, train=False, **kwargs)
    # Images in [-1, 1] whatever G's last layer (StyleGAN2's is linear);
    # 2-D points stay unscaled.
    return jnp.clip(out, -1.0, 1.0) if out.ndim == 4 else out


@functools.lru_cache(maxsize=None)
def _compiled_inference():
    """`_apply_inference` jitted with G static, one function per process.

    jit then keeps one executable per (G, shapes, dtypes and shardings of the
    arguments, structure of the variables): calls with other params of the
    same structure (each evaluation round, each sweep member) reuse it, where
    a fresh jit per call traced and compiled G every time. G is a static
    argument, so it must be hashable; flax modules are hashable dataclasses
    when their fields are (models.build turns list fields into tuples). Built
    on first use, not at import: xla_options.jit asks for the default backend.
    """
    return xla_options.jit(_apply_inference, static_argnums=(0, 4))


def _inference(G: nn.Module, truncation=None):
    """G.apply(variables, z, labels, train=False), compiled once per G."""
    try:
        hash(G)
    except TypeError:
        # A field jit cannot hash (e.g. a list given directly to the module):
        # compile for this call only, as before the shared cache.
        return xla_options.jit(functools.partial(_apply_inference, G,
                                                 truncation=truncation))
    compiled = _compiled_inference()
    return lambda v, z, y: compiled(G, v, z, y, truncation)


def sample(G: nn.Module, params: PyTree, g_state: Dict[str, PyTree],
           z: jax.Array, labels: Optional[jax.Array] = None, *,
           batch_size: int = 1000, mesh: Optional[jax.sharding.Mesh] = None,
           truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None
           ) -> np.ndarray:
    """Runs G in inference mode (batch norm uses its running statistics).

    Args:
      G: generator module.
      params: its 'params' (the EMA weights, usually).
      g_state: its other collections, e.g. 'batch_stats'.
      z: [N, z_dim] latents.
      labels: optional [N] int32.
      batch_size: latents per call, to bound memory.
      mesh: a one-process mesh with a 'data' axis: each chunk's latents are
        split over its devices (chunks whose size the device count does not
        divide run on one device). None: the default device.
      truncation_psi, truncation_cutoff: the truncation trick of generators
        with a w_avg (stylegan2): w = w_avg + psi (w - w_avg) in the first
        `cutoff` layers (None: all); psi = 1 is no truncation.
    Returns:
      np.ndarray float32 [N, *out_shape]: images in [-1, 1] or 2-D points.

    G is traced and compiled once per (G, chunk shape, mesh, variables
    structure) in a process, not once per call (see `_compiled_inference`).
    """
    truncation = (None if truncation_psi == 1.0 and truncation_cutoff is None
                  else (float(truncation_psi), truncation_cutoff))
    apply = _inference(G, truncation)
    variables = {'params': params, **g_state}
    split = None
    if mesh is not None and mesh.size > 1 and jax.process_count() == 1:
        from gan_jax import parallel
        split = parallel.rows_sharding(mesh)
        variables = jax.device_put(variables, parallel.replicated(mesh))
    chunks = []
    for start in range(0, z.shape[0], batch_size):
        z_chunk = z[start:start + batch_size]
        y = None if labels is None else labels[start:start + batch_size]
        if split is not None and z_chunk.shape[0] % mesh.size == 0:
            z_chunk = jax.device_put(z_chunk, split)
            y = None if y is None else jax.device_put(y, split)
        chunks.append(np.asarray(apply(variables, z_chunk, y)))
    return np.concatenate(chunks).astype(np.float32)


def sample_fn(G: nn.Module, params: PyTree, g_state: Dict[str, PyTree], z_dim: int,
              *, mesh: Optional[jax.sharding.Mesh] = None):
    """The generator as `fn(num, seed, rows=None) -> np.ndarray [num,
    *out_shape]`.

    The form evaluators take (`gan_jax.metrics`): `num` standard normal
    latents drawn from `seed` (`latents`), class labels cycling 0..K-1 for a
    conditional generator (`class_labels`), then `sample` in inference mode.
    Outputs are images in [-1, 1] or 2-D points, float32. `mesh` as in `sample`.
    rows=(lo, hi) generates only samples lo..hi-1 of those `num` (the same
    latents and labels: a process's share of an evaluation, [hi - lo, ...]).
    """
    def fn(num: int, seed: int, rows: Optional[Tuple[int, int]] = None) -> np.ndarray:
        lo, hi = rows or (0, num)
        labels = class_labels(G, num)
        return sample(G, params, g_state, latents(seed, num, z_dim)[lo:hi],
                      None if labels is None else labels[lo:hi], mesh=mesh)
    return fn


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


def image_grid(images: np.ndarray, *, columns: int = 8, padding: int = 2
               ) -> np.ndarray:
    """Tiles images [N, H, W, C] in [-1, 1] into one uint8 [rows*(H+p)+p,
    columns*(W+p)+p, C] image (C = 1 or 3), with `padding` pixels of white."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c),
                   255, np.uint8)
    pixels = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def save_image_grid(images: np.ndarray, path: str, *, columns: int = 8) -> None:
    """Writes images [N, H, W, C] in [-1, 1] as one PNG grid."""
    from PIL import Image
    grid = image_grid(images, columns=columns)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)


def interpolate_latents(z0: jax.Array, z1: jax.Array, num: int, *,
                        spherical: bool = True) -> jax.Array:
    """num latents [num, z_dim] from z0 to z1 (both [z_dim]), endpoints
    included; spherical (slerp) by default, as suits Gaussian latents."""
    t = jnp.linspace(0.0, 1.0, num)[:, None]
    if not spherical:
        return (1.0 - t) * z0 + t * z1
    cos = jnp.dot(z0, z1) / (jnp.linalg.norm(z0) * jnp.linalg.norm(z1))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    so = jnp.sin(omega)
    # Nearly parallel endpoints: slerp degenerates to lerp.
    safe = jnp.where(so < 1e-6, 1.0, so)
    slerp = (jnp.sin((1.0 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe
    return jnp.where(so < 1e-6, (1.0 - t) * z0 + t * z1, slerp)
