"""The update rule: every line that takes a gradient of a network's parameters.

One training step (`train_step`) runs, in this order:
  1. `n_critic` discriminator updates (`d_step`), each on a fresh real batch
     and fresh latents, with the generator fixed;
  2. one generator update (`g_step`) against the updated discriminator (or,
     for an unrolled GAN, against `unroll_steps` look-ahead updates of it);
  3. the EMA of the generator's parameters.
Randomness comes from `fold_in(state.rng, state.step)`, so a run is a
deterministic function of its config and seed.

Batches: {'x': [n_critic, B, *data_shape] float32, optionally
'label': [n_critic, B] int32}. Images are in [-1, 1], 2-D points unscaled.
"""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan_jax import ada, augment, losses, regularizers
from gan_jax.ops import xla_options
from gan_jax.state import GUARDED_METRICS, GANState
from gan_jax.types import Batch, Metrics, PRNGKey, PyTree


@dataclasses.dataclass(frozen=True)
class UpdateSpec:
    """The static parts of an update: networks, optimizers and weights.

    Hashable, so it can be closed over by `jax.jit` without retracing.

    `penalties` holds (key, weight) of the active penalties of
    regularizers.PENALTIES (those with weight > 0), in the registry's order,
    e.g. (('gp_weight', 10.0),) for reg.gp_weight = 10.
    """
    G: nn.Module
    D: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: losses.Loss
    z_dim: int
    n_critic: int = 1
    penalties: Tuple[Tuple[str, float], ...] = ()
    ema_decay: float = 0.999
    ema_start_step: int = 0
    skip_nonfinite: bool = False
    augment_policy: str = ''
    unroll_steps: int = 0
    compute_dtype: str = 'float32'
    # Lazy regularization (StyleGAN2): the D penalties as an extra D update
    # every d_reg_interval steps, the path-length penalty as an extra G update
    # every g_reg_interval steps, each weighted by its interval.
    d_reg_interval: int = 1
    g_reg_interval: int = 1
    pl_weight: float = 0.0
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    ema_half_life_kimg: float = 0.0
    ema_rampup: float = 0.0
    # ADA (gan_jax/ada.py): 0 = off.
    ada_target: float = 0.0
    ada_ops: str = 'bgc'
    ada_interval: int = 4
    ada_kimg: float = 500.0
    ada_p: float = 0.0
    # WGAN's weight clipping (Arjovsky et al. 2017): every D parameter is
    # clipped to [-c, c] after each D update; 0 = off.
    d_weight_clip: float = 0.0
    # Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): D's
    # adversarial terms see x + σ N(0, I) for real and fake x; 0 = off.
    instance_noise: float = 0.0

    @property
    def lazy_d_reg(self) -> bool:
        """Whether the D penalties run as their own update every
        d_reg_interval steps instead of in every D update's loss."""
        return self.d_reg_interval > 1


def make_optimizer(opt: ml_collections.ConfigDict, updates_per_step: int = 1,
                   reg_interval: int = 1) -> optax.GradientTransformation:
    """Adam (opt.name 'adam') or RMSProp ('rmsprop') with a constant rate, or
    one that decays linearly to 0 over opt.decay_steps steps (of
    updates_per_step updates each).

    RMSProp as PyTorch's (WGAN's reference code used its defaults): b2 is the
    decay of the mean square (PyTorch's alpha, 0.99), eps 1e-8 outside the
    square root, b1 the momentum (0 = none).

    With lazy regularization every `reg_interval` steps (> 1), the network
    takes reg_interval + 1 updates per interval, and, as StyleGAN2 (its
    training_loop.py), the rate becomes lr * c and the betas b ** c, with
    c = reg_interval / (reg_interval + 1), so the moments keep their time
    constants per step.
    """
    lr, b1, b2 = opt.lr, opt.b1, opt.b2
    if reg_interval > 1:
        c = reg_interval / (reg_interval + 1)
        lr, b1, b2 = lr * c, b1 ** c, b2 ** c
    if opt.schedule == 'linear':
        lr = optax.linear_schedule(lr, 0.0, opt.decay_steps * updates_per_step)
    name = opt.get('name', 'adam')
    if name == 'rmsprop':
        return optax.rmsprop(lr, decay=b2, eps=1e-8, eps_in_sqrt=False,
                             momentum=b1 or None)
    if name != 'adam':
        raise ValueError(f'unknown optimizer {name!r}; valid: adam, rmsprop')
    return optax.adam(lr, b1=b1, b2=b2)


def make_spec(config: ml_collections.ConfigDict, G: nn.Module, D: nn.Module
              ) -> UpdateSpec:
    """Builds the UpdateSpec of a (validated) config."""
    penalties = tuple((p.key, float(config.reg[p.key]))
                      for p in regularizers.PENALTIES if config.reg[p.key] > 0)
    d_interval = config.reg.d_reg_interval if penalties else 1
    g_interval = config.reg.g_reg_interval if config.reg.pl_weight > 0 else 1
    return UpdateSpec(
        G=G, D=D,
        g_tx=make_optimizer(config.opt.g, reg_interval=g_interval),
        # The D schedule counts D updates, n_critic per step.
        d_tx=make_optimizer(config.opt.d, config.n_critic, reg_interval=d_interval),
        loss=losses.get(config.loss.name),
        z_dim=config.model.z_dim,
        n_critic=config.n_critic,
        penalties=penalties,
        ema_decay=float(config.ema.decay),
        ema_start_step=config.ema.start_step,
        skip_nonfinite=config.nan_policy == 'skip',
        augment_policy=config.augment.policy,
        unroll_steps=config.unroll_steps,
        compute_dtype=config.model.compute_dtype,
        d_reg_interval=config.reg.d_reg_interval,
        g_reg_interval=config.reg.g_reg_interval,
        pl_weight=float(config.reg.pl_weight),
        pl_decay=float(config.reg.pl_decay),
        pl_batch_shrink=config.reg.pl_batch_shrink,
        ema_half_life_kimg=float(config.ema.half_life_kimg),
        ema_rampup=float(config.ema.rampup),
        ada_target=float(config.augment.ada_target),
        ada_ops=config.augment.ada_ops,
        ada_interval=config.augment.ada_interval,
        ada_kimg=float(config.augment.ada_kimg),
        ada_p=float(config.augment.ada_p),
        d_weight_clip=float(config.reg.get('weight_clip', 0.0)),
        instance_noise=float(config.reg.get('instance_noise', 0.0)),
    )


