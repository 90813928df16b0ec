"""ResNet generator and discriminator of SNGAN (Miyato et al. 2018, appendix
B.4, the CIFAR-10 and STL/64x64 ResNets also used by WGAN-GP and mimicry),
with optional class conditioning: conditional batch norm in G and a projection
discriminator (Miyato & Koyama 2018), and an optional SAGAN self-attention
block (Zhang et al. 2019).

32x32: G z -> dense 4x4x256 -> 3 up-blocks (256) -> BN, ReLU, conv3x3, tanh;
D: optimised block (128, down) -> block (down) -> 2 blocks -> ReLU, global sum
pooling -> dense (+ projection). 64x64 adds one up/down block, channels
following SNGAN's 64x64 ResNet (G 512->256->128->64, D 64->...->1024).
"""
import functools
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import (ConditionalBatchNorm, SelfAttention, in_input_dtype,
                                   maybe_sn, upsample_conv, upsample_nearest)

# (generator channels per up-block, discriminator channels per block,
#  discriminator downsampling per block) by resolution.
ARCHS = {
    32: ((256, 256, 256), (128, 128, 128, 128), (True, True, False, False)),
    64: ((512, 256, 128, 64), (64, 128, 256, 512, 1024), (True, True, True, True, False)),
}


def _downsample(x):
    return nn.avg_pool(x, (2, 2), (2, 2))


class GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3 plus an up-conv1 shortcut.

    The shortcut's 1x1 conv runs before the upsampling (a per-pixel linear
    map commutes with nearest upsampling: the same function, 4x fewer
    multiply-adds); `conv_impl` picks how the up-conv is computed
    (gan_jax.ops.policy, op 'upsample_conv3x3').
    """
    features: int
    num_classes: int = 0
    conv_impl: str = 'auto'

    @nn.compact
    def __call__(self, x, labels, *, train: bool):
        h = nn.relu(ConditionalBatchNorm(self.num_classes)(x, labels, train=train))
        h = upsample_conv(self.features, (3, 3), impl=self.conv_impl)(h)
        h = nn.relu(ConditionalBatchNorm(self.num_classes)(h, labels, train=train))
        h = nn.Conv(self.features, (3, 3))(h)
        return h + upsample_nearest(nn.Conv(self.features, (1, 1))(x))


class DBlock(nn.Module):
    """(ReLU)-conv3-ReLU-conv3-(pool) plus a conv1-(pool) shortcut; the first
    ("optimised") block has no leading ReLU and pools before its shortcut conv."""
    features: int
    downsample: bool = True
    first: bool = False
    spectral: bool = True

    @nn.compact
    def __call__(self, x, *, train: bool):
        sn = lambda m: maybe_sn(m, self.spectral)  # noqa: E731
        # Convolutions in the input's dtype (see layers.in_input_dtype).
        conv = functools.partial(nn.Conv, promote_dtype=in_input_dtype)
        h = x if self.first else nn.relu(x)
        h = sn(conv(self.features, (3, 3)))(h, train=train)
        h = sn(conv(self.features, (3, 3)))(nn.relu(h), train=train)
        if self.downsample:
            h = _downsample(h)
        shortcut = x
        if self.first:
            shortcut = sn(conv(self.features, (1, 1)))(_downsample(x), train=train)
        elif self.downsample or x.shape[-1] != self.features:
            # conv1x1 then pool, computed as pool then conv1x1 (the same
            # linear map, 4x fewer multiply-adds).
            shortcut = _downsample(x) if self.downsample else x
            shortcut = sn(conv(self.features, (1, 1)))(shortcut, train=train)
        return h + shortcut


class Generator(nn.Module):
    """z [B, z_dim], labels [B] int (when num_classes > 0) -> images
    [B, H, W, C] in [-1, 1] (H = W = 32 or 64)."""
    out_shape: Tuple[int, int, int] = (32, 32, 3)
    channels: Sequence[int] = ()  # default: ARCHS[H][0]
    num_classes: int = 0
    attention_resolution: int = 0  # e.g. 16 or 32; 0 = no attention
    # How the up-blocks' upsampling convolutions are computed
    # (gan_jax.ops.policy, op 'upsample_conv3x3'): the same function either way.
    conv_impl: str = 'auto'

    @nn.compact
    def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        size, _, c_out = self.out_shape
        if size not in ARCHS:
            raise ValueError(f'ResNet supports 32 or 64 pixel images, got {size}')
        channels = tuple(self.channels) or ARCHS[size][0]
        h = nn.Dense(4 * 4 * channels[0])(z).reshape(-1, 4, 4, channels[0])
        for features in channels:
            h = GBlock(features, self.num_classes, self.conv_impl)(
                h, labels, train=train)
            if h.shape[1] == self.attention_resolution:
                h = SelfAttention()(h, train=train)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        return jnp.tanh(nn.Conv(c_out, (3, 3))(h))


class Discriminator(nn.Module):
    """images [B, H, W, C], labels [B] int (when num_classes > 0) -> logits [B].

    With num_classes > 0 the logit gains the projection term <embed(y), φ(x)>.
    """
    channels: Sequence[int] = ()  # default: ARCHS[H][1]
    spectral: bool = True
    num_classes: int = 0
    attention_resolution: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        size = x.shape[1]
        if size not in ARCHS:
            raise ValueError(f'ResNet supports 32 or 64 pixel images, got {size}')
        channels = tuple(self.channels) or ARCHS[size][1]
        downs = ARCHS[size][2]
        h = x
        for i, (features, down) in enumerate(zip(channels, downs)):
            h = DBlock(features, down, first=i == 0, spectral=self.spectral)(h, train=train)
            if h.shape[1] == self.attention_resolution:
                h = SelfAttention(spectral=self.spectral)(h, train=train)
        features = jnp.sum(nn.relu(h), axis=(1, 2))  # global sum pooling
        logits = maybe_sn(nn.Dense(1), self.spectral)(features, train=train)[:, 0]
        if self.num_classes:
            if labels is None:
                raise ValueError('a conditional discriminator needs labels')
            embed = maybe_sn(nn.Embed(self.num_classes, features.shape[-1]),
                             self.spectral)(labels, train=train)
            logits = logits + jnp.sum(embed * features, axis=-1)
        return logits
