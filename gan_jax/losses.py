"""Adversarial losses on discriminator logits (Goodfellow et al. 2014; Arjovsky
et al. 2017; Lim & Ye 2017 / Miyato et al. 2018 hinge; Mao et al. 2017 LSGAN).

Every loss is a pair of pure keyword-only functions on raw (pre-sigmoid)
discriminator outputs, averaged over the batch:

    d_loss(*, real_logits, fake_logits) -> scalar
    g_loss(*, fake_logits) -> scalar

`get(name)` returns the pair for a config string (config.loss.name). The
discriminator minimises `d_loss`, the generator minimises `g_loss`. A new loss
is its two functions plus one entry in LOSSES: the config check
(`config.validate`) and the update step (`train.make_spec`) read LOSSES
through `get`.
"""
from typing import Callable, Dict, NamedTuple

import jax
import jax.numpy as jnp


class Loss(NamedTuple):
    """A registered loss: the discriminator's and the generator's halves."""
    d_loss: Callable[..., jax.Array]
    g_loss: Callable[..., jax.Array]


def d_loss_logistic(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-log sigmoid(real) - log(1 - sigmoid(fake)), mean over the batch.

    Args:
      real_logits: [B] logits on data, any real value.
      fake_logits: [B] logits on generated samples.
    Returns:
      scalar >= 0; 2 log 2 when both logits are 0.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(
        jax.nn.softplus(fake_logits))


def g_loss_non_saturating(*, fake_logits: jax.Array) -> jax.Array:
    """-log sigmoid(fake): the generator loss Goodfellow et al. use in practice.

    Args:
      fake_logits: [B] logits on generated samples.
    Returns:
      scalar >= 0; log 2 at logit 0.
    """
    return jnp.mean(jax.nn.softplus(-fake_logits))


def g_loss_minimax(*, fake_logits: jax.Array) -> jax.Array:
    """log(1 - sigmoid(fake)): the saturating loss of the original minimax game.

    Its gradient vanishes when D confidently rejects the fakes (logit -> -inf),
    which is why it stalls early in training.

    Args:
      fake_logits: [B] logits on generated samples.
    Returns:
      scalar <= 0; -log 2 at logit 0.
    """
    return -jnp.mean(jax.nn.softplus(fake_logits))


def d_loss_wasserstein(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Critic loss E[D(fake)] - E[D(real)] (WGAN; pair with a Lipschitz penalty).

    Args:
      real_logits, fake_logits: [B] critic values.
    Returns:
      scalar, any sign.
    """
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def g_loss_wasserstein(*, fake_logits: jax.Array) -> jax.Array:
    """-E[D(fake)]; also the generator loss of the hinge GAN.

    Args:
      fake_logits: [B] critic values on generated samples.
    Returns:
      scalar, any sign.
    """
    return -jnp.mean(fake_logits)


def d_loss_hinge(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """E[relu(1 - D(real))] + E[relu(1 + D(fake))] (SNGAN, BigGAN).

    Args:
      real_logits, fake_logits: [B] discriminator values.
    Returns:
      scalar >= 0; 2 when both are 0.
    """
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(
        jax.nn.relu(1.0 + fake_logits))


def d_loss_least_squares(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """LSGAN with targets a=0 (fake), b=1 (real): ½E[(D(real)-1)²] + ½E[D(fake)²].

    Args:
      real_logits, fake_logits: [B] discriminator values.
    Returns:
      scalar >= 0.
    """
    return 0.5 * jnp.mean((real_logits - 1.0) ** 2) + 0.5 * jnp.mean(fake_logits ** 2)


def g_loss_least_squares(*, fake_logits: jax.Array) -> jax.Array:
    """LSGAN generator loss with target c=1: ½E[(D(fake)-1)²].

    Args:
      fake_logits: [B] discriminator values on generated samples.
    Returns:
      scalar >= 0.
    """
    return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


LOSSES: Dict[str, Loss] = {
    'non_saturating': Loss(d_loss_logistic, g_loss_non_saturating),
    'minimax': Loss(d_loss_logistic, g_loss_minimax),
    'wasserstein': Loss(d_loss_wasserstein, g_loss_wasserstein),
    'hinge': Loss(d_loss_hinge, g_loss_wasserstein),
    'least_squares': Loss(d_loss_least_squares, g_loss_least_squares),
}


def names():
    """Sorted list of the registered loss names."""
    return sorted(LOSSES)


def get(name: str) -> Loss:
    """Returns the (d_loss, g_loss) pair registered under `name`.

    Raises:
      ValueError: naming the unknown loss and listing the valid ones.
    """
    if name not in LOSSES:
        raise ValueError(
            f'unknown loss {name!r}; valid losses: {", ".join(names())}')
    return LOSSES[name]
