"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", CVPR): mapping network, modulated and demodulated convolutions,
noise inputs, skip generator and residual discriminator, with the label
conditioning of StyleGAN2-ADA (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", NeurIPS: label embedding in G's
mapping, projection D). Formulas follow NVlabs/stylegan2-ada-pytorch
(training/networks.py, torch_utils/ops/upfirdn2d.py); NHWC throughout.

G = synthesis(mapping(z, labels)):
  mapping: z normalised (2nd moment) [+ normalised label embedding] ->
    `mapping_layers` equalized-lr dense layers (lrelu, lr multiplier 0.01) ->
    w, broadcast to num_ws = 2 log2(R) - 2 layers; w_avg, an EMA of w (beta
    0.995) kept in the 'stats' collection, is what truncation lerps toward.
  synthesis: a learned constant 4x4 input; per resolution 4, 8, ..., R two
    3x3 modulated-demodulated convs (the first upsamples x2; 4x4 has one),
    each plus noise (learned strength) and bias, lrelu; a toRGB (modulated,
    not demodulated, 1x1) at every resolution, summed into an RGB skip that
    is upsampled with the FIR filter [1,3,3,1] (bilinear). No output tanh.
D: fromRGB (1x1) at R; per resolution R, ..., 8 a residual block (conv3x3,
  conv3x3 + FIR downsample, a 1x1 FIR-downsampled skip, both branches times
  sqrt(0.5)); epilogue at 4x4: minibatch stddev, conv3x3, dense, dense out;
  with labels, projection onto a mapping of the label embedding.
