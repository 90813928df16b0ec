"""Building blocks shared by the model families: maxout (Goodfellow et al. 2013),
packing (PacGAN, Lin et al. 2018) and sub-pixel upsampling convolutions (Shi et
al. 2016) equivalent to transposed convolutions, and a convolution whose kernel
gradient XLA:CPU computes fast."""
import functools
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class MaxoutDense(nn.Module):
    """Dense layer with `pieces` linear pieces per unit, max-pooled.

    x [B, D_in] -> [B, features].
    """
    features: int
    pieces: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Dense(self.features * self.pieces)(x)
        return jnp.max(h.reshape(x.shape[0], self.features, self.pieces), axis=-1)


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
    """Concatenates `pack` consecutive samples: [B, ...] -> [B // pack, pack * prod(...)].

    The discriminator of PacGAN judges `pack` samples jointly, which penalises a
    generator whose samples lack diversity.
    """
    if x.shape[0] % pack:
        raise ValueError(f'batch of {x.shape[0]} does not split into packs of {pack}')
    return x.reshape(x.shape[0] // pack, -1)


# Sub-pixel form of a 4x4, stride-2, 'SAME' transposed convolution. In 1-D,
# lax.conv_transpose gives y[2m] = x[m-1]·k[0] + x[m]·k[2] and
# y[2m+1] = x[m]·k[1] + x[m+1]·k[3]: each output phase is a 3-tap correlation
# over x[m-1..m+1] with taps (k0, k2, -) or (-, k1, k3). Index 4 is a zero tap.
_PHASE_TAPS = np.array([[0, 2, 4], [4, 1, 3]])


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
    """[4, 4, C_in, C_out] transposed-conv kernel -> the [3, 3, C_in, 4·C_out]
    kernel of the equivalent 3x3 convolution whose output channels are the
    four phases (r, s) in the order (2r + s)·C_out + c."""
    k_in, c_out = kernel.shape[2], kernel.shape[3]
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # zero tap at 4
    phases = []
    for r in range(2):
        for s in range(2):
            rows = padded[_PHASE_TAPS[r]]              # [3, 5, C_in, C_out]
            phases.append(rows[:, _PHASE_TAPS[s]])     # [3, 3, C_in, C_out]
    return jnp.stack(phases, axis=3).reshape(3, 3, k_in, 4 * c_out)


def depth_to_space(x: jax.Array) -> jax.Array:
    """[B, H, W, 4·C] with phases (2r + s)·C + c -> [B, 2H, 2W, C]."""
    b, h, w, c4 = x.shape
    c = c4 // 4
    x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, c)


_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


def _conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                        dimension_numbers=_DIMENSIONS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x: jax.Array, kernel: jax.Array, strides: Tuple[int, int],
           padding) -> jax.Array:
    """2-D convolution, x [B, H, W, C_in] * kernel [kh, kw, C_in, C_out] ->
    [B, H', W', C_out] (lax.conv_general_dilated), whose kernel gradient is a
    matrix product of input patches and output gradients.

    XLA:CPU compiles a convolution's kernel gradient into a slow loop (a 3x3,
    128-channel layer at batch 64, 32x32: 4.2 s against 0.24 s forward); as
    one matrix product per kernel tap it is a few times faster. The value and the input gradient are XLA's
    own. `padding` is 'SAME', 'VALID' or ((top, bottom), (left, right)).
    """
    return _conv(x, kernel, strides, padding)


def _conv2d_fwd(x, kernel, strides, padding):
    return _conv(x, kernel, strides, padding), (x, kernel)


def _conv2d_bwd(strides, padding, residuals, dy):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x_: _conv(x_, kernel, strides, padding), x)
    (dx,) = input_vjp(dy)
    kh, kw, c_in, c_out = kernel.shape
    # dk[i, j] = Σ_b,h,w x_pad[b, s·h + i, s·w + j, :]ᵀ dy[b, h, w, :]: one
    # matrix product per tap over strided slices (no patch tensor, no
    # identity-kernel convolution).
    (top, bottom), (left, right) = jax.lax.padtype_to_pads(
        x.shape[1:3], (kh, kw), strides, padding) if isinstance(padding, str) \
        else padding
    x_pad = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    h_out, w_out = dy.shape[1:3]
    sh, sw = strides
    taps = []
    for i in range(kh):
        for j in range(kw):
            window = x_pad[:, i:i + sh * (h_out - 1) + 1:sh,
                           j:j + sw * (w_out - 1) + 1:sw]
            taps.append(jnp.tensordot(window, dy, axes=((0, 1, 2), (0, 1, 2))))
    dk = jnp.stack(taps).reshape(kh, kw, c_in, c_out)
    return dx, dk.astype(kernel.dtype)


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def tap_gradients_enabled(kernel_shape: Tuple[int, ...] = (1, 1, 128, 128)
                            ) -> bool:
    """Whether a convolution with kernel [kh, kw, C_in, C_out] takes conv2d's
    per-tap kernel gradient: on CPU only (GPU and TPU convolution gradients are
    fast already), and for C_in·C_out ≥ 8192, where XLA:CPU's own was slower in
    our timings (e.g. 4.3 s against 0.9 s for 128 -> 128 channels at batch 64,
    32x32; but 30 ms against 64 ms for 64 -> 12 channels at 16x16)."""
    return jax.default_backend() == 'cpu' and kernel_shape[-2] * kernel_shape[-1] >= 8192


