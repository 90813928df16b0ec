"""PyTorch eager reference of gan_jax's networks and update step, timed
against ours by scripts/bench_step.py.

The networks (`networks`) have the layer shapes, parameter counts and FLOPs of
gan_jax.models' MLP, DCGAN, ResNet (unconditional, no attention) and
StyleGAN2 (class-conditional when data.labels is set), with the same BN
momentum/eps and spectral norm (one power iteration per training forward);
images are NCHW, torch's own layout. The step (`make_step`) repeats
gan_jax.train.train_step in the same order, with the same losses (`losses`)
and Adam hyperparameters. Needs torch (the `torch` extra); gan_jax and
bench_step import without it.

StyleGAN2 is written in torch's reference ops, no custom CUDA ops: the
modulated convolution in ours (and stylegan2-ada's) non-fused form (scale
the input channels, conv2d, demodulate the output channels); the FIR
up/downsampling as stylegan2-ada's reference upfirdn2d (zero insertion and
F.pad, a depthwise conv2d), up convs as a stride-2 conv_transpose2d then the
filter; ADA's resampling as grid_sample (bilinear, reflection), which is our
mirror-extended bilinear gather. Its parameters are named as ours, so
`load_flax_variables` copies a Flax G or D in (tests/test_bench_step.py:
same images and logits). `make_stylegan2_step` runs train_step's phases on
its step counter: ADA on everything D sees with p adapted, lazy R1 (a second
derivative through D and the augmentation), lazy path length, style mixing,
Adam with the lazy-interval correction, the half-life EMA. Where ours runs
a lazy phase on the step number, so does this step (`first_step` aligns
the counters); which phase bench_step times is in its docstring.

`make_step` also builds the forms a PyTorch expert would time (VARIANTS):
channels_last images and weights, the fused Adam kernel, bfloat16 autocast and
torch.compile'd networks. They change how the step is computed, not what.
"""
import contextlib
import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_jax import ada
from gan_jax.models import dcgan, resnet, stylegan2


def _bn(num_features, flax_momentum, dims=2):
    """The BatchNorm of flax's nn.BatchNorm(momentum=flax_momentum)."""
    # flax: ra = m·ra + (1 - m)·batch; torch: ra = (1 - m')·ra + m'·batch.
    # eps 1e-5 in both. (torch's running variance is unbiased, flax's is
    # biased: it changes only the inference statistics, not the cost.)
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(num_features, eps=1e-5, momentum=1.0 - flax_momentum)


def _sn(module, spectral=True):
    return spectral_norm(module) if spectral else module


class MLPGenerator(nn.Module):
    """gan_jax.models.mlp.Generator: z [B, z_dim] -> x [B, *out_shape]."""

    def __init__(self, z_dim, out_shape, hidden, batch_norm, bn_momentum):
        super().__init__()
        self.out_shape = tuple(out_shape)
        layers, width_in = [], z_dim
        for width in hidden:
            layers.append(nn.Linear(width_in, width, bias=not batch_norm))
            if batch_norm:
                layers.append(_bn(width, bn_momentum, dims=1))
            layers.append(nn.ReLU())
            width_in = width
        layers.append(nn.Linear(width_in, int(np.prod(out_shape))))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).view((z.shape[0],) + self.out_shape)


class Maxout(nn.Module):
    """gan_jax.models.layers.MaxoutDense: [B, D_in] -> [B, features]."""

    def __init__(self, width_in, features, pieces):
        super().__init__()
        self.features, self.pieces = features, pieces
        self.dense = nn.Linear(width_in, features * pieces)

    def forward(self, x):
        h = self.dense(x).view(x.shape[0], self.features, self.pieces)
        # max(), not amax(): torch's amax gradient (mask, count, divide)
        # is several times slower on CPU; without ties both give jnp.max's.
        return h.max(dim=-1).values