Channels at resolution r: min(channel_base // r, channel_max).

Random number streams of Generator (`rngs=` of apply):
  training (train=True): 'noise' (per-layer noise, when noise_mode is
    'random', the training default) and 'mixing' (style mixing, when
    style_mixing_prob > 0);
  inference (train=False) and init: none ('params' only for init; the
    constant noise buffers are drawn from it).
Variable collections of Generator besides 'params': 'stats' (mapping w_avg,
updated only when train=True and 'stats' is mutable) and 'noise_const' (the
fixed noise of noise_mode 'const', created at init, never updated). D has
only 'params'.
"""
import math
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # stylegan2-ada bias_act's def_gain for lrelu
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


# ---------------------------------------------------------------------------
# FIR resampling (torch_utils/ops/upfirdn2d.py, the reference algorithm).

def upfirdn2d(x: jax.Array, taps: Sequence[float] = FIR_TAPS, *, up: int = 1,
              down: int = 1, padding: Tuple[int, int] = (0, 0),
              gain: float = 1.0) -> jax.Array:
    """Upsample, pad, FIR-filter and downsample [B, H, W, C] images.

    As stylegan2-ada's upfirdn2d with a separable filter: insert up - 1 zeros
    after every pixel, pad (before, after) zeros on both spatial axes
    (negative: crop), convolve with outer(taps, taps) / sum(taps)^2 * gain
    (only the valid part), keep every down-th pixel. Plain pads, slices and
    multiply-adds: differentiable to any order.
    """
    taps = [float(t) for t in taps]
    scale = math.sqrt(gain) / sum(taps)  # per axis: the 2-D filter gets gain
    taps = [t * scale for t in reversed(taps)]  # convolution, not correlation
    zero = jnp.zeros((), x.dtype)
    p0, p1 = padding
    spatial = (p0, p1 + up - 1, up - 1)
    x = lax.pad(x, zero, ((0, 0, 0), spatial, spatial, (0, 0, 0)))
    for axis in (1, 2):
        n = x.shape[axis] - len(taps) + 1
        x = sum(t * lax.slice_in_dim(x, i, i + n, axis=axis)
                for i, t in enumerate(taps))
    return x[:, ::down, ::down, :] if down > 1 else x


def upsample2d(x: jax.Array, taps: Sequence[float] = FIR_TAPS) -> jax.Array:
    """[B, H, W, C] -> [B, 2H, 2W, C] with the FIR filter (gain 4 keeps the
    mean); with [1,3,3,1] it is bilinear interpolation at half-pixel centres."""
    f = len(taps)
    return upfirdn2d(x, taps, up=2, padding=((f + 1) // 2, (f - 2) // 2), gain=4.0)


def downsample2d(x: jax.Array, taps: Sequence[float] = FIR_TAPS) -> jax.Array:
    """[B, H, W, C] -> [B, H/2, W/2, C]: FIR low-pass then every 2nd pixel."""
    f = len(taps)
    return upfirdn2d(x, taps, down=2, padding=((f - 1) // 2, (f - 2) // 2))


def conv2d_resample(x: jax.Array, kernel: jax.Array, *, up: int = 1,
                    down: int = 1, taps: Sequence[float] = FIR_TAPS) -> jax.Array:
    """x [B, H, W, I] convolved with kernel [k, k, I, O] ('same' padding
    k // 2 with respect to the resampled image; a correlation, as nn.Conv,
    except for up=2), up or down by 2 with the FIR filter (stylegan2-ada's
    conv2d_resample and its fast paths):

      up=2: a stride-2 transposed convolution (lhs-dilated conv), then the
        filter; the same function as filtering the zero-upsampled input and
        convolving after, at a quarter of the multiply-adds. As in
        stylegan2-ada (flip_weight=False for up layers) this one is a true
        convolution (the kernel flipped), so that its weights port from a
        stylegan2-ada checkpoint by a transpose alone, like the others';
      down=2, k > 1: the filter, then a stride-2 convolution;
      down=2, k = 1: downsample2d, then the 1x1 convolution.
    """
    k = kernel.shape[0]
    f = len(taps)
    pad = k // 2

    def conv(h, strides, padding, dilation=(1, 1)):
        return lax.conv_general_dilated(h, kernel, strides, padding,
                                        lhs_dilation=dilation,
                                        dimension_numbers=_DIMENSION_NUMBERS)

    if up == 2 and down == 1:
        p0 = pad + (f + 1) // 2 - (k - 1)
        p1 = pad + (f - 2) // 2 - (k - 2)
        kernel = kernel[::-1, ::-1]
        x = conv(x, (1, 1), [(k - 1, k - 1)] * 2, (2, 2))
        return upfirdn2d(x, taps, padding=(p0, p1), gain=4.0)
    if down == 2 and up == 1:
        if k == 1:
            return conv(downsample2d(x, taps), (1, 1), 'VALID')
        x = upfirdn2d(x, taps, padding=(pad + (f - 1) // 2, pad + (f - 2) // 2))
        return conv(x, (2, 2), 'VALID')
    if up == 1 and down == 1:
        return conv(x, (1, 1), [(pad, pad)] * 2)
    raise ValueError(f'conv2d_resample supports up=2 or down=2, got up={up}, '
                     f'down={down}')


def modulated_conv2d(x: jax.Array, kernel: jax.Array, styles: jax.Array, *,
                     demodulate: bool = True, up: int = 1,
                     taps: Sequence[float] = FIR_TAPS) -> jax.Array:
    """The modulated (and demodulated) convolution of StyleGAN2 (eq. 1-3).

    Per sample b the effective weight is w'[., ., i, o] = kernel[., ., i, o] *
    styles[b, i], divided (demodulate) by sqrt(sum_{kh,kw,i} w'^2 + 1e-8), so
    that each output channel's weight has unit L2 norm. Computed without
    per-sample weights or grouped convolutions (stylegan2-ada's
    fused_modconv=False form): scale the input channels by the styles,
    convolve with the one shared kernel, scale the output channels by the
    demodulation coefficients; the same function.

    Args:
      x: [B, H, W, I].
      kernel: [k, k, I, O].
      styles: [B, I].
      demodulate: divide by the per-sample, per-output-channel norm.
      up: 1, or 2 to upsample first (conv2d_resample).
    Returns:
      [B, H * up, W * up, O].
    """
    x = x * styles[:, None, None, :].astype(x.dtype)
    x = conv2d_resample(x, kernel.astype(x.dtype), up=up, taps=taps)
    if demodulate:
        # sum_{kh,kw,i} (kernel * s_i)^2 = sum_i s_i^2 sum_{kh,kw} kernel^2.
        sq = jnp.sum(jnp.square(kernel), axis=(0, 1))  # [I, O]
        dcoefs = lax.rsqrt(jnp.square(styles) @ sq.astype(styles.dtype) + 1e-8)
        x = x * dcoefs[:, None, None, :].astype(x.dtype)
    return x


def bias_act(x: jax.Array, bias: Optional[jax.Array], activation: str,
             gain: float = 1.0) -> jax.Array:
    """act(x + bias) * (the activation's gain) * gain, as stylegan2-ada's
    bias_act: 'linear' (gain 1) or 'lrelu' (slope 0.2, gain sqrt(2))."""
    if bias is not None:
        x = x + bias.astype(x.dtype)
    if activation == 'lrelu':
        return nn.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    if activation == 'linear':
        return x * gain if gain != 1 else x
    raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """x / sqrt(mean(x^2) + eps) over the last axis."""
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group_size: int = 4,
                     num_channels: int = 1) -> jax.Array:
    """Appends the minibatch standard deviation (Karras et al. 2018) as
    `num_channels` feature maps: [B, H, W, C] -> [B, H, W, C + F].

    The batch splits into groups of G = min(group_size, B) samples, sample i
    in group i mod (B / G) (stylegan2-ada's reshape(G, -1, ...)); channels
    split into F groups. Each feature is the mean over pixels and channels of
    sqrt(var + 1e-8), the variance (biased) taken over the group's samples.

    Raises:
      ValueError: B is not a multiple of G.
    """
    b, h, w, c = x.shape
    g = min(group_size, b)
    if b % g:
        raise ValueError(
            f'minibatch stddev: a batch of {b} is not a multiple of the group '
            f'size {g} (mbstd_group_size); use a batch size divisible by it')
    f = num_channels
    y = x.reshape(g, b // g, h, w, f, c // f).astype(jnp.float32)
    y = y - jnp.mean(y, axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
    y = jnp.mean(y, axis=(1, 2, 4))  # [n, F]
    y = jnp.tile(y, (g, 1)).astype(x.dtype)  # row i = group i mod n
    y = jnp.broadcast_to(y[:, None, None, :], (b, h, w, f))
    return jnp.concatenate([x, y], axis=-1)


def check_resolution(shape: Sequence[int], what: str) -> int:
    """The side R of square [R, R, C] images, R a power of two >= 4.

    Raises:
      ValueError: naming the shape (for the digit datasets, 28x28 images
        reach 32x32 by padding: data.image_size=32).
    """
    h, w = int(shape[0]), int(shape[1])
    if h != w or h < 4 or h & (h - 1):
        hint = (' (28x28 digits: set data.image_size=32, which pads them to '
                '32x32)' if h == 28 else '')
        raise ValueError(f'StyleGAN2 {what} needs square images with a power-of-'
                         f'two side >= 4 (32, 64, 128, 256), got {h}x{w}{hint}')
    return h


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """min(channel_base // resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


def num_ws(resolution: int) -> int:
    """Number of w vectors synthesis takes at `resolution`: one per conv (1
    at 4x4, 2 above) plus the last toRGB; toRGB at r shares the w of the
    first conv at 2r."""
    return 2 * int(math.log2(resolution)) - 2


def style_mixing_cutoff(rng: jax.Array, num_layers: int, prob: float) -> jax.Array:
    """int32 scalar: with probability `prob` a uniform crossover layer in
    [1, num_layers), else num_layers (no mixing), as stylegan2-ada's run_G."""
    k_cut, k_p = jax.random.split(rng)
    cutoff = jax.random.randint(k_cut, (), 1, num_layers, jnp.int32)
    return jnp.where(jax.random.uniform(k_p, ()) < prob, cutoff,
                     jnp.int32(num_layers))


def mix_ws(ws: jax.Array, ws2: jax.Array, cutoff: jax.Array) -> jax.Array:
    """ws [B, L, w_dim] with layers cutoff, ..., L - 1 taken from ws2."""
    layer = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(layer < cutoff, ws, ws2)


# ---------------------------------------------------------------------------
# Equalized learning rate layers (Karras et al. 2018, sec. 4.1).

def _equal_init(lr_multiplier: float):
    """N(0, 1) / lr_multiplier: the stored weights of an equalized-lr layer."""
    def init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) / lr_multiplier
    return init


class EqualDense(nn.Module):
    """Dense layer with equalized learning rate: the kernel is stored ~
    N(0, 1) / lr_multiplier and used times lr_multiplier / sqrt(fan_in); the
    bias is stored starting at bias_init and used times lr_multiplier (as
    stylegan2-ada's FullyConnectedLayer). x [..., fan_in] -> [..., features].
    """
    features: int
    use_bias: bool = True
    bias_init: float = 0.0
    lr_multiplier: float = 1.0
    activation: str = 'linear'

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param('kernel', _equal_init(self.lr_multiplier),
                            (fan_in, self.features))
        x = x @ (kernel * (self.lr_multiplier / math.sqrt(fan_in))).astype(x.dtype)
        bias = None
        if self.use_bias:
            bias = self.param('bias', nn.initializers.constant(self.bias_init),
                              (self.features,))
            bias = bias * self.lr_multiplier
        return bias_act(x, bias, self.activation)


class EqualConv(nn.Module):
    """Conv with equalized learning rate (stylegan2-ada's Conv2dLayer): kernel
    [k, k, I, O] stored ~ N(0, 1) / lr_multiplier, used times lr_multiplier /
    sqrt(I k k); 'same' padding; down=2 resamples with the FIR filter
    (conv2d_resample). x [B, H, W, I] -> [B, H / down, W / down, features];
    the call's `gain` multiplies the activation's gain."""
    features: int
    kernel_size: int = 3
    use_bias: bool = True
    bias_init: float = 0.0
    lr_multiplier: float = 1.0
    activation: str = 'linear'
    down: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
        k, fan_in = self.kernel_size, self.kernel_size ** 2 * x.shape[-1]
        kernel = self.param('kernel', _equal_init(self.lr_multiplier),
                            (k, k, x.shape[-1], self.features))
        kernel = kernel * (self.lr_multiplier / math.sqrt(fan_in))
        x = conv2d_resample(x, kernel.astype(x.dtype), down=self.down)
        bias = None
        if self.use_bias:
            bias = self.param('bias', nn.initializers.constant(self.bias_init),
                              (self.features,))
            bias = bias * self.lr_multiplier
        return bias_act(x, bias, self.activation, gain)


# ---------------------------------------------------------------------------
# Generator.

class MappingNetwork(nn.Module):
    """(z [B, z_dim] or None, labels [B] int or None) -> w [B, w_dim], or
    [B, num_ws, w_dim] when num_ws > 0 (stylegan2-ada's MappingNetwork).

    w_avg_beta None: no w_avg (D's label mapping). The w_avg EMA,
    w_avg <- lerp(mean_batch(w), w_avg, beta), lives in 'stats' and moves
    only when train and update_w_avg and the collection is mutable (never at
    init).
    """
    w_dim: int = 512
    num_layers: int = 8
    num_ws: int = 0
    num_classes: int = 0
    embed_features: int = 0  # 0: w_dim
    layer_features: int = 0  # 0: w_dim
    lr_multiplier: float = 0.01
    w_avg_beta: Optional[float] = 0.995

    @nn.compact
    def __call__(self, z: Optional[jax.Array], labels: Optional[jax.Array] = None, *,
                 train: bool, truncation_psi: float = 1.0,
                 truncation_cutoff: Optional[int] = None,
                 update_w_avg: bool = True) -> jax.Array:
        parts = []
        if z is not None:
            parts.append(normalize_2nd_moment(z))
        if self.num_classes:
            if labels is None:
                raise ValueError(f'a conditional StyleGAN2 mapping (num_classes='
                                 f'{self.num_classes}) needs labels')
            dtype = z.dtype if z is not None else jnp.float32
            onehot = jax.nn.one_hot(labels, self.num_classes, dtype=dtype)
            embed = EqualDense(self.embed_features or self.w_dim, name='embed')(onehot)
            parts.append(normalize_2nd_moment(embed))
        if not parts:
            raise ValueError('the mapping network needs z or labels')
        x = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
        for i in range(self.num_layers):
            features = self.w_dim if i == self.num_layers - 1 else (
                self.layer_features or self.w_dim)
            x = EqualDense(features, lr_multiplier=self.lr_multiplier,
                           activation='lrelu', name=f'fc{i}')(x)

        w_avg = None
        if self.w_avg_beta is not None:
            w_avg = self.variable('stats', 'w_avg', jnp.zeros, (self.w_dim,),
                                  jnp.float32)
            if (train and update_w_avg and not self.is_initializing()
                    and self.is_mutable_collection('stats')):
                batch_mean = jnp.mean(lax.stop_gradient(x).astype(jnp.float32), axis=0)
                w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)

        if self.num_ws:
            x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, x.shape[-1]))
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
            if w_avg is None:
                raise ValueError('truncation needs w_avg (w_avg_beta is None)')
            avg = w_avg.value.astype(x.dtype)
            truncated = avg + truncation_psi * (x - avg)  # lerp(w_avg, x, psi)
            if self.num_ws and truncation_cutoff is not None:
                layer = jnp.arange(self.num_ws)[None, :, None]
                truncated = jnp.where(layer < truncation_cutoff, truncated, x)
            x = truncated
        return x


class SynthesisLayer(nn.Module):
    """Modulated-demodulated conv (up x2 if up=2), plus noise, bias, lrelu:
    x [B, r / up, r / up, I], w [B, w_dim] -> [B, r, r, features]."""
    features: int
    resolution: int
    up: int = 1
    kernel_size: int = 3
    use_noise: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, *, noise_mode: str) -> jax.Array:
        styles = EqualDense(x.shape[-1], bias_init=1.0, name='affine')(w)
        k = self.kernel_size
        kernel = self.param('kernel', nn.initializers.normal(1.0),
                            (k, k, x.shape[-1], self.features))
        x = modulated_conv2d(x, kernel, styles, demodulate=True, up=self.up)
        if self.use_noise:
            r = self.resolution
            if self.is_initializing() or noise_mode == 'const':
                if not (self.is_initializing()
                        or self.has_variable('noise_const', 'noise')):
                    raise ValueError("noise_mode 'const' needs the 'noise_const' "
                                     'collection that init created')
                const = self.variable(
                    'noise_const', 'noise',
                    lambda: jax.random.normal(self.make_rng('params'), (r, r)))
            strength = self.param('noise_strength', nn.initializers.zeros, ())
            if noise_mode == 'random':
                noise = jax.random.normal(self.make_rng('noise'), (x.shape[0], r, r, 1),
                                          x.dtype)
                x = x + noise * strength.astype(x.dtype)
            elif noise_mode == 'const':
                x = x + (const.value[None, :, :, None] * strength).astype(x.dtype)
        bias = self.param('bias', nn.initializers.zeros, (self.features,))
        return bias_act(x, bias, 'lrelu')