def initial_stats(spec: UpdateSpec) -> Dict[str, jax.Array]:
    """The entries of GANState.stats that spec's update carries besides the
    NaN guard's: the last lazy penalty values (reported between their
    updates) and the path-length running mean. {} for eager updates, so the
    states of plain configs are unchanged."""
    stats = {}
    if spec.lazy_d_reg:
        for key, _ in spec.penalties:
            stats[regularizers.get(key).metric] = jnp.zeros((), jnp.float32)
    if spec.pl_weight > 0:
        stats['pl_mean'] = jnp.zeros((), jnp.float32)
        stats['reg/pl'] = jnp.zeros((), jnp.float32)
    if spec.ada_target > 0:
        stats.update(ada.init_stats(spec.ada_p))
    return stats


def _seen_by_d(spec: UpdateSpec, ada_p: Optional[jax.Array], rng: PRNGKey
               ) -> Callable[[jax.Array], jax.Array]:
    """x -> what D sees of x: ADA's augmentation at probability ada_p when
    ADA is on (differentiable: gradients flow through it), else x."""
    if spec.ada_target <= 0:
        return lambda x: x
    return lambda x: ada.augment(rng, x, ada_p, ops=spec.ada_ops)


def clip_d_params(d_params: PyTree, spec: UpdateSpec) -> PyTree:
    """D's parameters clipped to [-spec.d_weight_clip, spec.d_weight_clip]
    (WGAN, Arjovsky et al. 2017, Algorithm 1), or as they are when it is 0."""
    if spec.d_weight_clip <= 0:
        return d_params
    c = spec.d_weight_clip
    return jax.tree.map(lambda p: jnp.clip(p, -c, c), d_params)


def sample_latents(rng: PRNGKey, batch_size: int, z_dim: int) -> jax.Array:
    """Standard normal latents [batch_size, z_dim]."""
    return jax.random.normal(rng, (batch_size, z_dim), jnp.float32)


