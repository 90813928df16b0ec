"""Adaptive discriminator augmentation, ADA (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data", NeurIPS): the 'bgc'
pipeline of the paper's Appendix B (blit, geometric, color), each operation
applied per sample with probability p, and the overfitting heuristic
r_t = E[sign(D(real))] that moves p toward a target (Section 3).

The math and defaults follow NVlabs/stylegan2-ada-pytorch
(training/augment.py: AugmentPipe; training/training_loop.py: the p update);
the code is ours: pure functions of an explicit key, differentiable in the
images, jittable with p a traced scalar.

Pipeline (`augment`). Images [B, H, W, C] in [-1, 1] (the reference's range).
Each op has a probability multiplier (1 for the ops of the selected groups, as
the reference's 'bgc' spec) and is applied to a sample when a uniform draw is
below multiplier * p; otherwise its parameter is the identity's.

- Blit ('b'): x-flip; rotation by k * 90 degrees, k uniform in {0, 1, 2, 3};
  integer translation by round(t * size) pixels, t ~ U(-0.125, 0.125) per axis.
- Geometric ('g'): isotropic scaling 2^N(0, 0.2^2) (lognormal, std 0.2 ln 2);
  pre-rotation by U(-pi, pi); anisotropic scaling (2^N(0, 0.2^2) in x, its
  inverse in y); post-rotation by U(-pi, pi); fractional translation
  N(0, 0.125^2) * size per axis. Each rotation is drawn with probability
  p_rot = 1 - sqrt(1 - rotate * p) (clipped), so that P(pre or post) = p.
- Color ('c'), in the reference's luma-aware RGB with luma axis
  v = (1, 1, 1) / sqrt(3) through 0 (mid-grey of [-1, 1]): brightness
  x + b, b ~ N(0, 0.2^2); contrast x * 2^N(0, 0.5^2); luma flip
  x - 2 (v . x) v (a Householder reflection, with probability 1/2 when
  chosen); hue rotation about v by U(-pi, pi); saturation
  (v v^T + (I - v v^T) s) x, s = 2^N(0, 1) (lognormal, std ln 2).

As in the reference, the blit and geometric ops compose into one inverse
3x3 homogeneous matrix per sample (output pixel -> input pixel, in pixel units
centred on the image, x right, y down) and the images are resampled once; the
color ops compose into one 4x4 matrix per sample applied to each pixel's
(r, g, b, 1).

Resampling: ours versus the reference's. The reference reflect-pads the image
by a margin computed from the transformed corners (at most size - 1 per side;
grid_sample's zeros lie beyond it), upsamples 2x with the sym6 wavelet
low-pass filter, samples bilinearly, and downsamples 2x with the same filter,
an anti-aliased resampling. We sample the inverse-mapped grid bilinearly in
the image extended by mirror reflection without edge repetition (torch's
'reflect' padding, extended without limit, so no margin is needed: bilinear
sampling of the reflected coordinate equals bilinear sampling of the padded
image). Differences: no anti-aliasing (a transform that shrinks the image
aliases, and a fractional one blurs by bilinear interpolation rather than by
the wavelet filter), and no zero region far outside the image. For transforms
that map pixel centres to pixel centres (all blit ops, and the identity) ours
is exact: a pure gather (the reference passes these through its up- and
downsampling filters too). JAX pitfall: the gradient of the gather is a
scatter-add, which XLA on GPU runs with atomics, so bit-identical reruns there
need XLA_FLAGS=--xla_gpu_deterministic_ops=true; CPU is deterministic.

Grayscale (C = 1): the color matrix acts through the mean of its first three
rows, as in the reference, so brightness (x + b), contrast (x * c) and luma
flip (x -> -x, the luma of a grey pixel is the pixel) apply; hue and
saturation need chroma and are skipped (the reference skips them too). Color
ops on images with C other than 1 or 3 raise ValueError.

The p update (`update_p`, `accumulate`, `update_stats`): every `interval`
steps, p += sign(r_t - target) * batch_size * interval / (speed_kimg * 1000),
r_t the mean sign of D's real logits since the last update, so p can cross
[0, 1] in speed_kimg thousand images. Differences from the reference: p is
clipped to [0, 1] (the reference clamps at 0 only; p > 1 acts as p = 1 for
unit multipliers but takes steps to come back), and an interval with no
logits leaves p unchanged (the reference's collector reuses the last mean).
The accumulators and p are jnp scalars meant for GANState.stats, so a resume
continues them exactly.
"""
from typing import Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.types import PRNGKey