class ToRGB(nn.Module):
    """Modulated (not demodulated) 1x1 conv plus bias, linear:
    x [B, r, r, I], w [B, w_dim] -> [B, r, r, channels]."""
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        styles = EqualDense(x.shape[-1], bias_init=1.0, name='affine')(w)
        styles = styles * (1.0 / math.sqrt(x.shape[-1]))
        kernel = self.param('kernel', nn.initializers.normal(1.0),
                            (1, 1, x.shape[-1], self.channels))
        x = modulated_conv2d(x, kernel, styles, demodulate=False)
        bias = self.param('bias', nn.initializers.zeros, (self.channels,))
        return bias_act(x, bias, 'linear')


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (x, img, ws [B, n, w_dim]) ->
    (x [B, r, r, features], img [B, r, r, C]); at r = 4, x is the learned
    constant and there is one conv (n = 2), else two (n = 3)."""
    features: int
    resolution: int
    img_channels: int
    use_noise: bool = True

    @nn.compact
    def __call__(self, x: Optional[jax.Array], img: Optional[jax.Array],
                 ws: jax.Array, *, noise_mode: str) -> Tuple[jax.Array, jax.Array]:
        layer = lambda name, up=1: SynthesisLayer(  # noqa: E731
            self.features, self.resolution, up=up, use_noise=self.use_noise, name=name)
        if x is None:
            const = self.param('const', nn.initializers.normal(1.0),
                               (self.resolution, self.resolution, self.features))
            x = jnp.broadcast_to(const.astype(ws.dtype), (ws.shape[0],) + const.shape)
            x = layer('conv1')(x, ws[:, 0], noise_mode=noise_mode)
        else:
            x = layer('conv0', up=2)(x, ws[:, 0], noise_mode=noise_mode)
            x = layer('conv1')(x, ws[:, 1], noise_mode=noise_mode)
        y = ToRGB(self.img_channels, name='torgb')(x, ws[:, -1])
        img = y if img is None else upsample2d(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws(R), w_dim] -> images [B, R, R, img_channels]."""
    resolution: int = 32
    img_channels: int = 3
    channel_base: int = 16384
    channel_max: int = 512
    use_noise: bool = True

    @nn.compact
    def __call__(self, ws: jax.Array, *, noise_mode: str) -> jax.Array:
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', "
                             f'got {noise_mode!r}')
        expected = num_ws(self.resolution)
        if ws.ndim != 3 or ws.shape[1] != expected:
            raise ValueError(f'synthesis at {self.resolution} px takes ws of shape '
                             f'[B, {expected}, w_dim], got {ws.shape}')
        x = img = None
        w_idx = 0
        for log2 in range(2, int(math.log2(self.resolution)) + 1):
            r = 2 ** log2
            num_conv = 1 if r == 4 else 2
            block_ws = ws[:, w_idx:w_idx + num_conv + 1]
            x, img = SynthesisBlock(
                channels_at(r, self.channel_base, self.channel_max), r,
                self.img_channels, self.use_noise, name=f'b{r}')(
                    x, img, block_ws, noise_mode=noise_mode)
            w_idx += num_conv
        return img


