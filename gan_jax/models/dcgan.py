"""DCGAN (Radford et al. 2016) for 28, 32 and 64 pixel images, with optional
spectral normalization in D (SNDCGAN-style, Miyato et al. 2018).

G: z -> dense -> s x s x (base·2^(n-1)) -> n 4x4 stride-2 transposed convs,
channels halving, BN + ReLU between, tanh out (s = 7 for 28-pixel images,
else 4; n = log2(H / s)). For 32x32 and base 64: dense -> 4x4x256, then
256 -> 128 -> 64 -> C.
D: n 4x4 stride-2 convs with base·2^i channels and leaky ReLU (0.2), batch or
spectral norm after all but the first, then a dense logit.
"""
import math
from typing import Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import ops
from gan_jax.models.layers import UpConv, pack_samples


def stages(size: int) -> Tuple[int, int]:
    """(start, n) for `size`-pixel images: G's first feature map is start x
    start (7 for 28-pixel images, else 4), n stride-2 layers double it to size,
    and D halves it n times.

    Raises:
      ValueError: size is not start · 2^n.
    """
    start = 7 if size % 7 == 0 else 4
    n = int(round(math.log2(size / start)))
    if start * 2 ** n != size:
        raise ValueError(f'DCGAN supports 28, 32, 64, ... pixel images, got {size}')
    return start, n


class Generator(nn.Module):
    """z [B, z_dim] -> images [B, H, W, C] in [-1, 1]."""
    out_shape: Tuple[int, int, int] = (32, 32, 3)
    base_channels: int = 64
    bn_momentum: float = 0.9
    # How the transposed convolutions are computed (gan_jax.ops.policy,
    # op 'conv_transpose4x4'): the same function and parameters either way.
    upconv_impl: str = 'auto'

    @nn.compact
    def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        del labels
        h_out, _, c_out = self.out_shape
        start, n = stages(h_out)
        channels = self.base_channels * 2 ** (n - 1)
        # No bias in front of a BatchNorm (as DCGAN's reference code): its mean
        # subtraction cancels a bias, whose gradient is then pure rounding noise.
        h = nn.Dense(start * start * channels, use_bias=False)(z).reshape(
            -1, start, start, channels)
        h = nn.relu(nn.BatchNorm(use_running_average=not train,
                                 momentum=self.bn_momentum)(h))
        for i in range(n - 1):
            channels //= 2
            h = UpConv(channels, impl=self.upconv_impl, use_bias=False)(h)
            h = nn.relu(nn.BatchNorm(use_running_average=not train,
                                     momentum=self.bn_momentum)(h))
        h = UpConv(c_out, impl=self.upconv_impl)(h)
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """images [B, H, W, C] -> logits [B // pack].

    norm: 'none', 'batch' or 'spectral' (after every conv but the first;
    'spectral' also normalises the first conv and the output layer).
    """
    base_channels: int = 64
    norm: str = 'none'
    num_layers: int = 0  # 0: as many as the generator's upsamplings
    pack: int = 1
    # How the strided convolutions are computed (gan_jax.ops.policy, op
    # 'strided_conv4x4'): the same function and parameters either way.
    conv_impl: str = 'auto'

    @nn.compact
    def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        del labels
        if self.norm not in ('none', 'batch', 'spectral'):
            raise ValueError(f"norm must be 'none', 'batch' or 'spectral', got {self.norm!r}")
        if self.pack > 1:  # PacGAN: stack the pack along channels
            b, hh, ww, c = x.shape
            x = pack_samples(x.reshape(b, -1), self.pack).reshape(
                b // self.pack, self.pack, hh, ww, c).transpose(0, 2, 3, 1, 4).reshape(
                b // self.pack, hh, ww, self.pack * c)

        def layer(module, h):
            if self.norm == 'spectral':
                return nn.SpectralNorm(module)(h, update_stats=train)
            return module(h)

        conv = ops.conv_general_dilated(self.conv_impl)
        h = x
        for i in range(self.num_layers or stages(x.shape[1])[1]):
            bn_follows = i > 0 and self.norm == 'batch'
            h = layer(nn.Conv(self.base_channels * 2 ** i, (4, 4), strides=(2, 2),
                              padding='SAME', use_bias=not bn_follows,
                              conv_general_dilated=conv), h)
            if bn_follows:
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
            h = nn.leaky_relu(h, 0.2)
        h = h.reshape(h.shape[0], -1)
        return layer(nn.Dense(1), h)[:, 0]
