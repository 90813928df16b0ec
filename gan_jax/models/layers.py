"""Building blocks shared by the model families: maxout (Goodfellow et al. 2013),
packing (PacGAN, Lin et al. 2018), and convolutions reformulated so that
XLA:CPU computes them fast, each the same function with the same parameters
as its flax counterpart: transposed convolutions as adjoints of strided ones
or in sub-pixel form (Shi et al. 2016), strided 4x4 convolutions with a
space-to-depth input gradient, and 3x3 convolutions of upsampled inputs on
the coarse grid."""
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


# 4x4 stride-2 convolutions (DCGAN's D) and their transposes (DCGAN's G).
# Padded by one pixel, space-to-depth turns the strided 4x4 convolution into a
# 2x2 stride-1 convolution over 4·C_in channels. Its input gradient (a
# transposed convolution) is then a stride-1 convolution followed by
# depth-to-space, which XLA:CPU runs several times faster than its own input
# gradient of the strided convolution (64 -> 128 channels at batch 128, 16x16:
# 24 ms against 69 ms with Eigen convolutions, 27 against 67 ms with
# YNNPACK's); a transposed convolution is that same input gradient.
_DOWN_PADS = ((1, 1), (1, 1))


def _down(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _conv(x, kernel, (2, 2), _DOWN_PADS)


def space_to_depth(x: jax.Array) -> jax.Array:
    """[B, 2H, 2W, C] -> [B, H, W, 4·C] with phases (2r + s)·C + c, the
    inverse of `depth_to_space`."""
    b, h2, w2, c = x.shape
    x = x.reshape(b, h2 // 2, 2, w2 // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h2 // 2, w2 // 2, 4 * c)


def _down_adjoint(g: jax.Array, kernel: jax.Array) -> jax.Array:
    """The input gradient of `_down`: g [B, h, w, C_out] -> [B, 2h, 2w, C_in].

    `_down` is space_to_depth(pad(x)) convolved ('VALID', stride 1) with the
    2x2 kernel k2[a, b, (r, s, c)] = kernel[2a + r, 2b + s, c]; the adjoint of a
    'VALID' convolution is a 'full' one with the kernel flipped and its channel
    axes swapped, then depth-to-space and the padding cropped.
    """
    c_in, c_out = kernel.shape[2], kernel.shape[3]
    k2 = kernel.reshape(2, 2, 2, 2, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
    k2 = k2.reshape(2, 2, 4 * c_in, c_out)[::-1, ::-1].transpose(0, 1, 3, 2)
    x_pad = depth_to_space(_conv(g, k2, (1, 1), ((1, 1), (1, 1))))
    return x_pad[:, 1:-1, 1:-1]


def _down_kernel_grad(x: jax.Array, g: jax.Array) -> jax.Array:
    """The kernel gradient of `_down`: x [B, 2h, 2w, C_in], output cotangent
    g [B, h, w, C_out] -> [4, 4, C_in, C_out].

    For few input channels (an image layer) it is one matrix product of the
    2x2 space-to-depth patches [B·h·w, 16·C_in] and g: faster than XLA:CPU's
    own (for 3 -> 64 channels at batch 128, 32x32: 12 against 15 ms with
    gan_jax.xla_options, 6 against 24 ms with YNNPACK convolutions).
    """
    c_in, c_out = x.shape[-1], g.shape[-1]
    if c_in > _FEW_CHANNELS:
        kernel = jnp.zeros((4, 4, c_in, c_out), g.dtype)
        return jax.vjp(lambda k: _down(x, k), kernel)[1](g)[0]
    h, w = g.shape[1:3]
    x_s2d = space_to_depth(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
    patches = jnp.concatenate([x_s2d[:, a:a + h, b:b + w]
                               for a in range(2) for b in range(2)], axis=-1)
    k2 = patches.reshape(-1, 16 * c_in).T @ g.reshape(-1, c_out)
    # Rows are (a, b, r, s, c) for kernel tap (2a + r, 2b + s).
    k2 = k2.reshape(2, 2, 2, 2, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
    return k2.reshape(4, 4, c_in, c_out)


_FEW_CHANNELS = 16


@jax.custom_vjp
def strided_conv4x4(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """4x4, stride-2 convolution padded by one pixel on every side (what 'SAME'
    gives for even H, W): x [B, 2h, 2w, C_in] * kernel [4, 4, C_in, C_out] ->
    [B, h, w, C_out]. The value and the kernel gradient are XLA's; the input
    gradient goes through space-to-depth (`_down_adjoint`), faster on CPU."""
    return _down(x, kernel)


def _strided_fwd(x, kernel):
    return _down(x, kernel), (x, kernel)


def _strided_bwd(residuals, g):
    x, kernel = residuals
    return _down_adjoint(g, kernel), _down_kernel_grad(x, g).astype(kernel.dtype)


strided_conv4x4.defvjp(_strided_fwd, _strided_bwd)


@jax.custom_vjp
def _down_transpose(x: jax.Array, down_kernel: jax.Array) -> jax.Array:
    return _down_adjoint(x, down_kernel)


def _down_transpose_fwd(x, down_kernel):
    return _down_adjoint(x, down_kernel), (x, down_kernel)


def _down_transpose_bwd(residuals, g):
    # y = Dᵀx for the strided convolution D: dx = D g, and dk is D's kernel
    # gradient with g as the input and x as the output cotangent.
    x, down_kernel = residuals
    return (_down(g, down_kernel),
            _down_kernel_grad(g, x).astype(down_kernel.dtype))


_down_transpose.defvjp(_down_transpose_fwd, _down_transpose_bwd)


def conv_transpose4x4(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """lax.conv_transpose(x, kernel, (2, 2), 'SAME') with a [4, 4, C_in, C_out]
    kernel (nn.ConvTranspose's layout): x [B, h, w, C_in] -> [B, 2h, 2w, C_out].

    It is the adjoint of `strided_conv4x4` with the kernel flipped and its
    channel axes swapped, so the forward pass is `_down_adjoint`, the input
    gradient a strided convolution and the kernel gradient that convolution's
    kernel gradient: plain convolutions with no zero taps.
    """
    return _down_transpose(x, kernel[::-1, ::-1].transpose(0, 1, 3, 2))


def upsample_nearest(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling [B, H, W, C] -> [B, 2H, 2W, C]; as
    repeats rather than jax.image.resize, whose gradient is ~6x slower on CPU."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


# conv3x3(upsample_nearest(x)): in 1-D, output 2m reads x[m-1]·k0 + x[m]·(k1 + k2)
# and output 2m + 1 reads x[m]·(k0 + k1) + x[m+1]·k2, so each output phase is a
# 2-tap convolution of x with merged taps: rows of _MERGE[phase] map the 3
# taps to 2.
_MERGE = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)


def upsample_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """conv3x3_SAME(upsample_nearest(x), kernel) without forming the upsampled
    image: x [B, H, W, C_in], kernel [3, 3, C_in, C_out] -> [B, 2H, 2W, C_out].

    One 2x2 'VALID' convolution of x padded by one pixel, to 4·C_out channels
    (the four output phases, each with its merged 2x2 kernel), then each
    phase's window and depth-to-space: 16 multiply-adds per output pixel
    and channel pair on the coarse grid instead of 36 (2.25x fewer, plus a
    border of (1 + 1/H)(1 + 1/W)).
    """
    b, h, w, c_in = x.shape
    c_out = kernel.shape[-1]
    # Taps merged in float32, then back to the kernel's (compute) dtype.
    merged = jnp.einsum('rai,sbj,ijco->abcrso', _MERGE, _MERGE,
                        kernel.astype(jnp.float32)).astype(kernel.dtype)
    merged = merged.reshape(2, 2, c_in, 4 * c_out)  # channels (r, s, c)
    x_pad = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = _conv(x_pad, merged, (1, 1), 'VALID').reshape(b, h + 1, w + 1, 2, 2, c_out)
    # Phase (r, s) of output pixel (2m + r, 2n + s) reads the window starting
    # at padded pixel (m + r, n + s).
    return depth_to_space(jnp.concatenate(
        [y[:, r:r + h, s:s + w, r, s] for r in range(2) for s in range(2)], axis=-1))


class Conv(nn.Module):
    """nn.Conv for NHWC images with the same parameters ('kernel' [kh, kw,
    C_in, features] LeCun-normal, 'bias' zeros), the same auto-name (Conv_0,
    ...) and the same function; 4x4 stride-2 kernels go through
    `strided_conv4x4` on CPU (a faster input gradient there).
    x [B, H, W, C_in] -> [B, H', W', features].

    upsample=True computes the convolution of upsample_nearest(x), [B, 2H, 2W,
    features], through `upsample_conv3x3` for a 3x3 stride-1 'SAME' kernel
    (2.25x fewer multiply-adds), else literally."""
    features: int
    kernel_size: Tuple[int, int]
    strides: Tuple[int, int] = (1, 1)
    padding: Any = 'SAME'
    use_bias: bool = True
    upsample: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param('kernel', nn.initializers.lecun_normal(),
                            (*self.kernel_size, x.shape[-1], self.features))
        padding = self.padding if isinstance(self.padding, str) else tuple(
            tuple(p) for p in self.padding)
        strides = tuple(self.strides)
        kernel = kernel.astype(x.dtype)
        merged_upsampling = self.upsample and tuple(kernel.shape[:2]) == (3, 3) \
            and strides == (1, 1) and padding in ('SAME', ((1, 1), (1, 1)))
        if self.upsample and not merged_upsampling:
            x = upsample_nearest(x)
        if merged_upsampling:
            y = upsample_conv3x3(x, kernel)
        elif _strided4x4(x.shape, kernel.shape, strides, padding):
            y = strided_conv4x4(x, kernel)
        else:
            y = _conv(x, kernel, strides, padding)
        if self.use_bias:
            y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
        return y


def _strided4x4(x_shape, kernel_shape, strides, padding) -> bool:
    """Whether Conv takes `strided_conv4x4`: on CPU (GPU and TPU input
    gradients are fast already), for a 4x4 stride-2 convolution padded by one
    pixel on every side."""
    if jax.default_backend() != 'cpu' or tuple(kernel_shape[:2]) != (4, 4) \
            or tuple(strides) != (2, 2):
        return False
    if isinstance(padding, str):
        return padding == 'SAME' and x_shape[1] % 2 == 0 and x_shape[2] % 2 == 0
    return tuple(tuple(p) for p in padding) == _DOWN_PADS


UPCONV_IMPLS = ('adjoint', 'subpixel', 'conv_transpose')


class UpConv(nn.Module):
    """4x4 stride-2 'SAME' transposed convolution, [B, H, W, C_in] ->
    [B, 2H, 2W, features], with the parameters of `nn.ConvTranspose(features,
    (4, 4), (2, 2), padding='SAME')` ('kernel' [4, 4, C_in, features], 'bias')
    and the same function, computed one of three ways (`impl`):

      'adjoint' (default): `conv_transpose4x4`, the adjoint of a strided
        convolution through space-to-depth; forward and gradients are plain
        convolutions without zero taps (fastest on CPU in our timings).
      'subpixel': a 3x3 convolution to 4·features channels (a quarter of its
        taps are zero) plus depth-to-space (Shi et al. 2016).
      'conv_transpose': nn.ConvTranspose itself (for comparison; its gradient
        is slow on XLA:CPU).
    """
    features: int
    impl: str = 'adjoint'
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.impl not in UPCONV_IMPLS:
            raise ValueError(f'UpConv impl must be one of {UPCONV_IMPLS}, '
                             f'got {self.impl!r}')
        if self.impl == 'conv_transpose':
            return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2),
                                    padding='SAME', use_bias=self.use_bias,
                                    name='ConvTranspose_0')(x)
        # Same names and initialisers as nn.ConvTranspose, so parameters of
        # every form load into the others.
        scope = _ParamsLike(self.features, x.shape[-1], self.use_bias,
                            name='ConvTranspose_0')
        kernel, bias = scope()
        kernel = kernel.astype(x.dtype)
        if self.impl == 'adjoint':
            y = conv_transpose4x4(x, kernel)
        else:
            y = depth_to_space(_conv(x, subpixel_kernel(kernel), (1, 1), ((1, 1), (1, 1))))
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