class MLPDiscriminator(nn.Module):
    """gan_jax.models.mlp.Discriminator: x [B, *shape] -> logits [B // pack]."""

    def __init__(self, data_shape, hidden, maxout_pieces, pack):
        super().__init__()
        self.pack = pack
        layers, width_in = [], pack * int(np.prod(data_shape))
        for width in hidden:
            if maxout_pieces > 1:
                layers.append(Maxout(width_in, width, maxout_pieces))
            else:
                layers += [nn.Linear(width_in, width), nn.LeakyReLU(0.2)]
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(x.shape[0] // self.pack, -1))[:, 0]


class DCGANGenerator(nn.Module):
    """gan_jax.models.dcgan.Generator: z [B, z_dim] -> [B, C, H, W].

    ConvTranspose2d(4, stride 2, padding 1) is the function of our 'SAME'
    transposed convolution (ours computes it as a strided convolution's
    adjoint) with the kernel flipped.
    """

    def __init__(self, z_dim, out_shape, base_channels, bn_momentum):
        super().__init__()
        size, _, c_out = out_shape
        self.start, n = dcgan.stages(size)
        channels = base_channels * 2 ** (n - 1)
        self.channels = channels
        self.dense = nn.Linear(z_dim, self.start ** 2 * channels, bias=False)
        layers = [_bn(channels, bn_momentum), nn.ReLU()]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1,
                                          bias=False),
                       _bn(channels // 2, bn_momentum), nn.ReLU()]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, c_out, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        h = self.dense(z).view(-1, self.channels, self.start, self.start)
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """gan_jax.models.dcgan.Discriminator: [B, C, H, W] -> logits [B]."""

    def __init__(self, data_shape, base_channels, norm, num_layers):
        super().__init__()
        size, _, channels = data_shape
        spectral = norm == 'spectral'
        layers = []
        for i in range(num_layers or dcgan.stages(size)[1]):
            bn_follows = i > 0 and norm == 'batch'
            out = base_channels * 2 ** i
            layers.append(_sn(nn.Conv2d(channels, out, 4, 2, 1,
                                        bias=not bn_follows), spectral))
            if bn_follows:
                layers.append(_bn(out, 0.9))
            layers.append(nn.LeakyReLU(0.2))
            channels, size = out, size // 2
        layers += [nn.Flatten(), _sn(nn.Linear(channels * size * size, 1), spectral)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)[:, 0]


def _upsample(x):
    return F.interpolate(x, scale_factor=2, mode='nearest')


class GBlock(nn.Module):
    """gan_jax.models.resnet.GBlock (unconditional)."""

    def __init__(self, channels_in, features):
        super().__init__()
        self.bn1, self.bn2 = _bn(channels_in, 0.9), _bn(features, 0.9)
        self.conv1 = nn.Conv2d(channels_in, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.shortcut = nn.Conv2d(channels_in, features, 1)

    def forward(self, x):
        h = self.conv1(_upsample(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_upsample(x))


class DBlock(nn.Module):
    """gan_jax.models.resnet.DBlock."""

    def __init__(self, channels_in, features, downsample, first, spectral):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = _sn(nn.Conv2d(channels_in, features, 3, padding=1), spectral)
        self.conv2 = _sn(nn.Conv2d(features, features, 3, padding=1), spectral)
        self.shortcut = None
        if first or downsample or channels_in != features:
            self.shortcut = _sn(nn.Conv2d(channels_in, features, 1), spectral)

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.first:
            shortcut = self.shortcut(F.avg_pool2d(x, 2))
        elif self.shortcut is not None:
            shortcut = self.shortcut(x)
            if self.downsample:
                shortcut = F.avg_pool2d(shortcut, 2)
        else:
            shortcut = x
        return h + shortcut


class ResNetGenerator(nn.Module):
    """gan_jax.models.resnet.Generator (unconditional, no attention)."""

    def __init__(self, z_dim, out_shape, channels):
        super().__init__()
        size, _, c_out = out_shape
        channels = tuple(channels) or resnet.ARCHS[size][0]
        self.channels = channels[0]
        self.dense = nn.Linear(z_dim, 4 * 4 * channels[0])
        blocks, channels_in = [], channels[0]
        for features in channels:
            blocks.append(GBlock(channels_in, features))
            channels_in = features
        self.blocks = nn.Sequential(*blocks)
        self.bn = _bn(channels_in, 0.9)
        self.out = nn.Conv2d(channels_in, c_out, 3, padding=1)

    def forward(self, z):
        h = self.blocks(self.dense(z).view(-1, self.channels, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(nn.Module):
    """gan_jax.models.resnet.Discriminator (unconditional, no attention)."""

    def __init__(self, data_shape, channels, spectral):
        super().__init__()
        size, _, channels_in = data_shape
        channels = tuple(channels) or resnet.ARCHS[size][1]
        blocks = []
        for i, (features, down) in enumerate(zip(channels, resnet.ARCHS[size][2])):
            blocks.append(DBlock(channels_in, features, down, i == 0, spectral))
            channels_in = features
        self.blocks = nn.Sequential(*blocks)
        self.dense = _sn(nn.Linear(channels_in, 1), spectral)

    def forward(self, x):
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.dense(features)[:, 0]


# --------------------------------------------------------------------------- #
# StyleGAN2 (gan_jax.models.stylegan2), NCHW. Parameters are named and stored #
# as ours (stored weights ~ N(0, 1) / lr multiplier, scaled in the forward    #
# pass), in torch's layouts: load_flax_variables copies ours in.              #
# --------------------------------------------------------------------------- #
_FIR_CACHE: Dict[Tuple[int, float, str, torch.dtype], torch.Tensor] = {}


def _fir_kernel(channels: int, gain: float, like: torch.Tensor) -> torch.Tensor:
    """[channels, 1, f, f]: outer(taps, taps) / sum(taps)^2 * gain for a
    depthwise conv2d (stylegan2-ada's setup_filter; the taps are symmetric, so
    convolution and correlation agree). Cached per channels, gain, device and
    dtype: eager code would otherwise rebuild it at every call."""
    key = (channels, gain, str(like.device), like.dtype)
    if key not in _FIR_CACHE:
        taps = torch.tensor(stylegan2.FIR_TAPS, dtype=torch.float64)
        f = torch.outer(taps, taps) / taps.sum() ** 2 * gain
        _FIR_CACHE[key] = f.to(like.device, like.dtype)[None, None].repeat(
            channels, 1, 1, 1)
    return _FIR_CACHE[key]


def upfirdn2d(x, *, up: int = 1, down: int = 1, padding=(0, 0), gain: float = 1.0):
    """stylegan2.upfirdn2d on [B, C, H, W], in the form of stylegan2-ada's
    reference op (_upfirdn2d_ref): up - 1 zeros after every pixel, F.pad by
    (before, after), a depthwise conv2d with the FIR filter, every down-th
    pixel (as the conv's stride: the same pixels, without computing the
    others)."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = padding
    x = F.pad(x, [p0, p1, p0, p1])
    return F.conv2d(x, _fir_kernel(c, gain, x), stride=down, groups=c)


def upsample2d(x):
    """stylegan2.upsample2d: [B, C, H, W] -> [B, C, 2H, 2W] (bilinear FIR)."""
    f = len(stylegan2.FIR_TAPS)
    return upfirdn2d(x, up=2, padding=((f + 1) // 2, (f - 2) // 2), gain=4.0)


def conv2d_resample(x, weight, *, up: int = 1, down: int = 1):
    """stylegan2.conv2d_resample with weight [O, I, k, k]: up=2 a stride-2
    conv_transpose2d then the FIR filter (our lhs-dilated convolution with
    the flipped kernel is that transposed convolution); down=2 the filter then
    a stride-2 conv (k > 1), or downsample then the 1x1 conv; else 'same'."""
    k, f = weight.shape[-1], len(stylegan2.FIR_TAPS)
    pad = k // 2
    if up == 2 and down == 1:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        return upfirdn2d(x, padding=(pad + (f + 1) // 2 - (k - 1),
                                     pad + (f - 2) // 2 - (k - 2)), gain=4.0)
    if down == 2 and up == 1:
        if k == 1:
            return F.conv2d(upfirdn2d(x, down=2, padding=((f - 1) // 2,
                                                          (f - 2) // 2)), weight)
        x = upfirdn2d(x, padding=(pad + (f - 1) // 2, pad + (f - 2) // 2))
        return F.conv2d(x, weight, stride=2)
    if up == 1 and down == 1:
        return F.conv2d(x, weight, padding=pad)
    raise ValueError(f'conv2d_resample supports up=2 or down=2, got up={up}, '
                     f'down={down}')


def modulated_conv2d(x, weight, styles, *, demodulate: bool = True, up: int = 1):
    """stylegan2.modulated_conv2d in its non-fused form, as ours: x [B, I, H, W]
    times styles [B, I] per input channel, conv2d_resample with the shared
    weight [O, I, k, k], times rsqrt(styles^2 @ sum_hw(weight^2) + 1e-8)
    [B, O] per output channel (demodulate) -> [B, O, H * up, W * up]."""
    x = x * styles[:, :, None, None].to(x.dtype)
    x = conv2d_resample(x, weight.to(x.dtype), up=up)
    if demodulate:
        sq = weight.square().sum(dim=(2, 3))  # [O, I]
        dcoefs = torch.rsqrt(styles.square() @ sq.t() + 1e-8)  # [B, O]
        x = x * dcoefs[:, :, None, None].to(x.dtype)
    return x


def bias_act(x, bias, activation: str, gain: float = 1.0):
    """stylegan2.bias_act with the bias along dim 1 ([B, F] or [B, C, H, W])."""
    if bias is not None:
        x = x + bias.view((1, -1) + (1,) * (x.dim() - 2)).to(x.dtype)
    if activation == 'lrelu':
        return F.leaky_relu(x, stylegan2.LRELU_SLOPE) * (stylegan2.LRELU_GAIN * gain)
    if activation == 'linear':
        return x * gain if gain != 1 else x
    raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")


def normalize_2nd_moment(x, eps: float = 1e-8):
    """x / sqrt(mean(x^2) + eps) over dim 1."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x, group_size: int, num_channels: int):
    """stylegan2.minibatch_stddev on NCHW: [B, C, H, W] -> [B, C + F, H, W];
    sample i in group i mod (B / G), channels split in F groups as ours."""
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g:
        raise ValueError(f'minibatch stddev: a batch of {b} is not a multiple of '
                         f'the group size {g}')
    f = num_channels
    y = x.reshape(g, b // g, f, c // f, h, w).float()
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, C / F, H, W]
    y = y.mean(dim=(2, 3, 4)).repeat(g, 1).to(x.dtype)  # [B, F], row i: group i mod n
    return torch.cat([x, y[:, :, None, None].expand(b, f, h, w)], dim=1)


class EqualDense(nn.Module):
    """stylegan2.EqualDense: [B, in_features] -> [B, features]; kernel
    [features, in_features] (ours transposed) stored ~ N(0, 1) / lr_multiplier
    and used times lr_multiplier / sqrt(in_features), bias times lr_multiplier."""

    def __init__(self, in_features, features, use_bias=True, bias_init=0.0,
                 lr_multiplier=1.0, activation='linear'):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(features, in_features) / lr_multiplier)
        self.bias = (nn.Parameter(torch.full((features,), float(bias_init)))
                     if use_bias else None)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier, self.activation = lr_multiplier, activation

    def forward(self, x):
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        if self.activation == 'linear' and bias is not None:  # one addmm
            return F.linear(x, self.kernel * self.weight_gain, bias)
        return bias_act(F.linear(x, self.kernel * self.weight_gain), bias,
                        self.activation)


class EqualConv(nn.Module):
    """stylegan2.EqualConv: [B, I, H, W] -> [B, features, H / down, W / down];
    kernel [features, I, k, k] (ours is [k, k, I, features]) used times
    lr_multiplier / sqrt(I k k); forward's gain multiplies the activation's."""

    def __init__(self, in_channels, features, kernel_size=3, use_bias=True,
                 bias_init=0.0, lr_multiplier=1.0, activation='linear', down=1):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(features, in_channels, kernel_size,
                                               kernel_size) / lr_multiplier)
        self.bias = (nn.Parameter(torch.full((features,), float(bias_init)))
                     if use_bias else None)
        self.weight_gain = lr_multiplier / math.sqrt(in_channels * kernel_size ** 2)
        self.lr_multiplier, self.activation, self.down = (lr_multiplier, activation,
                                                          down)

    def forward(self, x, gain: float = 1.0):
        x = conv2d_resample(x, (self.kernel * self.weight_gain).to(x.dtype),
                            down=self.down)
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return bias_act(x, bias, self.activation, gain)


class MappingNetwork(nn.Module):
    """stylegan2.MappingNetwork: (z [B, z_dim] or None, labels [B] or None) ->
    w [B, w_dim], or [B, num_ws, w_dim] when num_ws > 0; w_avg (a buffer, our
    'stats') moves only in training with update_w_avg."""

    def __init__(self, z_dim, w_dim, num_layers, num_ws=0, num_classes=0,
                 embed_features=0, layer_features=0, lr_multiplier=0.01,
                 w_avg_beta=0.995):
        super().__init__()
        self.num_ws, self.num_classes, self.w_avg_beta = num_ws, num_classes, w_avg_beta
        width = z_dim
        if num_classes:
            self.embed = EqualDense(num_classes, embed_features or w_dim)
            width += embed_features or w_dim
        self.num_layers = num_layers
        for i in range(num_layers):
            features = w_dim if i == num_layers - 1 else (layer_features or w_dim)
            self.add_module(f'fc{i}', EqualDense(width, features,
                                                 lr_multiplier=lr_multiplier,
                                                 activation='lrelu'))
            width = features
        if w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros(w_dim))

    def forward(self, z, labels=None, update_w_avg: bool = True):
        parts = [] if z is None else [normalize_2nd_moment(z)]
        if self.num_classes:
            onehot = F.one_hot(labels.long(), self.num_classes).to(
                torch.float32 if z is None else z.dtype)
            parts.append(normalize_2nd_moment(self.embed(onehot)))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f'fc{i}')(x)
        if self.w_avg_beta is not None and self.training and update_w_avg:
            with torch.no_grad():  # w_avg <- lerp(mean_batch(w), w_avg, beta)
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(
                    self.w_avg, self.w_avg_beta))
        if self.num_ws:
            x = x[:, None, :].expand(x.shape[0], self.num_ws, x.shape[1])
        return x