def _apply(module: nn.Module, params: PyTree, state: Dict[str, PyTree],
           inputs: jax.Array, labels: Optional[jax.Array], spec: UpdateSpec,
           rng: Optional[PRNGKey] = None, method: Optional[str] = None
           ) -> Tuple[jax.Array, Dict[str, PyTree]]:
    """Runs a network in training mode; returns (float32 output, its updated
    state (batch statistics)).

    `rng` feeds the rng streams a network may draw from in training
    ('noise', 'mixing': StyleGAN2's noise inputs and style mixing; other
    models draw none, and are unaffected). `method` names another method of
    the module than __call__ (e.g. 'mapping'); labels=None is then not passed.

    spec.compute_dtype 'bfloat16' (mixed precision, for accelerators; the
    input-gradient penalties run D in float32, see d_loss_fn): the
    parameters and the inputs enter as bfloat16, so matmuls, convolutions and
    activations run in bfloat16, and the output comes back as float32; the
    parameters, their gradients, the optimizer and the state stay float32
    (batch norm reduces in float32 and its running statistics stay float32).
    """
    if spec.compute_dtype != 'float32':
        dtype = jnp.dtype(spec.compute_dtype)
        params = jax.tree.map(lambda p: p.astype(dtype)
                              if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
        inputs = inputs.astype(dtype)
    kwargs = {}
    if rng is not None:
        noise_rng, mixing_rng = jax.random.split(rng)
        kwargs['rngs'] = {'noise': noise_rng, 'mixing': mixing_rng}
    args = (inputs, labels) if method is None or labels is not None else (inputs,)
    if method is not None:
        kwargs['method'] = method
    out, new_state = module.apply({'params': params, **state}, *args,
                                  train=True, mutable=list(state), **kwargs)
    # The state keeps its dtypes, so that the compiled step's carry is stable.
    new_state = jax.tree.map(lambda new, old: new.astype(old.dtype),
                             dict(new_state), dict(state))
    return out.astype(jnp.float32), new_state


def separate_real_and_fake(D: nn.Module) -> bool:
    """Whether D must see real and fake samples in separate calls: D
    declares it with a true `separate_real_and_fake` attribute or property
    (stylegan2.Discriminator with minibatch stddev: a feature computed
    across the samples of a call is meant to describe reals or fakes, not a
    mix of both)."""
    return bool(getattr(D, 'separate_real_and_fake', False))


def d_loss_fn(d_params: PyTree, d_state: Dict[str, PyTree], real: jax.Array,
              fake: jax.Array, labels: Optional[jax.Array], rng: PRNGKey, *,
              spec: UpdateSpec, weights: Optional[Mapping[str, Any]] = None,
              ada_p: Optional[jax.Array] = None
              ) -> Tuple[jax.Array, Dict[str, Any]]:
    """Discriminator loss plus penalties.

    Real and fake samples go through D in one call, so D's batch statistics
    (if any) are those of the mixed batch; a D whose logits compare the
    samples of a call with each other (StyleGAN2's minibatch stddev,
    separate_real_and_fake) sees them in two calls, reals first. With
    DiffAugment on, both are augmented first, and the penalties see the
    augmented samples. The
    penalties (regularizers.PENALTIES) are added in the registry's order.

    Args:
      real, fake: [B, *data_shape] samples; fake is a constant here.
      labels: [B] int32 or None (used for both halves).
      weights: {penalty key: (traced) weight} replacing spec.penalties' weight
        of that penalty, and turning it on if it is off, for sweeps.
      ada_p: ADA's augmentation probability (stats['ada_p']) when ADA is on:
        real and fake are augmented before D, and the penalties differentiate
        D(augment(x)) at the un-augmented x, as stylegan2-ada.
    Returns:
      (total loss, {'d_state': updated D state, 'metrics': scalars,
      'real_logits': [B // pack]}).
    """
    # DiffAugment first: D's adversarial term and the penalties both see the
    # augmented samples (ADA, below, then augments what D's call sees).
    if spec.augment_policy:
        aug_rng, rng = jax.random.split(rng)
        both = augment.diff_augment(aug_rng, jnp.concatenate([real, fake]),
                                    spec.augment_policy)
        real, fake = jnp.split(both, 2)
    seen_rng, penalty_seen_rng = jax.random.split(jax.random.fold_in(rng, 2))
    if spec.ada_target > 0:
        real_seen, fake_seen = jnp.split(_seen_by_d(spec, ada_p, seen_rng)(
            jnp.concatenate([real, fake])), 2)
    else:
        real_seen, fake_seen = real, fake
    if spec.instance_noise > 0:  # the adversarial term only, not the penalties
        real_seen = _noised(real_seen, jax.random.fold_in(rng, 3), spec)
        fake_seen = _noised(fake_seen, jax.random.fold_in(rng, 4), spec)
    if separate_real_and_fake(spec.D):
        # Two calls, as stylegan2-ada: in one call of the concatenation the
        # minibatch-stddev groups would hold reals and fakes alike, and that
        # feature (D's cue against mode collapse) would carry no signal.
        real_logits, mid_d_state = _apply(spec.D, d_params, d_state, real_seen,
                                          labels, spec)
        fake_logits, new_d_state = _apply(spec.D, d_params, mid_d_state, fake_seen,
                                          labels, spec)
    else:
        both_labels = None if labels is None else jnp.concatenate([labels, labels])
        logits, new_d_state = _apply(spec.D, d_params, d_state,
                                     jnp.concatenate([real_seen, fake_seen]),
                                     both_labels, spec)
        real_logits, fake_logits = jnp.split(logits, 2)
    adv = spec.loss.d_loss(real_logits=real_logits, fake_logits=fake_logits)
    metrics = {'loss/d_adv': adv, 'scores/real': jnp.mean(real_logits),
               'scores/fake': jnp.mean(fake_logits)}

    # The penalties differentiate D with respect to its input. Under bfloat16
    # compute those input gradients would carry 8 bits of mantissa and the
    # squared norms sum them over every pixel, so D runs in float32 for them
    # (the adversarial term above keeps spec.compute_dtype).
    penalty_spec = (spec if spec.compute_dtype == 'float32'
                    else dataclasses.replace(spec, compute_dtype='float32'))

    seen = _seen_by_d(spec, ada_p, penalty_seen_rng)

    def d_fn(x):  # D as a function of its input, for the penalties.
        return _apply(spec.D, d_params, d_state, seen(x), labels, penalty_spec)[0]

    total = adv
    out = {'d_state': new_d_state, 'metrics': metrics, 'real_logits': real_logits}
    if spec.lazy_d_reg:  # the penalties are d_reg_step's
        metrics['loss/d'] = total
        return total, out
    metrics.update(d_penalties(d_fn, real, fake, rng, spec=spec, weights=weights))
    for penalty in regularizers.PENALTIES:  # in order: a floating-point sum
        if penalty.metric in metrics:
            total = total + penalty.coefficient(
                _weight(penalty.key, spec, weights)) * metrics[penalty.metric]
    metrics['loss/d'] = total
    return total, out


def _noised(x: jax.Array, rng: PRNGKey, spec: UpdateSpec) -> jax.Array:
    """x + spec.instance_noise · N(0, I), x [B, ...] (instance noise)."""
    return x + spec.instance_noise * jax.random.normal(rng, x.shape, x.dtype)


def _weight(key: str, spec: UpdateSpec, weights: Optional[Mapping[str, Any]]):
    """A penalty's weight: a sweep member's, else the config's."""
    return (weights or {}).get(key, dict(spec.penalties).get(key))


def d_penalties(d_fn: regularizers.DFn, real: jax.Array, fake: jax.Array,
                rng: PRNGKey, *, spec: UpdateSpec,
                weights: Optional[Mapping[str, Any]] = None) -> Dict[str, jax.Array]:
    """The unweighted active penalties of D (spec.penalties, and any a sweep
    member's `weights` turns on), {metric: scalar}, in the registry's order."""
    active = dict(spec.penalties, **(weights or {}))
    for key in active:
        regularizers.get(key)  # raises ValueError for an unknown penalty
    return {p.metric: p(d_fn, real, fake, rng)
            for p in regularizers.PENALTIES if p.key in active}


def unrolled_d_params(g_params: PyTree, g_state: Dict[str, PyTree],
                      d_params: PyTree, d_state: Dict[str, PyTree],
                      d_opt_state: optax.OptState, real: jax.Array,
                      labels: Optional[jax.Array], rng: PRNGKey, *,
                      spec: UpdateSpec, ada_p: Optional[jax.Array] = None) -> PyTree:
    """D's parameters after spec.unroll_steps look-ahead updates (Metz et al.
    2017), as a differentiable function of G's parameters.

    Each look-ahead update is an ordinary D update (loss, penalties and
    optimizer of d_step) on `real` [B, ...] and fresh fakes of G; gradients of
    whatever is computed from the result flow back through all of them into
    g_params. The real D is not changed: these parameters only shape G's loss.
    """
    params, opt_state = d_params, d_opt_state
    for k in range(spec.unroll_steps):
        z_rng, reg_rng = jax.random.split(jax.random.fold_in(rng, k))
        z = sample_latents(z_rng, real.shape[0], spec.z_dim)
        fake, _ = _apply(spec.G, g_params, g_state, z, labels, spec,
                         rng=jax.random.fold_in(z_rng, 1))
        grads, _ = jax.grad(d_loss_fn, has_aux=True)(params, d_state, real, fake,
                                                     labels, reg_rng, spec=spec,
                                                     ada_p=ada_p)
        updates, opt_state = spec.d_tx.update(grads, opt_state, params)
        params = clip_d_params(optax.apply_updates(params, updates), spec)
    return params


def g_loss_fn(g_params: PyTree, g_state: Dict[str, PyTree], d_params: PyTree,
              d_state: Dict[str, PyTree], z: jax.Array,
              labels: Optional[jax.Array], rng: PRNGKey, *, spec: UpdateSpec,
              d_opt_state: Optional[optax.OptState] = None,
              real: Optional[jax.Array] = None,
              ada_p: Optional[jax.Array] = None) -> Tuple[jax.Array, Dict[str, Any]]:
    """Generator loss against a fixed discriminator, or, with
    spec.unroll_steps = k > 0, against D after k look-ahead updates on `real`
    (unrolled GAN; needs d_opt_state and real).

    D runs in training mode, but its state updates are dropped: only D steps
    move D's statistics.

    Returns:
      (loss, {'g_state': updated G state, 'metrics': scalars}).
    """
    if spec.unroll_steps:
        rng, unroll_rng = jax.random.split(rng)
        d_params = unrolled_d_params(g_params, g_state, d_params, d_state,
                                     d_opt_state, real, labels, unroll_rng, spec=spec,
                                     ada_p=ada_p)
    # G's own draws (noise inputs, style mixing) from a key folded out of
    # `rng`, so the keys below stay those of models that draw none.
    g_rng = jax.random.fold_in(rng, 1)
    fake, new_g_state = _apply(spec.G, g_params, g_state, z, labels, spec, rng=g_rng)
    if spec.augment_policy:  # differentiable: G's gradient flows through it
        fake = augment.diff_augment(rng, fake, spec.augment_policy)
    fake = _seen_by_d(spec, ada_p, jax.random.fold_in(rng, 2))(fake)  # ADA, as D's
    if spec.instance_noise > 0:
        fake = _noised(fake, jax.random.fold_in(rng, 3), spec)
    fake_logits, _ = _apply(spec.D, d_params, d_state, fake, labels, spec)
    loss = spec.loss.g_loss(fake_logits=fake_logits)
    return loss, {'g_state': new_g_state, 'metrics': {'loss/g': loss}}


@dataclasses.dataclass(frozen=True)
class Sweepable:
    """A config key that a sweep may vary per member, and the scalar of
    train_step's `hparams` that carries it.

    Attributes:
      key: the dotted config key, e.g. 'opt.d.lr'.
      hparam: the scalar's name in `hparams`, e.g. 'lr_d_scale'.
      derive: how the scalar comes from the member's value: 'ratio', the
        member's value over the config's (a learning rate: the optimizer's
        updates are multiplied by it); 'value', the member's value itself (a
        penalty weight: it replaces the config's).
      doc: what the key is, for a launcher's help text.
    """
    key: str
    hparam: str
    derive: str
    doc: str = ''


# Every sweepable config key (the one table: gan_jax/sweep.py and
# experiments/sweep.py build their checks and flags from it). Penalty weights
# come from regularizers.PENALTIES, under their config key.
SWEEPABLE: Dict[str, Sweepable] = {s.key: s for s in (
    Sweepable('opt.d.lr', 'lr_d_scale', 'ratio', 'discriminator learning rate'),
    Sweepable('opt.g.lr', 'lr_g_scale', 'ratio', 'generator learning rate'),
    *(Sweepable(f'reg.{p.key}', p.key, 'value', p.doc)
      for p in regularizers.PENALTIES if p.sweepable),
)}


def member_hparam_values(config: ml_collections.ConfigDict, key: str,
                         values: Sequence[float]) -> np.ndarray:
    """The per-member scalars of hparams[SWEEPABLE[key].hparam] for members
    whose config `key` takes `values`.

    Args:
      config: the sweep's base config (ratios are taken to its value of key).
      key: a key of SWEEPABLE, e.g. 'opt.d.lr'.
      values: one value per member.
    Returns:
      float32 [K].
    Raises:
      ValueError: `key` is not sweepable (listing the sweepable keys).
    """
    if key not in SWEEPABLE:
        raise ValueError(f'cannot sweep {key!r}; sweepable keys: '
                         f'{", ".join(SWEEPABLE)}')
    values = np.asarray(values, np.float32)
    if SWEEPABLE[key].derive == 'ratio':
        base = config
        for part in key.split('.'):
            base = base[part]
        return values / np.float32(base)
    return values


def _scaled(updates: PyTree, hparams: Optional[Dict[str, jax.Array]], key: str
            ) -> PyTree:
    """updates * hparams[key] (a learning-rate ratio in a sweep), or as is."""
    if not hparams or key not in hparams:
        return updates
    return jax.tree.map(lambda u: u * hparams[key], updates)


def d_step(state: GANState, real: jax.Array, labels: Optional[jax.Array],
           rng: PRNGKey, *, spec: UpdateSpec,
           hparams: Optional[Dict[str, jax.Array]] = None) -> Tuple[GANState, Metrics]:
    """One discriminator update on real [B, ...] with fresh fakes.

    The fakes come from G in training mode; G's batch-statistics updates are
    dropped so that only G steps move them. `hparams` (see train_step) may
    scale the learning rate and replace penalty weights.
    """
    z_rng, reg_rng = jax.random.split(rng)
    z = sample_latents(z_rng, real.shape[0], spec.z_dim)
    fake, _ = _apply(spec.G, state.g_params, state.g_state, z, labels, spec,
                     rng=jax.random.fold_in(z_rng, 1))
    return d_update(state, real, fake, labels, reg_rng, spec=spec, hparams=hparams)


def d_update(state: GANState, real: jax.Array, fake: jax.Array,
             labels: Optional[jax.Array], reg_rng: PRNGKey, *, spec: UpdateSpec,
             hparams: Optional[Dict[str, jax.Array]] = None
             ) -> Tuple[GANState, Metrics]:
    """One discriminator update on real and fake [B, ...] (constants): d_step
    after its fakes are drawn; alone, it trains a critic against a fixed
    distribution of fakes (Gulrajani et al. 2017, Fig. 1). `reg_rng` feeds the
    penalties; `hparams` as d_step."""
    fake = jax.lax.stop_gradient(fake)
    weights = {p.key: hparams[p.key] for p in regularizers.PENALTIES
               if p.sweepable and hparams and p.key in hparams}
    grad_fn = jax.value_and_grad(d_loss_fn, has_aux=True)
    (_, aux), grads = grad_fn(state.d_params, state.d_state, real, fake, labels,
                              reg_rng, spec=spec, weights=weights,
                              ada_p=state.stats.get('ada_p'))
    updates, d_opt_state = spec.d_tx.update(grads, state.d_opt_state,
                                            state.d_params)
    updates = _scaled(updates, hparams, 'lr_d_scale')
    metrics = dict(aux['metrics'], **{'grad_norm/d': optax.tree.norm(grads)})
    stats = state.stats
    if spec.ada_target > 0:  # ADA's overfitting signal: the signs of D(real)
        sign_sum, count = ada.accumulate(stats['ada_sign_sum'], stats['ada_count'],
                                         aux['real_logits'])
        stats = dict(stats, ada_sign_sum=sign_sum, ada_count=count)
    return state.replace(
        d_params=clip_d_params(optax.apply_updates(state.d_params, updates), spec),
        d_opt_state=d_opt_state, d_state=aux['d_state'], stats=stats), metrics


def g_step(state: GANState, labels: Optional[jax.Array], rng: PRNGKey, *,
           spec: UpdateSpec, batch_size: int,
           hparams: Optional[Dict[str, jax.Array]] = None,
           real: Optional[jax.Array] = None) -> Tuple[GANState, Metrics]:
    """One generator update on fresh latents [batch_size, z_dim]; `real`
    [B, ...] feeds the look-ahead D updates of an unrolled GAN."""
    z_rng, aug_rng = jax.random.split(rng)
    z = sample_latents(z_rng, batch_size, spec.z_dim)
    grad_fn = jax.value_and_grad(g_loss_fn, has_aux=True)
    (_, aux), grads = grad_fn(state.g_params, state.g_state, state.d_params,
                              state.d_state, z, labels, aug_rng, spec=spec,
                              d_opt_state=state.d_opt_state, real=real,
                              ada_p=state.stats.get('ada_p'))
    updates, g_opt_state = spec.g_tx.update(grads, state.g_opt_state,
                                            state.g_params)
    updates = _scaled(updates, hparams, 'lr_g_scale')
    metrics = dict(aux['metrics'], **{'grad_norm/g': optax.tree.norm(grads)})
    return state.replace(g_params=optax.apply_updates(state.g_params, updates),
                         g_opt_state=g_opt_state,
                         g_state=aux['g_state']), metrics


def d_reg_step(state: GANState, real: jax.Array, labels: Optional[jax.Array],
               rng: PRNGKey, *, spec: UpdateSpec,
               hparams: Optional[Dict[str, jax.Array]] = None
               ) -> Tuple[GANState, Metrics]:
    """The lazy D penalty update (StyleGAN2's 'Dreg' phase): one D update on
    spec.d_reg_interval * (the weighted penalties) alone, on real [B, ...]
    and fresh fakes; D's batch statistics are not moved by it.

    Returns:
      (the new state, {penalty metric: its unweighted value}).
    """
    z_rng, reg_rng = jax.random.split(rng)
    z = sample_latents(z_rng, real.shape[0], spec.z_dim)
    fake, _ = _apply(spec.G, state.g_params, state.g_state, z, labels, spec,
                     rng=jax.random.fold_in(z_rng, 1))
    fake = jax.lax.stop_gradient(fake)
    penalty_spec = dataclasses.replace(spec, compute_dtype='float32')
    weights = {k: hparams[k] for k in dict(spec.penalties) if hparams and k in hparams}

    seen = _seen_by_d(spec, state.stats.get('ada_p'), jax.random.fold_in(reg_rng, 2))

    def loss_fn(d_params):
        def d_fn(x):
            return _apply(spec.D, d_params, state.d_state, seen(x), labels,
                          penalty_spec)[0]
        values = d_penalties(d_fn, real, fake, reg_rng, spec=spec, weights=weights)
        total = 0.0
        for penalty in regularizers.PENALTIES:
            if penalty.metric in values:
                total = total + penalty.coefficient(
                    _weight(penalty.key, spec, weights)) * values[penalty.metric]
        return total * spec.d_reg_interval, values

    grads, values = jax.grad(loss_fn, has_aux=True)(state.d_params)
    updates, d_opt_state = spec.d_tx.update(grads, state.d_opt_state, state.d_params)
    updates = _scaled(updates, hparams, 'lr_d_scale')
    return state.replace(
        d_params=clip_d_params(optax.apply_updates(state.d_params, updates), spec),
        d_opt_state=d_opt_state), values


def g_reg_step(state: GANState, labels: Optional[jax.Array], rng: PRNGKey, *,
               spec: UpdateSpec, batch_size: int,
               hparams: Optional[Dict[str, jax.Array]] = None
               ) -> Tuple[GANState, Metrics]:
    """The lazy path-length update (StyleGAN2's 'Greg' phase): one G update on
    spec.g_reg_interval * pl_weight * the path-length penalty of
    batch_size // pl_batch_shrink fresh samples; moves stats['pl_mean'].
    G must have `sample_ws` (mapping and style mixing) and `synthesis`
    methods (models/stylegan2.py); its statistics (w_avg) are not moved here.

    Returns:
      (the new state, {'reg/pl': the penalty, 'pl_mean': the new mean}).
    """
    n = max(1, batch_size // spec.pl_batch_shrink)
    z_rng, noise_rng, g_rng = jax.random.split(rng, 3)
    z = sample_latents(z_rng, n, spec.z_dim)
    labels = None if labels is None else labels[:n]
    map_rng, synth_rng = jax.random.split(g_rng)

    def loss_fn(g_params):
        ws, _ = _apply(spec.G, g_params, state.g_state, z, labels, spec,
                       rng=map_rng, method='sample_ws')

        def synthesis(w):
            return _apply(spec.G, g_params, state.g_state, w, None, spec,
                          rng=synth_rng, method='synthesis')[0]

        penalty, new_mean = regularizers.path_length_penalty(
            synthesis, ws, noise_rng, state.stats['pl_mean'], decay=spec.pl_decay)
        return penalty * spec.pl_weight * spec.g_reg_interval, (penalty, new_mean)

    grads, (penalty, new_mean) = jax.grad(loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = spec.g_tx.update(grads, state.g_opt_state, state.g_params)
    updates = _scaled(updates, hparams, 'lr_g_scale')
    stats = dict(state.stats, pl_mean=new_mean, **{'reg/pl': penalty})
    return state.replace(g_params=optax.apply_updates(state.g_params, updates),
                         g_opt_state=g_opt_state, stats=stats), {
                             'reg/pl': penalty, 'pl_mean': new_mean}


def _ada_adjust(stats: Dict[str, jax.Array], steps_done: jax.Array, images: int,
                spec: UpdateSpec) -> Dict[str, jax.Array]:
    """ADA's p update every spec.ada_interval steps (ada.update_p from the
    signs of D(real) accumulated since the last one, which then restart);
    `images` is the reals D saw per step."""
    due = steps_done % spec.ada_interval == 0
    p = ada.update_p(stats['ada_p'], stats['ada_sign_sum'], stats['ada_count'],
                     target=spec.ada_target, batch_size=images,
                     interval=spec.ada_interval, speed_kimg=spec.ada_kimg)
    return dict(stats, ada_p=jnp.where(due, p, stats['ada_p']),
                ada_sign_sum=jnp.where(due, 0.0, stats['ada_sign_sum']),
                ada_count=jnp.where(due, 0, stats['ada_count']))


RegPhases = Tuple[bool, bool]


def reg_phases(spec: UpdateSpec, step: int) -> RegPhases:
    """(whether the lazy D penalty update runs, whether the lazy path-length
    update runs) in the step after `step` completed steps, as Python bools:
    what train_step's `phases` takes to compile the phase in or out."""
    return (spec.lazy_d_reg and step % spec.d_reg_interval == 0,
            spec.pl_weight > 0 and step % spec.g_reg_interval == 0)


def _every(interval: int, step: jax.Array, update, state: GANState,
           due: Optional[bool] = None) -> GANState:
    """update(state) when step % interval == 0, else state.

    With `due` None a lax.cond decides on the device: the skipped branch
    costs nothing, except under vmap, which runs both. But XLA:CPU runs the
    convolutions of a conditional's branch several times slower than the
    same ones at the top level (the StyleGAN2 digits step: 8.8 s with the
    lazy R1 branch taken, against 0.6 s for the step and 1.1 s for the R1
    update compiled alone, AMD EPYC Zen 4), so the loop passes `due` from its
    host step counter and each combination of phases compiles on its own.
    """
    if due is not None:
        return update(state) if due else state
    return jax.lax.cond(step % interval == 0, update, lambda s: s, state)


def ema_beta(step: jax.Array, batch_size: int, spec: UpdateSpec) -> jax.Array:
    """The EMA decay of the update after `step` steps: spec.ema_decay, or,
    with a half-life (StyleGAN2), 0.5 ** (batch / half-life images) with the
    half-life capped at rampup * images seen; 0 before ema_start_step."""
    if spec.ema_half_life_kimg > 0:
        half_life = jnp.float32(spec.ema_half_life_kimg * 1000)
        if spec.ema_rampup > 0:
            seen = step.astype(jnp.float32) * batch_size
            half_life = jnp.minimum(half_life, seen * spec.ema_rampup)
        beta = 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))
    else:
        beta = spec.ema_decay
    return jnp.where(step < spec.ema_start_step, 0.0, beta)


def ema_update(ema_params: PyTree, params: PyTree, beta: jax.Array) -> PyTree:
    """beta * ema + (1 - beta) * params, leaf by leaf."""
    return jax.tree.map(lambda e, p: beta * e + (1.0 - beta) * p, ema_params, params)


def _nonfinite_mask(metrics: Metrics) -> jax.Array:
    """int32 bitmask: bit i set when GUARDED_METRICS[i] is not finite."""
    bits = [jnp.logical_not(jnp.isfinite(metrics[name])).astype(jnp.int32) << i
            for i, name in enumerate(GUARDED_METRICS)]
    return sum(bits)


def train_step(state: GANState, batch: Batch, *, spec: UpdateSpec,
               hparams: Optional[Dict[str, jax.Array]] = None,
               phases: Optional[RegPhases] = None
               ) -> Tuple[GANState, Metrics]:
    """n_critic D updates, one G update, then the EMA (see the module doc).

    Args:
      state: the current GANState.
      batch: {'x': [n_critic, B, ...], optionally 'label': [n_critic, B]}.
      hparams: optional scalars that a sweep varies per member (gan_jax/sweep.py),
        named in SWEEPABLE (member_hparam_values computes them): 'lr_d_scale',
        'lr_g_scale' multiply the optimizers' updates (the ratio of the
        member's learning rate to the config's); a penalty's key (e.g.
        'gp_weight') replaces its reg.* weight. None computes exactly the
        plain update.
      phases: reg_phases(spec, step) for the state's step, to compile the
        lazy regularization updates in or out; None decides on the device
        (for scans and sweeps, where the step is traced). Both give the
        same update.
    Returns:
      (the new state, scalar metrics; D metrics are means over the D updates).
    Raises:
      ValueError: a name in hparams that SWEEPABLE does not have.
    """
    if hparams:
        unknown = sorted(set(hparams) - {s.hparam for s in SWEEPABLE.values()})
        if unknown:
            raise ValueError(f'unknown hparams {unknown[0]!r}; valid: '
                             f'{", ".join(s.hparam for s in SWEEPABLE.values())}')
    rng = jax.random.fold_in(state.rng, state.step)
    d_rng, g_rng = jax.random.split(rng)
    reals = batch['x']
    labels = batch.get('label')
    batch_size = reals.shape[1]

    # A Python loop, not lax.scan: inside an XLA while loop (even a fully
    # unrolled scan keeps one) XLA:CPU ran these convolutions several times
    # slower in our timings (with YNNPACK convolutions, before xla_options);
    # n_critic is small, so compile time stays low.
    d_keys = jax.random.split(d_rng, spec.n_critic)
    new_state, per_update = state, []
    for i in range(spec.n_critic):
        label = None if labels is None else labels[i]
        new_state, m = d_step(new_state, reals[i], label, d_keys[i], spec=spec,
                              hparams=hparams)
        per_update.append(m)
    d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *per_update)
    if spec.ada_target > 0:
        new_state = new_state.replace(stats=_ada_adjust(new_state.stats, state.step + 1,
                                                        reals.shape[0] * batch_size, spec))
        d_metrics['ada/p'] = new_state.stats['ada_p']
    if spec.lazy_d_reg:
        # The lazy penalties on the last real batch; between their updates the
        # metrics report their last values (kept in stats).
        label = None if labels is None else labels[-1]

        def d_reg(s):
            s, values = d_reg_step(s, reals[-1], label, jax.random.fold_in(d_rng, 1),
                                   spec=spec, hparams=hparams)
            return s.replace(stats=dict(s.stats, **values))

        new_state = _every(spec.d_reg_interval, state.step, d_reg, new_state,
                           None if phases is None else phases[0])
        d_metrics.update({name: new_state.stats[name] for name in
                          (regularizers.get(k).metric for k, _ in spec.penalties)})
    # Conditional generators draw their labels from the last real batch.
    g_labels = None if labels is None else labels[-1]
    new_state, g_metrics = g_step(new_state, g_labels, g_rng, spec=spec,
                                  batch_size=batch_size, hparams=hparams,
                                  real=reals[-1] if spec.unroll_steps else None)
    if spec.pl_weight > 0:
        new_state = _every(spec.g_reg_interval, state.step, lambda s: g_reg_step(
            s, g_labels, jax.random.fold_in(g_rng, 1), spec=spec,
            batch_size=batch_size, hparams=hparams)[0], new_state,
            None if phases is None else phases[1])
        g_metrics.update({'reg/pl': new_state.stats['reg/pl'],
                          'pl_mean': new_state.stats['pl_mean']})

    beta = ema_beta(state.step, batch_size, spec)
    new_state = new_state.replace(
        ema_params=ema_update(state.ema_params, new_state.g_params, beta),
        step=state.step + 1)
    metrics = {**d_metrics, **g_metrics, 'ema/beta': beta}

    mask = _nonfinite_mask(metrics)
    bad = mask > 0
    if spec.skip_nonfinite:
        # Keep the old networks but move on: the next step draws new data and
        # noise, so a rare overflow does not repeat forever.
        new_state = jax.tree.map(lambda old, new: jnp.where(bad, old, new),
                                 state.replace(step=state.step + 1), new_state)
    first = state.stats['first_nonfinite_step']
    record = jnp.logical_and(bad, first < 0)
    stats = {
        **new_state.stats,
        'nonfinite_steps': state.stats['nonfinite_steps'] + bad.astype(jnp.int32),
        'first_nonfinite_step': jnp.where(record, state.step + 1, first),
        'first_nonfinite_mask': jnp.where(record, mask,
                                          state.stats['first_nonfinite_mask']),
    }
    metrics['nonfinite_steps'] = stats['nonfinite_steps']
    return new_state.replace(stats=stats), metrics