# The op groups of the pipeline spec strings ('bgc' is the paper's default).
GROUPS: Dict[str, Tuple[str, ...]] = {
    'b': ('xflip', 'rotate90', 'xint'),
    'g': ('scale', 'rotate', 'aniso', 'xfrac'),
    'c': ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation'),
}
# Every op, in the order they are applied. Op i draws from fold_in(rng, i), so
# turning an op on or off leaves the draws of the others unchanged.
OPS: Tuple[str, ...] = GROUPS['b'] + GROUPS['g'] + GROUPS['c']
GEOMETRIC_OPS = GROUPS['b'] + GROUPS['g']
COLOR_OPS = GROUPS['c']
GRAYSCALE_COLOR_OPS = ('brightness', 'contrast', 'lumaflip')

# The reference's op parameters (AugmentPipe defaults), in its units.
XINT_MAX = 0.125        # integer translation range, fraction of the size
SCALE_STD = 0.2         # log2 std of isotropic scaling
ROTATE_MAX = 1.0        # rotation range, 1 = full circle
ANISO_STD = 0.2         # log2 std of anisotropic scaling
XFRAC_STD = 0.125       # std of fractional translation, fraction of the size
BRIGHTNESS_STD = 0.2    # std of the brightness offset
CONTRAST_STD = 0.5      # log2 std of contrast
HUE_MAX = 1.0           # hue rotation range, 1 = full circle
SATURATION_STD = 1.0    # log2 std of saturation

# Matrix products of the transforms in full float32: on GPU/TPU the default
# matmul precision (TF32/bfloat16 passes) would move pixel coordinates by
# ~1e-3 px and break the exactness of the blit ops.
_HIGHEST = jax.lax.Precision.HIGHEST


def multipliers_of(ops: str = 'bgc',
                   overrides: Optional[Mapping[str, float]] = None
                   ) -> Dict[str, float]:
    """Per-op probability multipliers: 1 for the ops of the groups in `ops`,
    0 for the others, then `overrides` on top.

    Args:
      ops: a string of group letters, 'b' (blit), 'g' (geometric), 'c'
        (color); e.g. 'bgc', 'bg', ''.
      overrides: {op name: multiplier >= 0}, e.g. {'xflip': 1.0} with ops=''
        for x-flips alone.
    Returns:
      {op name: float} for every name in OPS.
    Raises:
      ValueError: for an unknown group letter or op name, or a negative
        multiplier.
    """
    for group in ops:
        if group not in GROUPS:
            raise ValueError(f'unknown ADA op group {group!r} in {ops!r}; '
                             f'valid: {", ".join(GROUPS)}')
    multipliers = {name: 0.0 for name in OPS}
    for group in ops:
        multipliers.update({name: 1.0 for name in GROUPS[group]})
    for name, value in (overrides or {}).items():
        if name not in multipliers:
            raise ValueError(f'unknown ADA op {name!r}; valid: {", ".join(OPS)}')
        if value < 0:
            raise ValueError(f'ADA multiplier {name}={value} is negative')
        multipliers[name] = float(value)
    return multipliers


def _matrix(rows, like: jax.Array) -> jax.Array:
    """Rows of per-sample scalars ([B] arrays or numbers) -> [B, n, m]."""
    def entry(e):
        return jnp.broadcast_to(jnp.asarray(e, like.dtype), like.shape)
    return jnp.stack([jnp.stack([entry(e) for e in row], -1) for row in rows], -2)


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


def _chosen(rng: PRNGKey, probability: jax.Array, shape) -> jax.Array:
    """Which samples an op applies to: uniform [0, 1) < probability, so
    probability 0 selects none."""
    return jax.random.uniform(rng, shape) < probability


def _op_keys(rng: PRNGKey, name: str) -> Tuple[PRNGKey, PRNGKey]:
    """(key of the op's parameter, key of its apply/skip draw)."""
    return tuple(jax.random.split(jax.random.fold_in(rng, OPS.index(name))))


