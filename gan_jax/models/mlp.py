"""Fully connected GAN for low-dimensional data; the defaults are PacGAN's 2-D
toy networks (Lin et al. 2018, after VEEGAN): G four 400-unit ReLU layers with
batch norm, D two maxout layers of 200 units x 5 pieces."""
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np

from gan_jax.models.layers import MaxoutDense, pack_samples


class Generator(nn.Module):
    """z [B, z_dim] (standard normal) -> x [B, *out_shape], unbounded values."""
    out_shape: Tuple[int, ...] = (2,)
    hidden: Sequence[int] = (400, 400, 400, 400)
    batch_norm: bool = True
    bn_momentum: float = 0.99

    @nn.compact
    def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        del labels  # unconditional
        h = z
        for width in self.hidden:
            # No bias in front of BatchNorm: it would be cancelled, and its
            # gradient is rounding noise that Adam turns into full-size steps.
            h = nn.Dense(width, use_bias=not self.batch_norm)(h)
            if self.batch_norm:
                h = nn.BatchNorm(use_running_average=not train,
                                 momentum=self.bn_momentum)(h)
            h = nn.relu(h)
        out = nn.Dense(int(np.prod(self.out_shape)))(h)
        return out.reshape((z.shape[0],) + tuple(self.out_shape))


class Discriminator(nn.Module):
    """x [B, *shape] -> logits [B // pack].

    `maxout_pieces > 1` makes every hidden layer a maxout layer; 1 gives plain
    dense layers with leaky ReLU (slope 0.2).
    """
    hidden: Sequence[int] = (200, 200)
    maxout_pieces: int = 5
    pack: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        del labels, train  # unconditional, no train-time behaviour
        h = pack_samples(x, self.pack)
        for width in self.hidden:
            if self.maxout_pieces > 1:
                h = MaxoutDense(width, self.maxout_pieces)(h)
            else:
                h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
        return nn.Dense(1)(h)[:, 0]