class Conv(nn.Module):
    """nn.Conv for NHWC images with the same parameters ('kernel' [kh, kw,
    C_in, features] LeCun-normal, 'bias' zeros), the same auto-name (Conv_0,
    ...) and the same function, computed through `conv2d` on CPU (a much faster
    kernel gradient there). x [B, H, W, C_in] -> [B, H', W', features]."""
    features: int
    kernel_size: Tuple[int, int]
    strides: Tuple[int, int] = (1, 1)
    padding: Any = 'SAME'
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param('kernel', nn.initializers.lecun_normal(),
                            (*self.kernel_size, x.shape[-1], self.features))
        padding = self.padding if isinstance(self.padding, str) else tuple(
            tuple(p) for p in self.padding)
        strides = tuple(self.strides)
        kernel = kernel.astype(x.dtype)
        if tap_gradients_enabled(kernel.shape):
            y = conv2d(x, kernel, strides, padding)
        else:
            y = _conv(x, kernel, strides, padding)
        if self.use_bias:
            y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
        return y


class UpConv(nn.Module):
    """4x4 stride-2 'SAME' transposed convolution, [B, H, W, C_in] ->
    [B, 2H, 2W, features], computed as a 3x3 convolution to 4·features channels
    plus depth-to-space (sub-pixel).

    It has the parameters of `nn.ConvTranspose(features, (4, 4), (2, 2),
    padding='SAME')` ('kernel' [4, 4, C_in, features], 'bias') and computes the
    same function; XLA compiles its gradient into plain convolutions, which on
    CPU is several times faster than the transposed convolution's.
    `subpixel=False` runs nn.ConvTranspose itself (for comparison).
    """
    features: int
    subpixel: bool = True
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if not self.subpixel:
            return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2),
                                    padding='SAME', use_bias=self.use_bias,
                                    name='ConvTranspose_0')(x)
        # Same names and initialisers as nn.ConvTranspose, so parameters of
        # either form load into the other.
        scope = _ParamsLike(self.features, x.shape[-1], self.use_bias,
                            name='ConvTranspose_0')
        kernel, bias = scope()
        sub_kernel = subpixel_kernel(kernel).astype(x.dtype)
        conv = conv2d if tap_gradients_enabled(sub_kernel.shape) else _conv
        y = conv(x, sub_kernel, (1, 1), ((1, 1), (1, 1)))
        y = depth_to_space(y)
        return y + bias if bias is not None else y


class _ParamsLike(nn.Module):
    """Holds 'kernel' and 'bias' exactly as nn.ConvTranspose would."""
    features: int
    in_features: int
    use_bias: bool

    @nn.compact
    def __call__(self):
        kernel = self.param('kernel', nn.initializers.lecun_normal(),
                            (4, 4, self.in_features, self.features))
        bias = (self.param('bias', nn.initializers.zeros_init(), (self.features,))
                if self.use_bias else None)
        return kernel, bias


def maybe_sn(module: nn.Module, spectral: bool):
    """Wraps `module` in flax's SpectralNorm (Miyato et al. 2018) when asked.

    The power-iteration vector u and the estimate sigma live in the
    'batch_stats' collection, so they travel with the discriminator's state in
    GANState.d_state; they are updated only in training mode.
    Returns a callable (x, *, train) -> y.
    """
    if spectral:
        wrapped = nn.SpectralNorm(module)
        return lambda x, *, train: wrapped(x, update_stats=train)
    return lambda x, *, train: module(x)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al.
    2017; used by SNGAN/BigGAN generators). x [B, ..., C], labels [B] int ->
    same shape. With num_classes = 0 it is a plain batch norm."""
    num_classes: int = 0
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, labels, *, train: bool) -> jax.Array:
        if not self.num_classes:
            return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
        h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                         use_scale=False, use_bias=False)(x)
        c = x.shape[-1]
        gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones,
                         name='gamma')(labels)
        beta = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros,
                        name='beta')(labels)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
        return h * gamma.reshape(shape) + beta.reshape(shape)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): x + γ·attention(x), γ starting
    at 0. x [B, H, W, C] -> same shape. Query/key use C/8 channels, values C/2,
    keys and values on a 2x max-pooled grid, as in BigGAN's implementation."""
    spectral: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        b, h, w, c = x.shape

        def conv(features, name):
            return maybe_sn(Conv(features, (1, 1), use_bias=False, name=name),
                            self.spectral)

        query = conv(max(1, c // 8), 'query')(x, train=train).reshape(b, h * w, -1)
        key = nn.max_pool(conv(max(1, c // 8), 'key')(x, train=train), (2, 2), (2, 2))
        value = nn.max_pool(conv(max(1, c // 2), 'value')(x, train=train), (2, 2), (2, 2))
        key = key.reshape(b, -1, key.shape[-1])
        value = value.reshape(b, -1, value.shape[-1])
        attention = jax.nn.softmax(query @ key.transpose(0, 2, 1), axis=-1)
        out = (attention @ value).reshape(b, h, w, -1)
        out = conv(c, 'out')(out, train=train)
        gamma = self.param('gamma', nn.initializers.zeros_init(), ())
        return x + gamma * out