def _rotate2d(cos: jax.Array, sin: jax.Array) -> jax.Array:
    o, l = jnp.zeros_like(cos), jnp.ones_like(cos)
    return _matrix([[cos, -sin, o], [sin, cos, o], [o, o, l]], cos)


def geometric_matrix(rng: PRNGKey, batch_size: int, height: int, width: int,
                     p: jax.Array, multipliers: Mapping[str, float]) -> jax.Array:
    """The blit and geometric ops' composed inverse transform per sample.

    Args:
      rng: key (the one `augment` is given).
      batch_size, height, width: the images' B, H, W.
      p: scalar probability (may be traced).
      multipliers: {op name: multiplier}, see multipliers_of.
    Returns:
      float32 [B, 3, 3] G_inv with (x_in, y_in, 1) = G_inv (x_out, y_out, 1),
      coordinates in pixels from the image centre, x right, y down. Ops with a
      zero multiplier draw nothing; unselected samples get the exact identity.
    """
    p = jnp.asarray(p, jnp.float32)
    b = batch_size
    zeros, ones = jnp.zeros((b,), jnp.float32), jnp.ones((b,), jnp.float32)
    g = _matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ones)
    m = multipliers

    def scale(sx, sy):
        return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], ones)

    def translate(tx, ty):
        return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], ones)

    if m['xflip'] > 0:
        kv, ka = _op_keys(rng, 'xflip')
        i = jnp.floor(jax.random.uniform(kv, (b,)) * 2)
        i = jnp.where(_chosen(ka, m['xflip'] * p, (b,)), i, zeros)
        g = _matmul(g, scale(1 - 2 * i, ones))  # a flip is its own inverse
    if m['rotate90'] > 0:
        kv, ka = _op_keys(rng, 'rotate90')
        k = jax.random.randint(kv, (b,), 0, 4)
        k = jnp.where(_chosen(ka, m['rotate90'] * p, (b,)), k, 0)
        # Exact cos/sin of k * 90 degrees (float32 cos(pi/2) is -4e-8).
        cos = jnp.array([1, 0, -1, 0], jnp.float32)[k]
        sin = jnp.array([0, 1, 0, -1], jnp.float32)[k]
        g = _matmul(g, _rotate2d(cos, sin))  # the inverse of rotating by -k90
    if m['xint'] > 0:
        kv, ka = _op_keys(rng, 'xint')
        t = (jax.random.uniform(kv, (b, 2)) * 2 - 1) * XINT_MAX
        t = jnp.where(_chosen(ka, m['xint'] * p, (b, 1)), t, 0.0)
        g = _matmul(g, translate(-jnp.round(t[:, 0] * width),
                                 -jnp.round(t[:, 1] * height)))
    if m['scale'] > 0:
        kv, ka = _op_keys(rng, 'scale')
        s = jnp.exp2(jax.random.normal(kv, (b,)) * SCALE_STD)
        s = jnp.where(_chosen(ka, m['scale'] * p, (b,)), s, ones)
        g = _matmul(g, scale(1 / s, 1 / s))
    # P(pre-rotation or post-rotation) = rotate * p.
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - m['rotate'] * p, 0.0, 1.0))
    rotate_keys = _op_keys(rng, 'rotate')

    def rotation(key):
        kv, ka = jax.random.split(key)
        theta = (jax.random.uniform(kv, (b,)) * 2 - 1) * np.pi * ROTATE_MAX
        theta = jnp.where(_chosen(ka, p_rot, (b,)), theta, zeros)
        return _rotate2d(jnp.cos(theta), jnp.sin(theta))  # inverse of -theta

    if m['rotate'] > 0:
        g = _matmul(g, rotation(rotate_keys[0]))  # before anisotropic scaling
    if m['aniso'] > 0:
        kv, ka = _op_keys(rng, 'aniso')
        s = jnp.exp2(jax.random.normal(kv, (b,)) * ANISO_STD)
        s = jnp.where(_chosen(ka, m['aniso'] * p, (b,)), s, ones)
        g = _matmul(g, scale(1 / s, s))
    if m['rotate'] > 0:
        g = _matmul(g, rotation(rotate_keys[1]))  # after anisotropic scaling
    if m['xfrac'] > 0:
        kv, ka = _op_keys(rng, 'xfrac')
        t = jax.random.normal(kv, (b, 2)) * XFRAC_STD
        t = jnp.where(_chosen(ka, m['xfrac'] * p, (b, 1)), t, 0.0)
        g = _matmul(g, translate(-t[:, 0] * width, -t[:, 1] * height))
    return g