def make_train_step(spec: UpdateSpec, *, state_sharding=None,
                    batch_sharding=None) -> Callable[[GANState, Batch],
                                                     Tuple[GANState, Metrics]]:
    """Compiles `train_step` for `spec`.

    The state argument is donated: XLA reuses its buffers for the new state, so
    the caller must not touch the old state after the call.

    Args:
      spec: static parts of the update.
      state_sharding, batch_sharding: jax.sharding.Sharding (or pytree
        prefixes) for the state and the batch; None lets jit decide.
    Returns:
      step_fn(state, batch, phases=None) -> (state, metrics); `phases`
      (positional, static: reg_phases(spec, int(state.step))) compiles one program per
      combination of lazy regularization phases, at most four, instead of
      deciding with lax.cond on the device (see `_every`).
    """
    def step_fn(state, batch, phases=None):
        return train_step(state, batch, spec=spec, phases=phases)

    # Positional and static: jit takes no keyword arguments with in_shardings.
    return _jit(step_fn, state_sharding, batch_sharding, static_argnums=2)


def make_multi_step(spec: UpdateSpec, steps: int, *, state_sharding=None,
                    batch_sharding=None) -> Callable[[GANState, Tuple[Batch, ...]],
                                                     Tuple[GANState, Metrics]]:
    """Compiles `steps` consecutive `train_step`s as one call (a `lax.scan`),
    which saves a dispatch and a host round trip per step for small models.

    The result equals `steps` calls of make_train_step's function on the same
    batches (randomness comes from state.step, which the scan carries), to
    float32 rounding. On XLA:CPU, convolutions inside a loop ran several times
    slower in our timings (with YNNPACK convolutions, before xla_options):
    this is for dense and small models, or accelerators.

    Args:
      spec: static parts of the update.
      steps: updates per call, >= 1.
      state_sharding, batch_sharding: as make_train_step (batch_sharding is
        the sharding of one batch).
    Returns:
      fn(state, batches) -> (state, metrics of the last step), where batches is
      a tuple of `steps` batches as train_step takes them. The state is donated.
    """
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')

    def multi_fn(state, batches):
        if len(batches) != steps:
            raise ValueError(f'expected {steps} batches, got {len(batches)}')
        return scan_steps(lambda s, b: train_step(s, b, spec=spec), state, batches)

    return _jit(multi_fn, state_sharding, batch_sharding)