class Generator(nn.Module):
    """z [B, z_dim], labels [B] int (when num_classes > 0) -> images
    [B, H, W, C] (unbounded; trained toward [-1, 1]; no tanh, as StyleGAN2).

    Methods (each usable as `G.apply(variables, ..., method=G.<name>)`):
      mapping(z, labels, *, train, truncation_psi, truncation_cutoff,
        update_w_avg) -> ws [B, num_ws, w_dim];
      synthesis(ws, *, train, noise_mode) -> images;
      sample_ws(z, labels, *, train, truncation_psi, truncation_cutoff) -> the
        ws __call__ synthesises: mapping, plus style mixing in training;
      __call__(z, labels, *, train, truncation_psi=1.0,
        truncation_cutoff=None, noise_mode=None).
    noise_mode None means 'random' in training (rng stream 'noise'), 'const'
    otherwise. Style mixing (train=True, style_mixing_prob > 0) draws a second
    z, a crossover layer and whether to mix from rng stream 'mixing'.
    """
    out_shape: Tuple[int, int, int] = (32, 32, 3)
    num_classes: int = 0
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    # stylegan2-ada's 'auto' config below 512 px (fmaps 0.5); its 'cifar'
    # and 'stylegan2' (FFHQ) configs use 32768.
    channel_base: int = 16384
    channel_max: int = 512
    style_mixing_prob: float = 0.9
    use_noise: bool = True

    def __post_init__(self):
        super().__post_init__()
        if len(self.out_shape) != 3:
            raise ValueError(f'StyleGAN2 generator out_shape must be (H, W, C), '
                             f'got {self.out_shape}')
        check_resolution(self.out_shape, 'generator')

    @property
    def num_ws(self) -> int:
        """How many w vectors synthesis takes (2 log2(R) - 2)."""
        return num_ws(self.out_shape[0])

    def setup(self):
        self.mapping_network = MappingNetwork(
            w_dim=self.w_dim, num_layers=self.mapping_layers, num_ws=self.num_ws,
            num_classes=self.num_classes, lr_multiplier=self.mapping_lr_multiplier,
            w_avg_beta=self.w_avg_beta)
        self.synthesis_network = SynthesisNetwork(
            resolution=self.out_shape[0], img_channels=self.out_shape[2],
            channel_base=self.channel_base, channel_max=self.channel_max,
            use_noise=self.use_noise)

    def mapping(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                train: bool, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None,
                update_w_avg: bool = True) -> jax.Array:
        """z [B, z_dim], labels [B] -> ws [B, num_ws, w_dim]; in training
        (and with 'stats' mutable) it moves w_avg unless update_w_avg=False;
        truncation lerps the first `truncation_cutoff` (all if None) ws
        toward w_avg by psi (psi=0 gives w_avg)."""
        return self.mapping_network(z, labels, train=train,
                                    truncation_psi=truncation_psi,
                                    truncation_cutoff=truncation_cutoff,
                                    update_w_avg=update_w_avg)

    def synthesis(self, ws: jax.Array, *, train: bool,
                  noise_mode: Optional[str] = None) -> jax.Array:
        """ws [B, num_ws, w_dim] -> images [B, H, W, C]. noise_mode 'random'
        (needs rng stream 'noise'), 'const' (the init-time buffers) or
        'none'; None: 'random' if train else 'const'."""
        if noise_mode is None:
            noise_mode = 'random' if train else 'const'
        if noise_mode == 'random' and self.use_noise and not self.has_rng('noise'):
            raise ValueError("StyleGAN2 synthesis with noise_mode 'random' (the "
                             "training default) needs rngs={'noise': key}; or pass "
                             "noise_mode='const' or 'none'")
        return self.synthesis_network(ws, noise_mode=noise_mode)

    def sample_ws(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                  train: bool, truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None) -> jax.Array:
        """The ws __call__ synthesises: mapping(z), and in training with
        probability style_mixing_prob the ws of a second z (its own mapping
        pass, which leaves w_avg alone) from a uniform crossover layer in
        [1, num_ws) on; one crossover per batch, as stylegan2-ada's run_G.
        Needs rng stream 'mixing' when it mixes."""
        ws = self.mapping(z, labels, train=train, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        if train and self.style_mixing_prob > 0 and self.num_ws > 1:
            if not self.has_rng('mixing'):
                raise ValueError("StyleGAN2 style mixing (train=True, "
                                 f"style_mixing_prob={self.style_mixing_prob}) needs "
                                 "rngs={'mixing': key}; or set style_mixing_prob=0")
            k_z, k_cut = jax.random.split(self.make_rng('mixing'))
            z2 = jax.random.normal(k_z, z.shape, z.dtype)
            ws2 = self.mapping(z2, labels, train=train, truncation_psi=truncation_psi,
                               truncation_cutoff=truncation_cutoff, update_w_avg=False)
            cutoff = style_mixing_cutoff(k_cut, self.num_ws, self.style_mixing_prob)
            ws = mix_ws(ws, ws2, cutoff)
        return ws

    def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool, truncation_psi: float = 1.0,
                 truncation_cutoff: Optional[int] = None,
                 noise_mode: Optional[str] = None) -> jax.Array:
        ws = self.sample_ws(z, labels, train=train, truncation_psi=truncation_psi,
                            truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, train=train, noise_mode=noise_mode)


