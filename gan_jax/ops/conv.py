"""Convolutions in equal but differently computed forms, each the same
function with the same parameters as its lax/flax counterpart: transposed
convolutions as adjoints of strided ones or in sub-pixel form (Shi et al.
2016), strided 4x4 convolutions with a space-to-depth input gradient, and 3x3
convolutions of upsampled inputs on the coarse grid. Which form runs is
gan_jax.ops.policy's choice ('auto', 'xla' or a form's name).

Entry points, each taking `impl`:
  conv_general_dilated(impl): a drop-in for lax.conv_general_dilated, for
    nn.Conv's `conv_general_dilated` field;
  upsampled_conv_general_dilated(impl): the same for the convolution of the
    nearest-upsampled input;
  conv_transpose(x, kernel, impl): the 4x4 stride-2 'SAME' transposed
    convolution of nn.ConvTranspose.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.ops import policy

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


def _conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                        dimension_numbers=_DIMENSIONS)


def upsample_nearest(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling [B, H, W, C] -> [B, 2H, 2W, C]; as
    repeats rather than jax.image.resize, whose gradient is ~6x slower on CPU."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def depth_to_space(x: jax.Array) -> jax.Array:
    """[B, H, W, 4·C] with phases (2r + s)·C + c -> [B, 2H, 2W, C]."""
    b, h, w, c4 = x.shape
    c = c4 // 4
    x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, c)


def space_to_depth(x: jax.Array) -> jax.Array:
    """[B, 2H, 2W, C] -> [B, H, W, 4·C] with phases (2r + s)·C + c, the
    inverse of `depth_to_space`."""
    b, h2, w2, c = x.shape
    x = x.reshape(b, h2 // 2, 2, w2 // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h2 // 2, w2 // 2, 4 * c)


# --------------------------------------------------------------------------- #
# 4x4 stride-2 convolutions (DCGAN's D) and their transposes (DCGAN's G).     #
# --------------------------------------------------------------------------- #
# Padded by one pixel, space-to-depth turns the strided 4x4 convolution into a
# 2x2 stride-1 convolution over 4·C_in channels. Its input gradient (a
# transposed convolution) is then a stride-1 convolution followed by
# depth-to-space, which XLA:CPU runs several times faster than its own input
# gradient of the strided convolution (64 -> 128 channels at batch 128, 16x16:
# 24 ms against 69 ms with Eigen convolutions, 27 against 67 ms with
# YNNPACK's; AVX2 EPYC); a transposed convolution is that same input gradient.
_DOWN_PADS = ((1, 1), (1, 1))


def _down(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _conv(x, kernel, (2, 2), _DOWN_PADS)


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
    """The kernel gradient of `_down` (XLA's): x [B, 2h, 2w, C_in], output
    cotangent g [B, h, w, C_out] -> [4, 4, C_in, C_out]. (For few input
    channels, one matrix product of space-to-depth patches was 4x faster on
    the AVX2 EPYC and no faster on Zen 5: removed, see docs/performance.md.)
    """
    kernel = jnp.zeros((4, 4, x.shape[-1], g.shape[-1]), g.dtype)
    return jax.vjp(lambda k: _down(x, k), kernel)[1](g)[0]


@jax.custom_vjp
def strided_conv4x4(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Form 'space_to_depth' of a 4x4, stride-2 convolution padded by one
    pixel on every side (what 'SAME' gives for even H, W): x [B, 2h, 2w, C_in]
    * kernel [4, 4, C_in, C_out] -> [B, h, w, C_out]. The value and the kernel
    gradient are XLA's; the input gradient goes through space-to-depth
    (`_down_adjoint`)."""
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
    """Form 'adjoint' of lax.conv_transpose(x, kernel, (2, 2), 'SAME') with a
    [4, 4, C_in, C_out] kernel (nn.ConvTranspose's layout): x [B, h, w, C_in]
    -> [B, 2h, 2w, C_out].

    It is the adjoint of `strided_conv4x4` with the kernel flipped and its
    channel axes swapped, so the forward pass is `_down_adjoint`, the input
    gradient a strided convolution and the kernel gradient that convolution's
    kernel gradient: plain convolutions with no zero taps.
    """
    return _down_transpose(x, kernel[::-1, ::-1].transpose(0, 1, 3, 2))


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


def subpixel_conv_transpose4x4(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Form 'subpixel' of `conv_transpose4x4`: a 3x3 convolution to
    4·C_out channels (a quarter of its taps zero), then depth-to-space."""
    return depth_to_space(_conv(x, subpixel_kernel(kernel), (1, 1), ((1, 1), (1, 1))))


def conv_transpose(x: jax.Array, kernel: jax.Array, *, impl: str = 'auto') -> jax.Array:
    """lax.conv_transpose(x, kernel, (2, 2), 'SAME') for a [4, 4, C_in, C_out]
    kernel (what nn.ConvTranspose(C_out, (4, 4), (2, 2), padding='SAME')
    computes), x [B, h, w, C_in] -> [B, 2h, 2w, C_out], in the form
    policy.resolve('conv_transpose4x4', impl) names."""
    form = policy.resolve('conv_transpose4x4', impl)
    if form == 'adjoint':
        return conv_transpose4x4(x, kernel)
    if form == 'subpixel':
        return subpixel_conv_transpose4x4(x, kernel)
    return jax.lax.conv_transpose(x, kernel, (2, 2), 'SAME',
                                  dimension_numbers=_DIMENSIONS)


# --------------------------------------------------------------------------- #
# 3x3 convolutions of nearest-upsampled inputs (SNGAN's G).                   #
# --------------------------------------------------------------------------- #
# conv3x3(upsample_nearest(x)): in 1-D, output 2m reads x[m-1]·k0 + x[m]·(k1 + k2)
# and output 2m + 1 reads x[m]·(k0 + k1) + x[m+1]·k2, so each output phase is a
# 2-tap convolution of x with merged taps: rows of _MERGE[phase] map the 3
# taps to 2.
_MERGE = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)


def upsample_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Form 'coarse' of conv3x3_SAME(upsample_nearest(x), kernel), without
    forming the upsampled image: x [B, H, W, C_in], kernel [3, 3, C_in, C_out]
    -> [B, 2H, 2W, C_out].

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


# --------------------------------------------------------------------------- #
# Drop-ins for lax.conv_general_dilated (nn.Conv's `conv_general_dilated`).   #
# --------------------------------------------------------------------------- #
def _plain_2d(x, kernel, dimension_numbers, lhs_dilation, rhs_dilation,
              feature_group_count) -> bool:
    """Whether a lax.conv_general_dilated call is an undilated, ungrouped
    NHWC/HWIO 2-D convolution, the case our forms cover."""
    if x.ndim != 4 or feature_group_count != 1:
        return False
    dilations = tuple(lhs_dilation or ()) + tuple(rhs_dilation or ())
    if any(d not in (None, 1) for d in dilations):
        return False
    nhwc = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, _DIMENSIONS)
    return jax.lax.conv_dimension_numbers(x.shape, kernel.shape,
                                          dimension_numbers) == nhwc


def _canonical_padding(padding):
    return padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)


def conv_form(x_shape, kernel_shape, strides, padding, impl: str = 'auto') -> str:
    """The form `conv_general_dilated(impl)` computes an NHWC/HWIO
    convolution of these shapes in: 'space_to_depth' for a 4x4 stride-2
    convolution padded by one pixel on every side where the policy picks it,
    else 'xla'."""
    form = policy.resolve('strided_conv4x4', impl)
    if form == 'xla' or tuple(kernel_shape[:2]) != (4, 4) or tuple(strides) != (2, 2):
        return 'xla'
    padding = _canonical_padding(padding)
    if isinstance(padding, str):
        even = x_shape[1] % 2 == 0 and x_shape[2] % 2 == 0
        return form if padding == 'SAME' and even else 'xla'
    return form if padding == _DOWN_PADS else 'xla'


@functools.lru_cache(maxsize=None)
def conv_general_dilated(impl: str = 'auto') -> Callable[..., jax.Array]:
    """lax.conv_general_dilated, computing the cases gan_jax.ops has forms for
    in the form `impl` picks (see `conv_form`); every other call is lax's.
    One function per impl (cached), so modules built with it compare equal."""
    policy.resolve('strided_conv4x4', impl)  # an unknown impl fails here

    def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, feature_group_count=1, **kwargs):
        if _plain_2d(lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation,
                     feature_group_count) and not kwargs.get('precision') and \
                conv_form(lhs.shape, rhs.shape, window_strides, padding,
                          impl) == 'space_to_depth':
            return strided_conv4x4(lhs, rhs)
        return jax.lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, **kwargs)
    return conv


@functools.lru_cache(maxsize=None)
def upsampled_conv_general_dilated(impl: str = 'auto') -> Callable[..., jax.Array]:
    """lax.conv_general_dilated of upsample_nearest(lhs): for nn.Conv's
    `conv_general_dilated` field, so that nn.Conv(features, (3, 3),
    conv_general_dilated=...) is the convolution of the 2x upsampled input,
    [B, H, W, C_in] -> [B, 2H, 2W, features], with nn.Conv's parameters. A 3x3
    stride-1 'SAME' convolution runs in the form policy.resolve(
    'upsample_conv3x3', impl) names ('coarse': on the coarse grid); anything
    else on the upsampled image. One function per impl (cached)."""
    policy.resolve('upsample_conv3x3', impl)

    def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, feature_group_count=1, **kwargs):
        numbers = functools.partial(jax.lax.conv_dimension_numbers, lhs.shape,
                                    rhs.shape)
        if lhs.ndim != 4 or numbers(dimension_numbers) != numbers(_DIMENSIONS):
            raise ValueError('upsampled convolutions take NHWC images and HWIO kernels')
        coarse = (
            _plain_2d(lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation,
                      feature_group_count) and not kwargs.get('precision')
            and tuple(rhs.shape[:2]) == (3, 3) and tuple(window_strides) == (1, 1)
            and _canonical_padding(padding) in ('SAME', ((1, 1), (1, 1)))
            and policy.resolve('upsample_conv3x3', impl) == 'coarse')
        if coarse:
            return upsample_conv3x3(lhs, rhs)
        return jax.lax.conv_general_dilated(
            upsample_nearest(lhs), rhs, window_strides, padding,
            lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, **kwargs)
    return conv