def scan_steps(step: Callable[[GANState, Batch], Tuple[GANState, Metrics]],
               state: GANState, batches: Tuple[Batch, ...]
               ) -> Tuple[GANState, Metrics]:
    """Applies `step` to each of `batches` in turn inside one `lax.scan` (to
    be called under jit); returns (final state, metrics of the last step)."""
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *batches)
    state, metrics = jax.lax.scan(step, state, stacked)
    return state, jax.tree.map(lambda m: m[-1], metrics)


def _jit(fn, state_sharding, batch_sharding, **kwargs):
    if state_sharding is not None:
        kwargs['in_shardings'] = (state_sharding, batch_sharding)
        kwargs['out_shardings'] = (state_sharding, None)
    return xla_options.jit(fn, donate_argnums=0, **kwargs)


# Small two-player games (the Dirac-GAN of Mescheder et al. 2018, Sec. 2):
# both players' gradients at one point, consensus optimization, simultaneous
# and alternating gradient play. For networks without state (no batch
# statistics); scripts/figure_dirac_gan.py uses them on one-parameter G and D.

def game_gradients(g_params: PyTree, d_params: PyTree, real: jax.Array,
                   z: jax.Array, rng: PRNGKey, *, spec: UpdateSpec,
                   consensus: float = 0.0) -> Tuple[PyTree, PyTree]:
    """The gradients of both players' losses at one point of the game,
    (∇_g L_G, ∇_d L_D): L_D is d_loss_fn (spec.loss's D half plus spec's
    penalties, on real and G(z)), L_G is g_loss_fn. Their negative is the
    game's gradient vector field v (Mescheder et al. 2018, eq. 3).

    With consensus = γ > 0 both gradients gain γ ∇(½‖v‖²) (consensus
    optimization, Mescheder et al. 2017, eq. 8;
    regularizers.consensus_penalty). That gradient of a gradient needs D's
    gradient as a function of G's parameters too, so here the fakes are not
    constants: in d_step they are.

    Args:
      g_params, d_params: the players' parameters (stateless networks).
      real: [B, *data_shape] data samples.
      z: [B, z_dim] latents.
      rng: key for the penalties' draws (the same key at every call gives
        the same field).
    Returns:
      (G's gradient, D's gradient), pytrees like g_params and d_params.
    """
    d_rng, g_rng = jax.random.split(rng)

    def gradients(g_p, d_p):
        fake, _ = _apply(spec.G, g_p, {}, z, None, spec)
        d_grads = jax.grad(lambda p: d_loss_fn(p, {}, real, fake, None, d_rng,
                                               spec=spec)[0])(d_p)
        g_grads = jax.grad(lambda p: g_loss_fn(p, {}, d_p, {}, z, None, g_rng,
                                               spec=spec)[0])(g_p)
        return g_grads, d_grads

    grads = gradients(g_params, d_params)
    if consensus > 0:
        reg_grads = jax.grad(
            lambda g_p, d_p: regularizers.consensus_penalty(gradients(g_p, d_p)),
            argnums=(0, 1))(g_params, d_params)
        grads = jax.tree.map(lambda g, r: g + consensus * r, grads, reg_grads)
    return grads