# ---------------------------------------------------------------------------
# Discriminator.

class DBlock(nn.Module):
    """Residual block: x [B, r, r, I] -> [B, r/2, r/2, features];
    (conv3x3 lrelu, conv3x3 down lrelu) + 1x1 down skip, both times sqrt(0.5)."""
    tmp_features: int
    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = EqualConv(self.features, 1, use_bias=False, down=2, name='skip')(
            x, gain=math.sqrt(0.5))
        x = EqualConv(self.tmp_features, 3, activation='lrelu', name='conv0')(x)
        x = EqualConv(self.features, 3, activation='lrelu', down=2, name='conv1')(
            x, gain=math.sqrt(0.5))
        return y + x


class Discriminator(nn.Module):
    """images [B, R, R, C], labels [B] int (when num_classes > 0) -> logits [B].

    With num_classes > 0 (projection, stylegan2-ada): the output layer gives
    cmap_dim features h, a mapping network of the one-hot label gives cmap,
    and the logit is sum(h * cmap) / sqrt(cmap_dim). B must be a multiple of
    min(mbstd_group_size, B).
    """
    channel_base: int = 16384
    channel_max: int = 512
    num_classes: int = 0
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    cmap_dim: int = 0  # 0: the channels at 4x4
    mapping_layers: int = 8  # of the label mapping (stylegan2-ada's default)

    @property
    def separate_real_and_fake(self) -> bool:
        """The update step runs this D on reals and on fakes in separate
        calls (train.separate_real_and_fake) when it has a minibatch-stddev
        feature: a group of reals and fakes mixed would hide the fakes' lack
        of variety, the cue the feature exists for."""
        return self.mbstd_num_channels > 0

    @nn.compact
    def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        del train  # no state, no randomness
        size = check_resolution(x.shape[1:3], 'discriminator')
        if self.num_classes and labels is None:
            raise ValueError(f'a conditional StyleGAN2 discriminator (num_classes='
                             f'{self.num_classes}) needs labels')
        ch = lambda r: channels_at(r, self.channel_base, self.channel_max)  # noqa: E731
        h = EqualConv(ch(size), 1, activation='lrelu', name='fromrgb')(x)
        r = size
        while r > 4:
            h = DBlock(ch(r), ch(r // 2), name=f'b{r}')(h)
            r //= 2

        # Epilogue at 4x4.
        c4 = ch(4)
        cmap_dim = self.cmap_dim or c4
        if self.mbstd_num_channels:
            h = minibatch_stddev(h, self.mbstd_group_size, self.mbstd_num_channels)
        h = EqualConv(c4, 3, activation='lrelu', name='conv')(h)
        h = EqualDense(c4, activation='lrelu', name='fc')(h.reshape(h.shape[0], -1))
        out = EqualDense(cmap_dim if self.num_classes else 1, name='out')(h)
        if not self.num_classes:
            return out[:, 0]
        cmap = MappingNetwork(w_dim=cmap_dim, num_layers=self.mapping_layers,
                              num_classes=self.num_classes, w_avg_beta=None,
                              name='mapping')(None, labels, train=False)
        return jnp.sum(out * cmap.astype(out.dtype), axis=-1) / math.sqrt(cmap_dim)