def _reflect(u: jax.Array, n: int) -> jax.Array:
    """Mirrors pixel coordinates into [0, n - 1] without repeating the edge
    pixel (-1 -> 1, n -> n - 2); exact for integer-valued u."""
    if n == 1:
        return jnp.zeros_like(u)
    period = 2 * (n - 1)
    u = jnp.mod(jnp.abs(u), period)
    return jnp.where(u > n - 1, period - u, u)


def apply_geometric(images: jax.Array, g_inv: jax.Array) -> jax.Array:
    """Resamples each image through its inverse transform: bilinear sampling
    of the mirror-extended image at G_inv (x_out, y_out, 1).

    Args:
      images: [B, H, W, C].
      g_inv: [B, 3, 3], as geometric_matrix returns.
    Returns:
      [B, H, W, C], linear in `images` (so differentiable); equal to `images`
      where g_inv maps pixel centres to pixel centres, e.g. the identity.
    """
    b, h, w, _ = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy,
                          jnp.arange(w, dtype=jnp.float32) - cx, indexing='ij')
    g = g_inv.astype(jnp.float32)[:, :, :, None, None]  # [B, 3, 3, 1, 1]
    # Elementwise rather than a matmul, for the same precision reason.
    u = _reflect(g[:, 0, 0] * xs + g[:, 0, 1] * ys + g[:, 0, 2] + cx, w)
    v = _reflect(g[:, 1, 0] * xs + g[:, 1, 1] * ys + g[:, 1, 2] + cy, h)
    x0, y0 = jnp.floor(u), jnp.floor(v)
    fx, fy = (u - x0)[..., None], (v - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    x1, y1 = jnp.minimum(x0 + 1, w - 1), jnp.minimum(y0 + 1, h - 1)
    batch = jnp.arange(b)[:, None, None]

    def at(yi, xi):
        return images[batch, yi, xi]

    dtype = images.dtype
    # (1 - f) * a + f * b: exactly a where f = 0.
    top = (1 - fx).astype(dtype) * at(y0, x0) + fx.astype(dtype) * at(y0, x1)
    bottom = (1 - fx).astype(dtype) * at(y1, x0) + fx.astype(dtype) * at(y1, x1)
    return (1 - fy).astype(dtype) * top + fy.astype(dtype) * bottom


def color_matrix(rng: PRNGKey, batch_size: int, p: jax.Array,
                 multipliers: Mapping[str, float], *,
                 num_channels: int = 3) -> jax.Array:
    """The color ops' composed transform per sample.

    Args:
      rng: key (the one `augment` is given).
      batch_size: B.
      p: scalar probability (may be traced).
      multipliers: {op name: multiplier}, see multipliers_of.
      num_channels: 3, or 1 to leave out hue and saturation.
    Returns:
      float32 [B, 4, 4] C with (r', g', b', 1) = C (r, g, b, 1); unselected
      samples get the exact identity.
    """
    p = jnp.asarray(p, jnp.float32)
    b = batch_size
    zeros, ones = jnp.zeros((b,), jnp.float32), jnp.ones((b,), jnp.float32)
    eye = jnp.eye(4, dtype=jnp.float32)
    c = jnp.broadcast_to(eye, (b, 4, 4))
    m = multipliers
    v = jnp.array([1, 1, 1, 0], jnp.float32) / np.sqrt(3)  # luma axis
    vv = jnp.outer(v, v)

    if m['brightness'] > 0:
        kv, ka = _op_keys(rng, 'brightness')
        t = jax.random.normal(kv, (b,)) * BRIGHTNESS_STD
        t = jnp.where(_chosen(ka, m['brightness'] * p, (b,)), t, zeros)
        c = _matmul(_matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t],
                             [0, 0, 0, 1]], ones), c)
    if m['contrast'] > 0:
        kv, ka = _op_keys(rng, 'contrast')
        s = jnp.exp2(jax.random.normal(kv, (b,)) * CONTRAST_STD)
        s = jnp.where(_chosen(ka, m['contrast'] * p, (b,)), s, ones)
        c = _matmul(_matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0],
                             [0, 0, 0, 1]], ones), c)
    if m['lumaflip'] > 0:
        kv, ka = _op_keys(rng, 'lumaflip')
        i = jnp.floor(jax.random.uniform(kv, (b,)) * 2)
        i = jnp.where(_chosen(ka, m['lumaflip'] * p, (b,)), i, zeros)
        c = _matmul(eye - 2 * vv * i[:, None, None], c)  # Householder
    if m['hue'] > 0 and num_channels > 1:
        kv, ka = _op_keys(rng, 'hue')
        theta = (jax.random.uniform(kv, (b,)) * 2 - 1) * np.pi * HUE_MAX
        theta = jnp.where(_chosen(ka, m['hue'] * p, (b,)), theta, zeros)
        c = _matmul(_rotate3d(v, theta), c)
    if m['saturation'] > 0 and num_channels > 1:
        kv, ka = _op_keys(rng, 'saturation')
        s = jnp.exp2(jax.random.normal(kv, (b,)) * SATURATION_STD)
        s = jnp.where(_chosen(ka, m['saturation'] * p, (b,)), s, ones)
        # = v v^T + (I - v v^T) s, written to be exactly I at s = 1.
        c = _matmul(eye + (eye - vv) * (s - 1)[:, None, None], c)
    return c


