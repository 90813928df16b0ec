"""Gradient penalties on the discriminator's input: WGAN-GP (Gulrajani et al.
2017, eq. 3), R1 and R2 (Mescheder et al. 2018, eq. 9: R1 = γ/2 E‖∇D(x)‖²),
DRAGAN (Kodali et al. 2017: WGAN-GP's term around perturbed data); and the
penalty of consensus optimization (Mescheder et al. 2017), ½‖v‖² of the
game's gradient field, which `train.game_gradients` differentiates.

Each function returns the *unweighted* penalty; the update step multiplies it by
the config's weight (for R1 that weight is γ/2). The input gradient is taken per
sample through `sum(D(x))`, which is exact when D treats the samples of a batch
independently (no batch norm in training mode, the usual WGAN-GP rule).

`PENALTIES` is the registry the rest of the code reads: one `Penalty` entry
declares a penalty's config key (under `reg`), its default and valid range,
the samples it is computed on and how its weight scales it. The config schema
(`config.default_config`), `config.validate`, the update step
(`train.make_spec`, `train.d_loss_fn`) and the sweepable keys
(`train.SWEEPABLE`) all come from it, so a new penalty is a function here plus
one entry.
"""
import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from gan_jax.types import PRNGKey, PyTree

DFn = Callable[[jax.Array], jax.Array]  # x [B, ...] -> logits [B]


def _per_sample_grad_sq_norm(d_fn: DFn, x: jax.Array) -> jax.Array:
    """‖∇ₓD(x)‖² for each sample: [B, ...] -> [B]."""
    grads = jax.grad(lambda inputs: jnp.sum(d_fn(inputs)))(x)
    return jnp.sum(jnp.square(grads).reshape(x.shape[0], -1), axis=-1)


def gradient_penalty(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: PRNGKey,
                     *, target: float = 1.0) -> jax.Array:
    """WGAN-GP: E[(‖∇D(x̂)‖ - target)²] at x̂ = εx + (1-ε)x̃, ε ~ U[0, 1] per sample.

    Args:
      d_fn: maps x [B, ...] to logits [B].
      real: [B, ...] data samples.
      fake: [B, ...] generated samples (treated as constants).
      rng: key for the interpolation weights.
      target: the gradient norm penalised towards (1 for WGAN-GP).
    Returns:
      scalar >= 0.
    """
    fake = jax.lax.stop_gradient(fake)
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = jax.random.uniform(rng, eps_shape, dtype=real.dtype)
    mixed = eps * real + (1.0 - eps) * fake
    # sqrt has an infinite derivative at 0; the epsilon keeps the gradient of a
    # flat discriminator finite.
    norms = jnp.sqrt(_per_sample_grad_sq_norm(d_fn, mixed) + 1e-12)
    return jnp.mean(jnp.square(norms - target))


def dragan_penalty(d_fn: DFn, real: jax.Array, rng: PRNGKey, *,
                   perturb_scale: float = 0.5, target: float = 1.0) -> jax.Array:
    """DRAGAN: E[(‖∇D(x̂)‖ - target)²] at x̂ = x + α δ near the data, with
    δ = perturb_scale · std(x) · U[0, 1] per element and α ~ U[0, 1] per
    sample (as the reference code, github.com/kodalinaveen3/DRAGAN; the
    paper writes δ ~ N(0, cI)). std(x) is the standard deviation of all the
    batch's values, taken as a constant.

    Args:
      d_fn: maps x [B, ...] to logits [B].
      real: [B, ...] data samples.
      rng: key for δ and α.
      perturb_scale: c of δ (0.5 in the reference).
      target: the gradient norm penalised towards.
    Returns:
      scalar >= 0; 0 for a D whose input gradient has norm `target` near
      the data (e.g. a linear D with a unit weight vector).
    """
    delta_rng, alpha_rng = jax.random.split(rng)
    spread = jax.lax.stop_gradient(jnp.std(real))
    delta = perturb_scale * spread * jax.random.uniform(delta_rng, real.shape,
                                                        dtype=real.dtype)
    alpha_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    alpha = jax.random.uniform(alpha_rng, alpha_shape, dtype=real.dtype)
    perturbed = jax.lax.stop_gradient(real + alpha * delta)
    # As in gradient_penalty: a finite gradient for a flat discriminator.
    norms = jnp.sqrt(_per_sample_grad_sq_norm(d_fn, perturbed) + 1e-12)
    return jnp.mean(jnp.square(norms - target))