class SynthesisLayer(nn.Module):
    """stylegan2.SynthesisLayer: x [B, I, r / up, r / up], w [B, w_dim] ->
    [B, features, r, r]; the 'const' noise is the buffer `noise` [r, r]."""

    def __init__(self, in_channels, features, resolution, w_dim, up=1,
                 kernel_size=3, use_noise=True):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.affine = EqualDense(w_dim, in_channels, bias_init=1.0)
        self.kernel = nn.Parameter(torch.randn(features, in_channels, kernel_size,
                                               kernel_size))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer('noise', torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x, w, noise_mode: str):
        styles = self.affine(w)
        x = modulated_conv2d(x, self.kernel, styles, demodulate=True, up=self.up)
        if self.use_noise and noise_mode == 'random':
            r = self.resolution
            noise = torch.randn(x.shape[0], 1, r, r, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif self.use_noise and noise_mode == 'const':
            x = x + (self.noise * self.noise_strength).to(x.dtype)
        return bias_act(x, self.bias, 'lrelu')


class ToRGB(nn.Module):
    """stylegan2.ToRGB: modulated 1x1 conv (styles / sqrt(I), no
    demodulation) plus bias: [B, I, r, r] -> [B, channels, r, r]."""

    def __init__(self, in_channels, channels, w_dim):
        super().__init__()
        self.affine = EqualDense(w_dim, in_channels, bias_init=1.0)
        self.kernel = nn.Parameter(torch.randn(channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.style_gain
        return bias_act(modulated_conv2d(x, self.kernel, styles, demodulate=False),
                        self.bias, 'linear')


class SynthesisBlock(nn.Module):
    """stylegan2.SynthesisBlock: (x, img, ws [B, n, w_dim]) -> (x [B, features,
    r, r], img [B, C, r, r]); at r = 4 the learned constant `const` [features,
    4, 4] (ours [4, 4, features]) and one conv, else an up conv and a conv."""

    def __init__(self, in_channels, features, resolution, img_channels, w_dim,
                 use_noise=True):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(features, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, features, resolution, w_dim,
                                        up=2, use_noise=use_noise)
        self.conv1 = SynthesisLayer(features, features, resolution, w_dim,
                                    use_noise=use_noise)
        self.torgb = ToRGB(features, img_channels, w_dim)

    def forward(self, x, img, ws, noise_mode: str):
        if self.first:
            x = self.const[None].to(ws.dtype).expand((ws.shape[0],) + self.const.shape)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, -1])
        return x, (y if img is None else upsample2d(img) + y)


class SynthesisNetwork(nn.Module):
    """stylegan2.SynthesisNetwork: ws [B, num_ws, w_dim] -> [B, C, R, R]."""

    def __init__(self, resolution, img_channels, w_dim, channel_base, channel_max,
                 use_noise=True):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        in_channels = 0
        for r in self.resolutions:
            features = stylegan2.channels_at(r, channel_base, channel_max)
            self.add_module(f'b{r}', SynthesisBlock(in_channels, features, r,
                                                    img_channels, w_dim, use_noise))
            in_channels = features

    def forward(self, ws, noise_mode: str):
        x = img = None
        w_idx = 0
        for r in self.resolutions:
            num_conv = 1 if r == 4 else 2
            x, img = getattr(self, f'b{r}')(x, img, ws[:, w_idx:w_idx + num_conv + 1],
                                            noise_mode)
            w_idx += num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """stylegan2.Generator: (z [B, z_dim], labels [B] when num_classes > 0) ->
    images [B, C, H, W]; the keyword arguments are model.g's keys. In
    training (module.train()) the noise is random unless noise_mode says
    otherwise, and with style_mixing_prob > 0 a second z's ws replace the
    layers from a crossover in [1, num_ws) with that probability, one per
    batch (sample_ws)."""

    def __init__(self, z_dim, out_shape, num_classes=0, *, w_dim=512,
                 mapping_layers=8, mapping_lr_multiplier=0.01, w_avg_beta=0.995,
                 channel_base=16384, channel_max=512, style_mixing_prob=0.9,
                 use_noise=True):
        super().__init__()
        resolution = stylegan2.check_resolution(out_shape, 'generator')
        self.num_ws = stylegan2.num_ws(resolution)
        self.style_mixing_prob = style_mixing_prob
        self.mapping_network = MappingNetwork(
            z_dim, w_dim, mapping_layers, num_ws=self.num_ws, num_classes=num_classes,
            lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta)
        self.synthesis_network = SynthesisNetwork(resolution, out_shape[2], w_dim,
                                                  channel_base, channel_max, use_noise)

    def sample_ws(self, z, labels=None, update_w_avg: bool = True):
        """mapping(z), style-mixed in training: [B, num_ws, w_dim]. The
        crossover stays on the device (no host sync): torch.where on it."""
        ws = self.mapping_network(z, labels, update_w_avg)
        if self.training and self.style_mixing_prob > 0 and self.num_ws > 1:
            ws2 = self.mapping_network(torch.randn_like(z), labels, update_w_avg=False)
            cutoff = torch.randint(1, self.num_ws, (), device=z.device)
            cutoff = torch.where(torch.rand((), device=z.device) < self.style_mixing_prob,
                                 cutoff, self.num_ws)
            layer = torch.arange(self.num_ws, device=z.device)[None, :, None]
            ws = torch.where(layer < cutoff, ws, ws2)
        return ws

    def synthesis(self, ws, noise_mode: Optional[str] = None):
        """ws -> images; noise_mode None: 'random' in training, else 'const'."""
        if noise_mode is None:
            noise_mode = 'random' if self.training else 'const'
        return self.synthesis_network(ws, noise_mode)

    def forward(self, z, labels=None, update_w_avg: bool = True,
                noise_mode: Optional[str] = None):
        return self.synthesis(self.sample_ws(z, labels, update_w_avg), noise_mode)


class StyleGAN2DBlock(nn.Module):
    """stylegan2.DBlock: [B, I, r, r] -> [B, features, r / 2, r / 2], (conv3x3,
    conv3x3 down) + 1x1 down skip, both times sqrt(0.5)."""

    def __init__(self, in_channels, tmp_features, features):
        super().__init__()
        self.skip = EqualConv(in_channels, features, 1, use_bias=False, down=2)
        self.conv0 = EqualConv(in_channels, tmp_features, 3, activation='lrelu')
        self.conv1 = EqualConv(tmp_features, features, 3, activation='lrelu', down=2)

    def forward(self, x):
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class StyleGAN2Discriminator(nn.Module):
    """stylegan2.Discriminator: (images [B, C, R, R], labels [B] when
    num_classes > 0) -> logits [B]; the keyword arguments are model.d's keys.
    `fc` reads the 4x4 features flattened as NCHW (C, H, W); ours flattens
    NHWC, so load_flax_variables permutes its kernel's rows."""

    def __init__(self, data_shape, num_classes=0, *, channel_base=16384,
                 channel_max=512, mbstd_group_size=4, mbstd_num_channels=1,
                 cmap_dim=0, mapping_layers=8):
        super().__init__()
        size = stylegan2.check_resolution(data_shape, 'discriminator')
        ch = lambda r: stylegan2.channels_at(r, channel_base, channel_max)  # noqa: E731
        self.num_classes = num_classes
        self.mbstd_group_size, self.mbstd_num_channels = (mbstd_group_size,
                                                          mbstd_num_channels)
        self.fromrgb = EqualConv(data_shape[2], ch(size), 1, activation='lrelu')
        self.resolutions = []
        r = size
        while r > 4:
            self.add_module(f'b{r}', StyleGAN2DBlock(ch(r), ch(r), ch(r // 2)))
            self.resolutions.append(r)
            r //= 2
        c4 = ch(4)
        self.cmap_dim = cmap_dim or c4
        self.conv = EqualConv(c4 + mbstd_num_channels, c4, 3, activation='lrelu')
        self.fc = EqualDense(c4 * 16, c4, activation='lrelu')
        self.out = EqualDense(c4, self.cmap_dim if num_classes else 1)
        if num_classes:
            self.mapping = MappingNetwork(0, self.cmap_dim, mapping_layers,
                                          num_classes=num_classes, w_avg_beta=None)

    def forward(self, x, labels=None):
        h = self.fromrgb(x)
        for r in self.resolutions:
            h = getattr(self, f'b{r}')(h)
        if self.mbstd_num_channels:
            h = minibatch_stddev(h, self.mbstd_group_size, self.mbstd_num_channels)
        h = self.fc(self.conv(h).flatten(1))
        out = self.out(h)
        if not self.num_classes:
            return out[:, 0]
        cmap = self.mapping(None, labels)
        return (out * cmap.to(out.dtype)).sum(dim=1) / math.sqrt(self.cmap_dim)


def load_flax_variables(module, variables) -> None:
    """Copies the flax variables of a gan_jax.models.stylegan2 Generator or
    Discriminator into its torch twin (StyleGAN2Generator /
    StyleGAN2Discriminator of the same config): 'params' by name in torch's
    layouts (dense kernels transposed, conv kernels HWIO -> OIHW, the
    constant HWC -> CHW, D's fc rows from (H, W, C) to (C, H, W) order), and
    'noise_const' and 'stats' (w_avg) into the buffers of the same names.

    Raises:
      ValueError: the parameter names differ (not the same architecture).
    """
    from flax import traverse_util
    own = dict(module.named_parameters())
    flat = traverse_util.flatten_dict(dict(variables['params']), sep='.')
    if set(flat) != set(own):
        raise ValueError(f'parameters differ: only ours {sorted(set(flat) - set(own))}, '
                         f'only torch {sorted(set(own) - set(flat))}')
    with torch.no_grad():
        for name, value in flat.items():
            value = torch.from_numpy(np.array(value, np.float32))
            if value.dim() == 4:  # [k, k, I, O] -> [O, I, k, k]
                value = value.permute(3, 2, 0, 1)
            elif value.dim() == 3:  # the constant [r, r, C] -> [C, r, r]
                value = value.permute(2, 0, 1)
            elif value.dim() == 2 and (name == 'fc.kernel' and isinstance(
                    module, StyleGAN2Discriminator)):
                c = value.shape[0] // 16  # rows (h, w, c) of the 4x4 features
                value = value.reshape(4, 4, c, -1).permute(3, 2, 0, 1).reshape(
                    value.shape[1], -1)
            elif value.dim() == 2:  # [in, out] -> [out, in]
                value = value.t()
            own[name].copy_(value)
        buffers = dict(module.named_buffers())
        for collection in ('noise_const', 'stats'):
            for name, value in traverse_util.flatten_dict(
                    dict(variables.get(collection, {})), sep='.').items():
                buffers[name].copy_(torch.from_numpy(np.array(value, np.float32)))


def networks(config, data_shape):
    """(G, D) torch modules identical in layer shapes to gan_jax's networks of
    `config` for samples of `data_shape` (HWC for images).

    StyleGAN2 is class-conditional when config.data.labels is set (as
    ours: label embedding in G's mapping, projection D).

    Raises:
      NotImplementedError: a model option the reference does not mirror
        (conditional or attention ResNet, packed image D).
    """
    g, d, z_dim = config.model.g, config.model.d, config.model.z_dim
    name = config.model.name
    if name == 'mlp':
        return (MLPGenerator(z_dim, data_shape, g.hidden, g.batch_norm,
                             g.bn_momentum),
                MLPDiscriminator(data_shape, d.hidden, d.maxout_pieces, d.pack))
    if name == 'dcgan':
        if d.pack != 1:
            raise NotImplementedError('the torch reference has no packed DCGAN D')
        return (DCGANGenerator(z_dim, data_shape, g.base_channels, g.bn_momentum),
                DCGANDiscriminator(data_shape, d.base_channels, d.norm,
                                   d.num_layers))
    if name == 'resnet':
        # Conditioning comes from data.labels (models.build sets num_classes).
        if config.data.labels or g.attention_resolution or d.attention_resolution:
            raise NotImplementedError('the torch reference has no conditional or '
                                      'attention ResNet')
        return (ResNetGenerator(z_dim, data_shape, g.channels),
                ResNetDiscriminator(data_shape, d.channels, d.spectral))
    if name == 'stylegan2':
        classes = num_classes(config)
        return (StyleGAN2Generator(z_dim, data_shape, classes, **dict(g)),
                StyleGAN2Discriminator(data_shape, classes, **dict(d)))
    raise NotImplementedError(f'no torch reference for model {name!r}')


def num_classes(config) -> int:
    """How many classes a conditional model of `config` takes labels from (0:
    unconditional), as gan_jax.experiment.build decides (reads no data)."""
    if not config.data.labels:
        return 0
    from gan_jax import data
    info = data.get_info(config)
    return info.num_classes if info.label_shape == () else 0


def losses(name: str):
    """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) of gan_jax.losses."""
    d_losses = {
        'logistic': lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
        'wasserstein': lambda r, f: f.mean() - r.mean(),
        'hinge': lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean(),
        'least_squares': lambda r, f: (0.5 * ((r - 1.0) ** 2).mean()
                                       + 0.5 * (f ** 2).mean()),
    }
    g_losses = {
        'non_saturating': lambda f: F.softplus(-f).mean(),
        'minimax': lambda f: -F.softplus(f).mean(),
        'wasserstein': lambda f: -f.mean(),
        'least_squares': lambda f: 0.5 * ((f - 1.0) ** 2).mean(),
    }
    pairs = {'non_saturating': ('logistic', 'non_saturating'),
             'minimax': ('logistic', 'minimax'),
             'wasserstein': ('wasserstein', 'wasserstein'),
             'hinge': ('hinge', 'wasserstein'),
             'least_squares': ('least_squares', 'least_squares')}
    d_name, g_name = pairs[name]
    return d_losses[d_name], g_losses[g_name]


# Forms of the same step (make_step's `variant`): what each changes.
VARIANTS = {
    'eager': 'as written: NCHW tensors, Adam(foreach=True)',
    'tuned': 'channels_last images and weights, Adam(fused=True) where the '
             'device has the fused kernel',
    'compiled': "tuned, with G and D through torch.compile (inductor; on a CPU "
                'it needs a C++ compiler)',
}


def fused_adam_available(device) -> bool:
    """Whether torch's fused Adam kernel runs on `device` (CUDA; CPU from
    torch 2.4): one tiny update, as the optimizer checks only at its first
    step on some versions."""
    try:
        p = torch.zeros(2, device=device, requires_grad=True)
        p.grad = torch.ones_like(p)
        torch.optim.Adam([p], fused=True).step()
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def _autocast(device, dtype):
    """A context factory: torch.autocast to `dtype` on `device`, or nothing
    when dtype is None (float32)."""
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def _adam(params, opt, updates_per_step: int, fused: bool, reg_interval: int = 1):
    """(torch Adam, LR schedule or None) of gan_jax.train.make_optimizer(opt,
    updates_per_step, reg_interval): optax.adam's eps 1e-8 outside the square
    root, as torch's; with lazy regularization every reg_interval > 1 steps,
    lr * c and betas ** c, c = reg_interval / (reg_interval + 1)."""
    lr, b1, b2 = opt.lr, opt.b1, opt.b2
    if reg_interval > 1:
        c = reg_interval / (reg_interval + 1)
        lr, b1, b2 = lr * c, b1 ** c, b2 ** c
    adam = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8,
                            **({'fused': True} if fused else {'foreach': True}))
    schedule = None
    if opt.schedule == 'linear':  # optax.linear_schedule(lr, 0, N)
        total = opt.decay_steps * updates_per_step
        schedule = torch.optim.lr_scheduler.LambdaLR(
            adam, lambda count: max(0.0, 1.0 - count / total))
    return adam, schedule


@contextlib.contextmanager
def _frozen(module):
    """No gradient for `module`'s weights inside (jax.grad of the other
    network's parameters takes none), their requires_grad restored after."""
    params = list(module.parameters())
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _grad_norm(params):
    """The global L2 norm of the parameters' gradients (optax.tree.norm)."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(
        [p.grad for p in params if p.grad is not None])))


def _d_update(d_opt, d_sched, d_loss, real_logits, fake_logits, d_params):
    """Backward of D's loss and one optimizer (and schedule) step; returns
    the update's metrics [loss, mean D(real), mean D(fake), D's gradient
    norm] (the norm taken before the step)."""
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    metrics = torch.stack([d_loss.detach(), real_logits.detach().mean(),
                           fake_logits.detach().mean(), _grad_norm(d_params)])
    d_opt.step()
    if d_sched is not None:
        d_sched.step()
    return metrics


def make_step(config, data_shape, device, variant: str = 'eager',
              autocast_dtype=None, first_step: int = 0):
    """(step(reals) -> metrics, G, D) of the PyTorch reference.

    Mirrors gan_jax.train.train_step: per D update fresh latents, fakes from G
    in training mode without gradient and with G's BN statistics kept as they
    were; D on concatenate([real, fake]); Adam. Then the G update on fresh
    latents through D in training mode (D's statistics and power-iteration
    vectors restored, no gradient for D's weights, as jax.grad takes none),
    then the EMA of G's parameters. reals: [n_critic, B, C, H, W] (or
    [n_critic, B, 2] for points), or a sequence of n_critic [B, ...] batches
    (channels_last ones for the 'tuned' and 'compiled' variants, see
    `as_input`). Metrics stay on the device (no sync).

    Args:
      variant: a key of VARIANTS. 'tuned' falls back to Adam(foreach=True)
        where fused_adam_available() is False (step.adam says which ran).
      autocast_dtype: e.g. torch.bfloat16: G's and D's forward passes and the
        losses under torch.autocast (the master weights, Adam and the EMA stay
        float32, as gan_jax's compute_dtype). None: float32.
      first_step: the step counter at the first call (our state.step): the
        EMA start and StyleGAN2's lazy phases follow it.
    """
    from gan_jax import regularizers
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; valid: {", ".join(VARIANTS)}')
    if config.model.name == 'stylegan2':
        return make_stylegan2_step(config, data_shape, device, variant, autocast_dtype,
                                   first_step)
    for penalty in regularizers.PENALTIES:
        if config.reg[penalty.key]:
            raise NotImplementedError(f'the torch reference has no reg.{penalty.key}')
    if config.augment.policy:
        raise NotImplementedError('the torch reference has no DiffAugment')
    G, D = (net.to(device).train() for net in networks(config, data_shape))
    tuned = variant != 'eager'
    if tuned:
        # Only 4-D weights and buffers change format; dense layers stay.
        G, D = (net.to(memory_format=torch.channels_last) for net in (G, D))
    fused = tuned and fused_adam_available(device)
    d_loss_fn, g_loss_fn = losses(config.loss.name)
    autocast = _autocast(device, autocast_dtype)
    g_opt, g_sched = _adam(G.parameters(), config.opt.g, 1, fused)
    d_opt, d_sched = _adam(D.parameters(), config.opt.d, config.n_critic, fused)
    g_params = [p.detach() for p in G.parameters()]  # views: see the updates
    ema = [p.clone() for p in g_params]
    z_dim, n_critic = config.model.z_dim, config.n_critic
    ema_decay, ema_start = float(config.ema.decay), config.ema.start_step
    counter = {'step': first_step}

    @contextlib.contextmanager
    def buffers_kept(module):
        """Runs `module` in training mode but restores its buffers (BN running
        statistics, spectral-norm u/v) afterwards, as our step drops them."""
        saved = [b.clone() for b in module.buffers()]
        try:
            yield
        finally:
            with torch.no_grad():
                for b, s in zip(module.buffers(), saved):
                    b.copy_(s)

    d_params = list(D.parameters())
    g_params_grad = list(G.parameters())
    # The parameters, buffers and hooks above belong to the modules; the
    # compiled wrappers share them. dynamic=False: D sees batch 2B in its own
    # update and B in G's, two static graphs instead of a dynamic-shape one.
    g_net, d_net = ((torch.compile(G, dynamic=False), torch.compile(D, dynamic=False))
                    if variant == 'compiled' else (G, D))

    def step(reals):
        batch_size = reals[0].shape[0]
        d_metrics = []
        for i in range(n_critic):
            z = torch.randn(batch_size, z_dim, device=device)
            with torch.no_grad(), buffers_kept(G), autocast():
                fake = g_net(z)
            with autocast():
                logits = d_net(torch.cat([reals[i], fake.to(reals[i].dtype)]))
                real_logits, fake_logits = logits.float().chunk(2)
                d_loss = d_loss_fn(real_logits, fake_logits)
            d_metrics.append(_d_update(d_opt, d_sched, d_loss, real_logits,
                                       fake_logits, d_params))
        z = torch.randn(batch_size, z_dim, device=device)
        with _frozen(D), buffers_kept(D):
            with autocast():
                fake = g_net(z)  # G's BN statistics move here, as in g_step
                g_loss = g_loss_fn(d_net(fake).float())
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
        g_norm = _grad_norm(g_params_grad)
        g_opt.step()
        if g_sched is not None:
            g_sched.step()
        beta = 0.0 if counter['step'] < ema_start else ema_decay
        with torch.no_grad():
            torch._foreach_lerp_(ema, g_params, 1.0 - beta)  # beta·ema + (1-beta)·p
        counter['step'] += 1
        d_mean = torch.stack(d_metrics).mean(dim=0)
        guarded = torch.stack([d_mean[0], g_loss.detach(), d_mean[3], g_norm])
        return {'d': d_mean, 'g': g_loss.detach(),
                'nonfinite': (~torch.isfinite(guarded)).any()}

    step.adam = 'fused' if fused else 'foreach'
    return step, G, D


# --------------------------------------------------------------------------- #
# ADA (gan_jax.ada) in torch: the same ops, parameters and probabilities, a   #
# per-sample inverse matrix resampled once with grid_sample, a color matrix.  #
# --------------------------------------------------------------------------- #
def _eye_batch(b: int, n: int, device) -> torch.Tensor:
    return torch.eye(n, device=device).repeat(b, 1, 1)


def _ada_chosen(b: int, probability, device, shape=None) -> torch.Tensor:
    """Which samples an op applies to: uniform [0, 1) < probability."""
    return torch.rand(shape or (b,), device=device) < probability


def ada_geometric_matrix(b: int, h: int, w: int, p, multipliers, device):
    """ada.geometric_matrix: [B, 3, 3] inverse transforms (output pixel ->
    input pixel, pixels from the image centre), from torch's generator; p a
    scalar tensor (no host sync)."""
    m = multipliers
    g = _eye_batch(b, 3, device)

    def scale(sx, sy):
        s = _eye_batch(b, 3, device)
        s[:, 0, 0], s[:, 1, 1] = sx, sy
        return s

    def translate(tx, ty):
        t = _eye_batch(b, 3, device)
        t[:, 0, 2], t[:, 1, 2] = tx, ty
        return t

    def rotate(cos, sin):
        r = _eye_batch(b, 3, device)
        r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1] = cos, -sin, sin, cos
        return r

    ones = torch.ones(b, device=device)
    if m['xflip'] > 0:
        i = torch.floor(torch.rand(b, device=device) * 2)
        i = torch.where(_ada_chosen(b, m['xflip'] * p, device), i, 0.0)
        g = g @ scale(1 - 2 * i, ones)
    if m['rotate90'] > 0:
        k = torch.randint(0, 4, (b,), device=device)
        k = torch.where(_ada_chosen(b, m['rotate90'] * p, device), k, 0)
        g = g @ rotate(torch.tensor([1., 0., -1., 0.], device=device)[k],
                       torch.tensor([0., 1., 0., -1.], device=device)[k])
    if m['xint'] > 0:
        t = (torch.rand(b, 2, device=device) * 2 - 1) * ada.XINT_MAX
        t = torch.where(_ada_chosen(b, m['xint'] * p, device, (b, 1)), t, 0.0)
        g = g @ translate(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
    if m['scale'] > 0:
        s = torch.exp2(torch.randn(b, device=device) * ada.SCALE_STD)
        s = torch.where(_ada_chosen(b, m['scale'] * p, device), s, 1.0)
        g = g @ scale(1 / s, 1 / s)
    p_rot = 1 - torch.sqrt(torch.clamp(1 - m['rotate'] * p, 0.0, 1.0))

    def rotation():
        theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * ada.ROTATE_MAX
        theta = torch.where(_ada_chosen(b, p_rot, device), theta, 0.0)
        return rotate(torch.cos(theta), torch.sin(theta))

    if m['rotate'] > 0:
        g = g @ rotation()
    if m['aniso'] > 0:
        s = torch.exp2(torch.randn(b, device=device) * ada.ANISO_STD)
        s = torch.where(_ada_chosen(b, m['aniso'] * p, device), s, 1.0)
        g = g @ scale(1 / s, s)
    if m['rotate'] > 0:
        g = g @ rotation()
    if m['xfrac'] > 0:
        t = torch.randn(b, 2, device=device) * ada.XFRAC_STD
        t = torch.where(_ada_chosen(b, m['xfrac'] * p, device, (b, 1)), t, 0.0)
        g = g @ translate(-t[:, 0] * w, -t[:, 1] * h)
    return g


def ada_apply_geometric(images, g_inv):
    """ada.apply_geometric on [B, C, H, W]: bilinear sampling at G_inv (x, y,
    1) of the image mirrored without edge repetition, which is grid_sample's
    'reflection' padding with align_corners=True (pixel centres at -1, 1)."""
    b, _, h, w = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device) - cy,
                            torch.arange(w, device=images.device) - cx, indexing='ij')
    g = g_inv.float()[:, :, :, None, None]  # [B, 3, 3, 1, 1]
    u = g[:, 0, 0] * xs + g[:, 0, 1] * ys + g[:, 0, 2] + cx  # input pixel, [B, H, W]
    v = g[:, 1, 0] * xs + g[:, 1, 1] * ys + g[:, 1, 2] + cy
    grid = torch.stack([u * (2 / (w - 1)) - 1, v * (2 / (h - 1)) - 1], dim=-1)
    return F.grid_sample(images, grid.to(images.dtype), mode='bilinear',
                         padding_mode='reflection', align_corners=True)


def ada_color_matrix(b: int, p, multipliers, device, num_channels: int = 3):
    """ada.color_matrix: [B, 4, 4] acting on (r, g, b, 1)."""
    m = multipliers
    eye = torch.eye(4, device=device)
    c = _eye_batch(b, 4, device)
    v = torch.tensor([1., 1., 1., 0.], device=device) / math.sqrt(3)  # luma axis
    vv = torch.outer(v, v)
    if m['brightness'] > 0:
        t = torch.randn(b, device=device) * ada.BRIGHTNESS_STD
        t = torch.where(_ada_chosen(b, m['brightness'] * p, device), t, 0.0)
        shift = _eye_batch(b, 4, device)
        shift[:, :3, 3] = t[:, None]
        c = shift @ c
    if m['contrast'] > 0:
        s = torch.exp2(torch.randn(b, device=device) * ada.CONTRAST_STD)
        s = torch.where(_ada_chosen(b, m['contrast'] * p, device), s, 1.0)
        scale = _eye_batch(b, 4, device)
        scale[:, 0, 0], scale[:, 1, 1], scale[:, 2, 2] = s, s, s
        c = scale @ c
    if m['lumaflip'] > 0:
        i = torch.floor(torch.rand(b, device=device) * 2)
        i = torch.where(_ada_chosen(b, m['lumaflip'] * p, device), i, 0.0)
        c = (eye - 2 * vv * i[:, None, None]) @ c
    if m['hue'] > 0 and num_channels > 1:
        theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * ada.HUE_MAX
        theta = torch.where(_ada_chosen(b, m['hue'] * p, device), theta, 0.0)
        # Rodrigues about v: cos I + sin [v]x + (1 - cos) v v^T (3x3 block).
        cross = torch.zeros(4, 4, device=device)
        cross[0, 1], cross[0, 2], cross[1, 0] = -v[2], v[1], v[2]
        cross[1, 2], cross[2, 0], cross[2, 1] = -v[0], -v[1], v[0]
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        rot = cos * (eye - torch.diag(torch.tensor([0., 0., 0., 1.], device=device)))
        rot = rot + sin * cross + (1 - cos) * vv
        rot[:, 3, 3] = 1.0
        c = rot @ c
    if m['saturation'] > 0 and num_channels > 1:
        s = torch.exp2(torch.randn(b, device=device) * ada.SATURATION_STD)
        s = torch.where(_ada_chosen(b, m['saturation'] * p, device), s, 1.0)
        c = (eye + (eye - vv) * (s - 1)[:, None, None]) @ c
    return c


def ada_apply_color(images, c):
    """ada.apply_color on [B, C, H, W], C = 3 or 1 (the mean of the first
    three rows, as ours)."""
    b, channels, h, w = images.shape
    c = c.to(images.dtype)
    if channels == 3:
        flat = c[:, :3, :3] @ images.reshape(b, 3, h * w) + c[:, :3, 3:]
        return flat.reshape(b, 3, h, w)
    if channels == 1:
        gain = c[:, :3, :3].sum(dim=(1, 2)) / 3
        offset = c[:, :3, 3].sum(dim=1) / 3
        return images * gain[:, None, None, None] + offset[:, None, None, None]
    raise ValueError(f'ADA color ops need 1 or 3 channels, not {channels}')


def ada_augment(images, p, ops: str = 'bgc'):
    """ada.augment on [B, C, H, W]: every op of `ops` per sample with
    probability p (a scalar tensor). As ours, the matrices are built and the
    images resampled and recoloured whatever p is (p = 0 gives the identity
    matrices), so the cost does not depend on p."""
    m = ada.multipliers_of(ops)
    b, c, h, w = images.shape
    geometric = any(m[name] > 0 for name in ada.GEOMETRIC_OPS)
    color = any(m[name] > 0 for name in (ada.GRAYSCALE_COLOR_OPS if c == 1
                                         else ada.COLOR_OPS))
    # The matrices in float32 under any autocast, as ours (HIGHEST precision):
    # bfloat16 products would move pixel coordinates off the blit ops' grid.
    with torch.autocast(images.device.type, enabled=False):
        g_inv = ada_geometric_matrix(b, h, w, p, m, images.device) if geometric else None
        c_mat = ada_color_matrix(b, p, m, images.device, c) if color else None
    if geometric:
        images = ada_apply_geometric(images, g_inv)
    if color:
        images = ada_apply_color(images, c_mat)
    return images


# --------------------------------------------------------------------------- #
# The StyleGAN2 update step.                                                  #
# --------------------------------------------------------------------------- #
def make_stylegan2_step(config, data_shape, device, variant: str = 'eager',
                        autocast_dtype=None, first_step: int = 0):
    """(step(reals, labels=None) -> metrics, G, D) of a StyleGAN2 config, as
    gan_jax.train.train_step computes it, phase by phase on the step counter
    (first_step at the first call, as our state.step):

      1. n_critic D updates: fresh z, fakes from G in training (random noise,
         style mixing, w_avg not moved) without gradient; with ADA, real and
         fake concatenated [2B] through ada_augment at the current p; D on
         the reals and on the fakes in two calls; loss.d_loss (+ R1 when not lazy); Adam. The
         signs of D(real) accumulate for ADA.
      2. ADA's p update every ada_interval steps (after step + 1 steps).
      3. lazy R1 (step % d_reg_interval == 0): D on augmented reals[-1] in
         float32, gamma / 2 * interval * mean ||grad_x D(aug(x))||^2 (the
         second derivative through grid_sample), an Adam update. Our R1
         update also draws fakes that nothing uses; XLA drops them, so this
         step does not draw them.
      4. the G update: fresh z, G (moves w_avg), the fakes augmented (the
         gradient flows through grid_sample), D frozen; loss.g_loss; Adam.
      5. lazy path length (pl_weight > 0, step % g_reg_interval == 0): B //
         pl_batch_shrink fresh samples, ws from sample_ws (w_avg not moved),
         lengths sqrt(mean_layers ||J^T y||^2), the running mean, pl_weight
         * interval * the penalty; Adam.
      6. the EMA of G's parameters with the half-life schedule (ema_beta).
    Adam as make_optimizer: lr * c and betas ** c, c = k / (k + 1), for a net
    with a lazy phase every k > 1 steps. reals: [n_critic, B, C, H, W] (or a
    list of channels_last batches, as_input); labels: [n_critic, B] int64
    when the model is conditional. Metrics stay on the device: 'd' (D loss,
    mean real and fake logits, D's gradient norm; means over the D updates),
    'g', 'ada_p', 'r1' (the last lazy R1 value), 'pl_mean', 'nonfinite'.
    step.optimizers holds the two Adams, step.ema G's EMA parameters.

    The variants as make_step's; in 'compiled' only the adversarial passes
    go through torch.compile, the R1 and path-length passes (double
    backward) run the eager modules.

    Raises:
      NotImplementedError: a penalty other than R1, DiffAugment, instance
        noise, weight clipping or an unrolled G.
    """
    from gan_jax import regularizers
    for penalty in regularizers.PENALTIES:
        if config.reg[penalty.key] and penalty.key != 'r1_gamma':
            raise NotImplementedError(f'the torch reference has no reg.{penalty.key}')
    if config.augment.policy:
        raise NotImplementedError('the torch reference has no DiffAugment')
    if (config.reg.get('instance_noise', 0.0) or config.reg.get('weight_clip', 0.0)
            or config.unroll_steps):
        raise NotImplementedError('the torch StyleGAN2 reference has no instance '
                                  'noise, weight clipping or unrolled G')
    G, D = (net.to(device).train() for net in networks(config, data_shape))
    tuned = variant != 'eager'
    if tuned:
        G, D = (net.to(memory_format=torch.channels_last) for net in (G, D))
    fused = tuned and fused_adam_available(device)
    d_loss_fn, g_loss_fn = losses(config.loss.name)
    autocast = _autocast(device, autocast_dtype)
    reg = config.reg
    r1_gamma = float(reg.r1_gamma)
    # gan_jax.train.make_spec: an interval only where its phase exists.
    d_interval = reg.d_reg_interval if r1_gamma > 0 else 1
    g_interval = reg.g_reg_interval if reg.pl_weight > 0 else 1
    g_opt, g_sched = _adam(G.parameters(), config.opt.g, 1, fused, g_interval)
    d_opt, d_sched = _adam(D.parameters(), config.opt.d, config.n_critic, fused,
                           d_interval)
    g_params = list(G.parameters())
    d_params = list(D.parameters())
    g_values = [p.detach() for p in g_params]  # views: see the updates
    ema = [p.clone() for p in g_values]
    z_dim, n_critic = config.model.z_dim, config.n_critic
    aug = config.augment
    use_ada = aug.ada_target > 0
    ema_cfg = config.ema
    counter = {'step': first_step, 'ada_count': 0}
    ada_p = torch.tensor(float(aug.ada_p), device=device)
    ada_sign_sum = torch.zeros((), device=device)
    pl_mean = torch.zeros((), device=device)
    last_r1 = torch.zeros((), device=device)  # reported between R1 updates, as ours
    g_net, d_net = ((torch.compile(G, dynamic=False), torch.compile(D, dynamic=False))
                    if variant == 'compiled' else (G, D))

    def seen_by_d(x):
        return ada_augment(x, ada_p, aug.ada_ops) if use_ada else x

    def r1_penalty(real, labels):
        """mean ||grad_x D(aug(x))||^2 at the reals, in float32."""
        x = real.detach().requires_grad_(True)
        logits = D(seen_by_d(x), labels)
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        return grad.square().flatten(1).sum(dim=1).mean()

    def ema_beta(step, batch_size):
        # gan_jax.train.ema_beta.
        if step < ema_cfg.start_step:
            return 0.0
        if ema_cfg.half_life_kimg <= 0:
            return float(ema_cfg.decay)
        half_life = ema_cfg.half_life_kimg * 1000
        if ema_cfg.rampup > 0:
            half_life = min(half_life, step * batch_size * ema_cfg.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    def step(reals, labels=None):
        nonlocal ada_p, pl_mean, last_r1
        count = counter['step']
        batch_size = reals[0].shape[0]
        d_metrics = []
        for i in range(n_critic):
            label = None if labels is None else labels[i]
            z = torch.randn(batch_size, z_dim, device=device)
            with torch.no_grad(), autocast():
                fake = g_net(z, label, update_w_avg=False)
            with autocast():
                real_seen, fake_seen = seen_by_d(
                    torch.cat([reals[i], fake.to(reals[i].dtype)])).chunk(2)
                # Two D calls, as gan_jax.train.d_loss_fn for a D with
                # minibatch stddev: its groups must not mix reals and fakes.
                real_logits = d_net(real_seen, label).float()
                fake_logits = d_net(fake_seen, label).float()
                d_loss = d_loss_fn(real_logits, fake_logits)
            if r1_gamma > 0 and d_interval == 1:  # R1 in every D update's loss
                r1 = r1_penalty(reals[i], label)
                d_loss = d_loss + 0.5 * r1_gamma * r1
                last_r1 = r1.detach()
            d_metrics.append(_d_update(d_opt, d_sched, d_loss, real_logits,
                                       fake_logits, d_params))
            if use_ada:
                ada_sign_sum.add_(torch.sign(real_logits.detach()).sum())
                counter['ada_count'] += real_logits.numel()
        steps_done = count + 1  # as train_step's state.step + 1
        if use_ada and steps_done > 0 and steps_done % aug.ada_interval == 0:
            # ada.update_p: p += sign(r_t - target) * images * interval / speed.
            r_t = ada_sign_sum / max(counter['ada_count'], 1)
            adjust = torch.sign(r_t - aug.ada_target) * (
                n_critic * batch_size * aug.ada_interval / (aug.ada_kimg * 1000))
            ada_p = torch.clamp(ada_p + adjust, 0.0, 1.0)
            ada_sign_sum.zero_()
            counter['ada_count'] = 0
        last_labels = None if labels is None else labels[-1]
        if r1_gamma > 0 and d_interval > 1 and count % d_interval == 0:
            r1 = r1_penalty(reals[-1], last_labels)
            d_opt.zero_grad(set_to_none=True)
            (r1 * (0.5 * r1_gamma * d_interval)).backward()
            d_opt.step()
            last_r1 = r1.detach()
            if d_sched is not None:
                d_sched.step()
        z = torch.randn(batch_size, z_dim, device=device)
        with _frozen(D):
            with autocast():
                fake = g_net(z, last_labels)  # w_avg moves here, as in g_step
                g_loss = g_loss_fn(d_net(seen_by_d(fake), last_labels).float())
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
        g_norm = _grad_norm(g_params)
        g_opt.step()
        if g_sched is not None:
            g_sched.step()
        if reg.pl_weight > 0 and count % g_interval == 0:
            n = max(1, batch_size // reg.pl_batch_shrink)
            with autocast():
                ws = G.sample_ws(torch.randn(n, z_dim, device=device),
                                 None if last_labels is None else last_labels[:n],
                                 update_w_avg=False)
                images = G.synthesis(ws).float()
            noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
            (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
            lengths = grads.float().square().sum(dim=2).mean(dim=1).sqrt()
            new_mean = pl_mean + reg.pl_decay * (lengths.mean() - pl_mean)
            penalty = (lengths - new_mean).square().mean()
            g_opt.zero_grad(set_to_none=True)
            (penalty * (reg.pl_weight * g_interval)).backward()
            g_opt.step()
            if g_sched is not None:
                g_sched.step()
            pl_mean = new_mean.detach()
        beta = ema_beta(count, batch_size)
        with torch.no_grad():
            torch._foreach_lerp_(ema, g_values, 1.0 - beta)  # beta·ema + (1-beta)·p
        counter['step'] += 1
        d_mean = torch.stack(d_metrics).mean(dim=0)
        guarded = torch.stack([d_mean[0], g_loss.detach(), d_mean[3], g_norm])
        return {'d': d_mean, 'g': g_loss.detach(), 'ada_p': ada_p, 'r1': last_r1,
                'pl_mean': pl_mean, 'nonfinite': (~torch.isfinite(guarded)).any()}

    step.adam = 'fused' if fused else 'foreach'
    step.optimizers = {'g': g_opt, 'd': d_opt}
    step.ema = ema
    return step, G, D


def as_input(reals, variant: str):
    """The real batches [n_critic, B, ...] as `make_step`'s step of `variant`
    reads them: the tensor itself for 'eager', else a list of per-update
    channels_last batches (made once, as a data loader would deliver them)."""
    if variant == 'eager' or reals.dim() != 5:
        return reals
    return [r.contiguous(memory_format=torch.channels_last) for r in reals]