def _rotate3d(v: jax.Array, theta: jax.Array) -> jax.Array:
    """Rotation by theta [B] about the unit axis v (Rodrigues), [B, 4, 4];
    exactly I at theta = 0."""
    vx, vy, vz = v[0], v[1], v[2]
    s, c = jnp.sin(theta), jnp.cos(theta)
    cc = 1 - c
    return _matrix([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1]], theta)


def apply_color(images: jax.Array, c: jax.Array) -> jax.Array:
    """Applies per-sample color matrices.

    Args:
      images: [B, H, W, C], C = 3 (RGB) or 1 (grey).
      c: [B, 4, 4], as color_matrix returns.
    Returns:
      [B, H, W, C]: C = 3, C[:3, :3] rgb + C[:3, 3]; C = 1, the mean of the
      first three rows acting on (x, x, x, 1), as the reference.
    Raises:
      ValueError: for other channel counts.
    """
    num_channels = images.shape[-1]
    c = c.astype(images.dtype)[:, None, None]  # [B, 1, 1, 4, 4]
    if num_channels == 3:
        # Elementwise: a matmul's default precision off CPU would round.
        rgb = [images[..., k] for k in range(3)]
        return jnp.stack([c[..., i, 0] * rgb[0] + c[..., i, 1] * rgb[1]
                          + c[..., i, 2] * rgb[2] + c[..., i, 3]
                          for i in range(3)], axis=-1)
    if num_channels == 1:
        gain = jnp.sum(c[..., :3, :3], axis=(-2, -1)) / 3
        offset = jnp.sum(c[..., :3, 3], axis=-1) / 3
        return images * gain[..., None] + offset[..., None]
    raise ValueError(f'ADA color ops need 1 or 3 channels, not {num_channels}')


def augment(rng: PRNGKey, images: jax.Array, p: jax.Array, *, ops: str = 'bgc',
            multipliers: Optional[Mapping[str, float]] = None) -> jax.Array:
    """The ADA pipeline: each op of `ops` applied per sample with probability
    multiplier * p (see the module docstring).

    Args:
      rng: key; the same key gives the same augmentation.
      images: [B, H, W, C] in [-1, 1], C = 1 or 3 when color ops are on.
      p: scalar augmentation probability in [0, 1]; may be traced (one
        compiled program serves every p).
      ops: op groups, 'b' blit, 'g' geometric, 'c' color ('' = identity).
      multipliers: {op name: multiplier} overriding the groups' 1s and 0s
        (multipliers_of), e.g. ops='', multipliers={'rotate90': 1.0}. Static.
    Returns:
      [B, H, W, C] of images' dtype, differentiable in `images`; exactly
      `images` at p = 0.
    """
    m = multipliers_of(ops, multipliers)
    b, h, w, c = images.shape
    if any(m[name] > 0 for name in GEOMETRIC_OPS):
        images = apply_geometric(images, geometric_matrix(rng, b, h, w, p, m))
    color_ops = GRAYSCALE_COLOR_OPS if c == 1 else COLOR_OPS
    if any(m[name] > 0 for name in color_ops):
        images = apply_color(images, color_matrix(rng, b, p, m, num_channels=c))
    return images