def consensus_penalty(field: Sequence[PyTree]) -> jax.Array:
    """Consensus optimization's regularizer L = ½‖v‖² (Mescheder et al. 2017,
    "The Numerics of GANs", eq. 8), with v the players' loss gradients.

    Both players then follow -(∇L_i + γ∇L): `train.game_gradients` takes that
    gradient (of a gradient: every gradient of network parameters is in
    train.py); this function only measures the field.

    Args:
      field: pytrees of gradients (e.g. (g_grads, d_grads)), any shapes.
    Returns:
      scalar >= 0; 0 exactly at a stationary point of the game.
    """
    return 0.5 * sum(jnp.sum(jnp.square(leaf))
                     for leaf in jax.tree.leaves(tuple(field)))


def r1_penalty(d_fn: DFn, real: jax.Array) -> jax.Array:
    """R1: E‖∇D(x)‖² on data samples (multiply by γ/2 for the paper's term).

    Args:
      d_fn: maps x [B, ...] to logits [B].
      real: [B, ...] data samples.
    Returns:
      scalar >= 0; 0 for a discriminator that is constant in x.
    """
    return jnp.mean(_per_sample_grad_sq_norm(d_fn, real))


def r2_penalty(d_fn: DFn, fake: jax.Array) -> jax.Array:
    """R2: E‖∇D(x̃)‖² on generated samples (treated as constants).

    Args:
      d_fn: maps x [B, ...] to logits [B].
      fake: [B, ...] generated samples.
    Returns:
      scalar >= 0.
    """
    return jnp.mean(_per_sample_grad_sq_norm(d_fn, jax.lax.stop_gradient(fake)))


def path_length_penalty(synthesis: Callable[[jax.Array], jax.Array], ws: jax.Array,
                        rng: PRNGKey, pl_mean: jax.Array, *, decay: float
                        ) -> Tuple[jax.Array, jax.Array]:
    """StyleGAN2's path-length penalty (Karras et al. 2020, eq. 4), as its
    reference computes it: with y ~ N(0, I) / sqrt(H W), the lengths
    a_i = sqrt(mean over layers of ||J_i^T y||^2) where J_i is the Jacobian of
    image i w.r.t. its ws, the running mean m' = m + decay (mean(a) - m), and
    the penalty mean((a - m')^2) (m' carries a gradient through mean(a), as
    in the reference).

    Args:
      synthesis: ws [N, num_ws, w_dim] -> images [N, H, W, C].
      ws: [N, num_ws, w_dim].
      rng: key for y.
      pl_mean: scalar, the running mean of the lengths.
      decay: its update rate.
    Returns:
      (penalty scalar >= 0, the new running mean (no gradient)).
    """
    images, vjp = jax.vjp(synthesis, ws)
    noise = jax.random.normal(rng, images.shape, images.dtype) / jnp.sqrt(
        jnp.float32(images.shape[1] * images.shape[2]))
    (grads,) = vjp(noise)  # the gradient of sum(images * noise) w.r.t. ws
    lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
    new_mean = pl_mean + decay * (jnp.mean(lengths) - pl_mean)
    penalty = jnp.mean(jnp.square(lengths - new_mean))
    return penalty, jax.lax.stop_gradient(new_mean)


INPUTS = ('real', 'fake', 'both', 'real_rng')


