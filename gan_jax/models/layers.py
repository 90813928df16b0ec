"""Building blocks shared by the model families: maxout (Goodfellow et al. 2013)
and packing (PacGAN, Lin et al. 2018)."""
import flax.linen as nn
import jax
import jax.numpy as jnp


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