def game_step(params: Tuple[PyTree, PyTree], opt_states: Tuple[Any, Any],
              real: jax.Array, z: jax.Array, rng: PRNGKey, *, spec: UpdateSpec,
              simultaneous: bool, consensus: float = 0.0
              ) -> Tuple[Tuple[PyTree, PyTree], Tuple[Any, Any]]:
    """One round of gradient play through spec.g_tx and spec.d_tx.

    Simultaneous: both players step from their gradients at the same point.
    Alternating: G steps first, then spec.n_critic D steps, each from the
    gradient at the current point (the order of the Dirac-GAN reference
    code, github.com/LMescheder/GAN_stability, notebooks/diracgan; train_step
    runs D first). D's parameters are clipped after every D update when
    spec.d_weight_clip > 0 (WGAN).

    Args:
      params: (g_params, d_params).
      opt_states: (g_opt_state, d_opt_state).
      real, z, rng, consensus: as game_gradients.
    Returns:
      (new params, new opt_states), same structures.
    """
    (g_params, d_params), (g_opt, d_opt) = params, opt_states

    def update(tx, grads, opt_state, p):
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    if simultaneous:
        g_grads, d_grads = game_gradients(g_params, d_params, real, z, rng,
                                          spec=spec, consensus=consensus)
        g_params, g_opt = update(spec.g_tx, g_grads, g_opt, g_params)
        d_params, d_opt = update(spec.d_tx, d_grads, d_opt, d_params)
        return (g_params, clip_d_params(d_params, spec)), (g_opt, d_opt)
    g_grads, _ = game_gradients(g_params, d_params, real, z, rng, spec=spec,
                                consensus=consensus)
    g_params, g_opt = update(spec.g_tx, g_grads, g_opt, g_params)
    for i in range(spec.n_critic):
        _, d_grads = game_gradients(g_params, d_params, real, z,
                                    jax.random.fold_in(rng, i + 1), spec=spec,
                                    consensus=consensus)
        d_params, d_opt = update(spec.d_tx, d_grads, d_opt, d_params)
        d_params = clip_d_params(d_params, spec)
    return (g_params, d_params), (g_opt, d_opt)