@dataclasses.dataclass(frozen=True)
class Penalty:
    """One entry of the registry: a penalty term in the discriminator's loss.

    The D loss adds `coefficient(weight) * fn(...)` for every penalty whose
    config weight is > 0 (or whose weight a sweep member sets), in the order
    of PENALTIES.

    Attributes:
      key: its weight's config key under `reg` (e.g. 'gp_weight' for
        reg.gp_weight); also its name in train_step's `hparams` when swept.
      metric: the metric name of the unweighted penalty, e.g. 'reg/gp'.
      fn: the penalty; its arguments follow `inputs`.
      inputs: the samples it takes: 'real' fn(d_fn, real), 'fake' fn(d_fn,
        fake), 'both' fn(d_fn, real, fake, rng) (e.g. WGAN-GP's interpolates;
        the rng is the D update's penalty key, shared by every 'both' penalty:
        fold in a constant for independent draws), 'real_rng' fn(d_fn, real,
        rng') with rng' that key folded with 1 (DRAGAN's perturbations).
      scale: the weight convention: the term is scale * weight * penalty
        (1 for WGAN-GP's λ, 1/2 for R1's γ).
      default: the config's default weight (0 = off).
      minimum: the smallest valid weight (config.validate checks it).
      sweepable: whether a sweep may vary the weight per member.
      doc: one line for readers of the schema and launchers' help text.
    """
    key: str
    metric: str
    fn: Callable[..., jax.Array]
    inputs: str
    scale: float = 1.0
    default: float = 0.0
    minimum: float = 0.0
    sweepable: bool = True
    doc: str = ''

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f'Penalty {self.key!r}: inputs must be one of '
                             f'{", ".join(INPUTS)}, got {self.inputs!r}')

    def __call__(self, d_fn: DFn, real: jax.Array, fake: jax.Array,
                 rng: PRNGKey) -> jax.Array:
        """The unweighted penalty of D on this batch (a scalar)."""
        if self.inputs == 'real':
            return self.fn(d_fn, real)
        if self.inputs == 'fake':
            return self.fn(d_fn, fake)
        if self.inputs == 'real_rng':
            return self.fn(d_fn, real, jax.random.fold_in(rng, 1))
        return self.fn(d_fn, real, fake, rng)

    def coefficient(self, weight):
        """The factor of the penalty in the loss, scale * weight; `weight` may
        be a float or a traced scalar (a swept member's)."""
        # No multiplication by 1: a plain weight enters the loss as it is.
        return weight if self.scale == 1.0 else self.scale * weight

    def error(self, value: float) -> Optional[str]:
        """The validation message for a bad config weight, or None."""
        if value < self.minimum:
            return f'reg.{self.key} must be >= {self.minimum:g}, got {value}'
        return None


# The order of this tuple is the order in which the terms are added to the D
# loss (a floating-point sum: reordering changes the numbers).
PENALTIES: Tuple[Penalty, ...] = (
    Penalty('gp_weight', 'reg/gp', gradient_penalty, 'both', scale=1.0,
            doc='gradient-penalty weight lambda (WGAN-GP, on interpolates)'),
    Penalty('r1_gamma', 'reg/r1', r1_penalty, 'real', scale=0.5,
            doc='R1 gamma (the term is gamma/2 E||grad D(x)||^2 on data)'),
    Penalty('r2_gamma', 'reg/r2', r2_penalty, 'fake', scale=0.5,
            doc='R2 gamma (as R1, on generated samples)'),
    # Not (yet) in train.SWEEPABLE, whose table tests pin; a plain run takes it.
    Penalty('dragan_weight', 'reg/dragan', dragan_penalty, 'real_rng', scale=1.0,
            sweepable=False,
            doc='DRAGAN weight lambda (Kodali et al. 2017: 10), on perturbed data'),
)


def get(key: str) -> Penalty:
    """The registered penalty whose weight is reg.`key`.

    Raises:
      ValueError: naming the unknown key and listing the valid ones.
    """
    for penalty in PENALTIES:
        if penalty.key == key:
            return penalty
    raise ValueError(f'unknown penalty {key!r}; valid penalties: '
                     f'{", ".join(p.key for p in PENALTIES)}')