# ---------------------------------------------------------------------------
# The adaptive p (training_loop.py's ADA heuristic).


def init_stats(p: float = 0.0) -> Dict[str, jax.Array]:
    """The ADA entries of GANState.stats: 'ada_p' (float32, the current p),
    'ada_sign_sum' (float32, sum of sign(D(real)) since the last p update)
    and 'ada_count' (int32, how many logits that sum holds)."""
    return {'ada_p': jnp.asarray(p, jnp.float32),
            'ada_sign_sum': jnp.zeros((), jnp.float32),
            'ada_count': jnp.zeros((), jnp.int32)}


def accumulate(sign_sum: jax.Array, count: jax.Array, real_logits: jax.Array
               ) -> Tuple[jax.Array, jax.Array]:
    """Adds one batch of D's logits on (augmented) reals to the running sum.

    Args:
      sign_sum: float32 scalar; count: int32 scalar.
      real_logits: [B] or [B, 1] (any shape: every element counts once).
    Returns:
      (sign_sum + sum(sign(real_logits)), count + real_logits.size).
    """
    signs = jnp.sign(jax.lax.stop_gradient(real_logits).astype(jnp.float32))
    return (sign_sum + jnp.sum(signs),
            count + jnp.asarray(real_logits.size, jnp.int32))


def update_p(p: jax.Array, sign_sum: jax.Array, count: jax.Array, *,
             target: float = 0.6, batch_size: int, interval: int = 4,
             speed_kimg: float = 500) -> jax.Array:
    """One ADA adjustment: p + sign(r_t - target) * batch_size * interval /
    (speed_kimg * 1000), clipped to [0, 1], with r_t = sign_sum / count.

    Call it every `interval` steps (update_stats does the bookkeeping).

    Args:
      p: float32 scalar.
      sign_sum, count: the accumulators (accumulate) since the last update.
      target: the r_t that p steers toward (the paper's 0.6).
      batch_size: images per step (the global batch).
      interval: steps between updates.
      speed_kimg: thousands of images for p to move by 1.
    Returns:
      float32 scalar; p itself when count is 0 or r_t == target.
    """
    p = jnp.asarray(p, jnp.float32)
    r_t = sign_sum / jnp.maximum(count, 1).astype(jnp.float32)
    step = batch_size * interval / (speed_kimg * 1000)
    adjust = jnp.sign(r_t - jnp.float32(target)) * jnp.float32(step)
    adjust = jnp.where(count > 0, adjust, 0.0)
    return jnp.clip(p + adjust, 0.0, 1.0)


def update_stats(stats: Dict[str, jax.Array], real_logits: jax.Array, *,
                 steps_done: jax.Array, target: float = 0.6,
                 batch_size: Optional[int] = None, interval: int = 4,
                 speed_kimg: float = 500) -> Dict[str, jax.Array]:
    """Accumulates one step's real logits and, when steps_done is a multiple
    of `interval`, updates p and restarts the accumulators (as the reference,
    which adjusts after batches interval, 2 interval, ...).

    Args:
      stats: a dict holding init_stats' keys (others pass through).
      real_logits: D's logits on this step's augmented reals, any shape.
      steps_done: int scalar, the steps completed including this one
        (state.step + 1 inside train_step).
      batch_size: images per step; None = real_logits.shape[0].
      target, interval, speed_kimg: as update_p.
    Returns:
      stats with new 'ada_p', 'ada_sign_sum', 'ada_count'.
    """
    if batch_size is None:
        batch_size = real_logits.shape[0]
    sign_sum, count = accumulate(stats['ada_sign_sum'], stats['ada_count'],
                                 real_logits)
    due = jnp.asarray(steps_done) % interval == 0
    p = update_p(stats['ada_p'], sign_sum, count, target=target,
                 batch_size=batch_size, interval=interval, speed_kimg=speed_kimg)
    return dict(stats,
                ada_p=jnp.where(due, p, stats['ada_p']).astype(jnp.float32),
                ada_sign_sum=jnp.where(due, 0.0, sign_sum).astype(jnp.float32),
                ada_count=jnp.where(due, 0, count).astype(jnp.int32))
