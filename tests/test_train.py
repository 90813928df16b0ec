"""The update step: structure, isolation of the two players, EMA, penalties,
determinism and the non-finite guard."""
import dataclasses

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment, config as config_lib, experiment, regularizers, train
from gan_jax.config import default_config
from helpers import override


def small_config(**overrides):
    config = default_config()
    config.batch_size = 16
    config.num_steps = 10
    config.model.g.hidden = (32, 32)
    config.model.d.hidden = (32,)
    config.model.d.maxout_pieces = 3
    return override(config, **overrides)


def setup(config):
    info, G, D, spec, state = experiment.build(config)
    x = jax.random.normal(jax.random.PRNGKey(7), (config.n_critic, config.batch_size, 2))
    return spec, state, {'x': x}


def tree_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def copy(tree):
    return jax.tree.map(np.asarray, tree)


def test_train_step_keeps_structure_and_dtypes_and_finite_metrics():
    spec, state, batch = setup(small_config())
    before = copy(state)
    new_state, metrics = train.make_train_step(spec)(state, batch)
    assert jax.tree.structure(new_state) == jax.tree.structure(before)
    for old, new in zip(jax.tree.leaves(before), jax.tree.leaves(new_state)):
        assert old.shape == new.shape and old.dtype == new.dtype
    for name in ('loss/d', 'loss/g', 'scores/real', 'scores/fake', 'grad_norm/d',
                 'grad_norm/g'):
        assert np.isfinite(metrics[name]), name
    assert int(new_state.step) == 1
    assert not tree_equal(new_state.g_params, before.g_params)
    assert not tree_equal(new_state.d_params, before.d_params)


def test_d_step_leaves_generator_and_g_step_leaves_discriminator_untouched():
    spec, state, batch = setup(small_config())
    before = copy(state)
    after_d, _ = jax.jit(lambda s: train.d_step(s, batch['x'][0], None,
                                                jax.random.PRNGKey(1), spec=spec))(state)
    assert tree_equal(after_d.g_params, before.g_params)
    assert tree_equal(after_d.g_state, before.g_state)  # G's BN stats too
    assert not tree_equal(after_d.d_params, before.d_params)
    after_g, _ = jax.jit(lambda s: train.g_step(s, None, jax.random.PRNGKey(2),
                                                spec=spec, batch_size=16))(state)
    assert tree_equal(after_g.d_params, before.d_params)
    assert tree_equal(after_g.d_state, before.d_state)
    assert not tree_equal(after_g.g_params, before.g_params)
    assert not tree_equal(after_g.g_state, before.g_state)  # BN stats moved


def test_ema_follows_its_formula_and_start_step():
    spec, state, batch = setup(small_config(**{'ema.decay': 0.9}))
    init = copy(state.g_params)
    new_state, metrics = train.make_train_step(spec)(state, batch)
    expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, init, new_state.g_params)
    for a, b in zip(jax.tree.leaves(new_state.ema_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    spec, state, batch = setup(small_config(**{'ema.decay': 0.9, 'ema.start_step': 5}))
    new_state, metrics = train.make_train_step(spec)(state, batch)
    assert float(metrics['ema/beta']) == 0.0
    assert tree_equal(new_state.ema_params, new_state.g_params)


def test_penalties_enter_the_discriminator_loss_with_their_weights():
    spec, state, batch = setup(small_config(**{'reg.r1_gamma': 10.0, 'reg.gp_weight': 2.0}))
    _, metrics = train.make_train_step(spec)(state, batch)
    assert float(metrics['reg/r1']) > 0 and float(metrics['reg/gp']) > 0
    np.testing.assert_allclose(
        metrics['loss/d'],
        metrics['loss/d_adv'] + 5.0 * metrics['reg/r1'] + 2.0 * metrics['reg/gp'],
        rtol=1e-5)
    spec, state, batch = setup(small_config())
    _, metrics = train.make_train_step(spec)(state, batch)
    assert 'reg/r1' not in metrics and metrics['loss/d'] == metrics['loss/d_adv']


def test_a_penalty_registered_once_is_configured_validated_and_applied(monkeypatch):
    # ProGAN's drift term eps * E[D(x)^2] on real samples, added only to the
    # registry: the schema, the validation and the D loss follow from it.
    drift = regularizers.Penalty(
        'drift', 'reg/drift', lambda d_fn, real: jnp.mean(jnp.square(d_fn(real))),
        'real')
    monkeypatch.setattr(regularizers, 'PENALTIES', regularizers.PENALTIES + (drift,))
    assert default_config().reg.drift == 0.0
    with pytest.raises(config_lib.ConfigError,
                       match='reg.drift must be >= 0, got -1.0'):
        config_lib.validate(small_config(**{'reg.drift': -1.0}))
    config = small_config(**{'reg.r1_gamma': 10.0, 'reg.drift': 0.25})
    config_lib.validate(config)
    spec, state, batch = setup(config)
    assert spec.penalties == (('r1_gamma', 10.0), ('drift', 0.25))
    _, metrics = train.make_train_step(spec)(state, batch)
    assert float(metrics['reg/drift']) > 0
    np.testing.assert_allclose(
        metrics['loss/d'],
        metrics['loss/d_adv'] + 5.0 * metrics['reg/r1'] + 0.25 * metrics['reg/drift'],
        rtol=1e-5)


def test_swept_penalty_weights_act_as_the_config_weights():
    spec, state, batch = setup(small_config())
    hparams = {'gp_weight': jnp.float32(2.0), 'r1_gamma': jnp.float32(10.0)}
    swept, swept_metrics = jax.jit(lambda s, b: train.train_step(
        s, b, spec=spec, hparams=hparams))(copy(state), batch)
    spec, state, batch = setup(small_config(**{'reg.r1_gamma': 10.0,
                                               'reg.gp_weight': 2.0}))
    plain, metrics = train.make_train_step(spec)(state, batch)
    for name in ('loss/d', 'reg/gp', 'reg/r1'):
        np.testing.assert_allclose(swept_metrics[name], metrics[name], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(copy(swept)), jax.tree.leaves(copy(plain))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError,
                       match="unknown hparams 'lr_scale'; valid: lr_d_scale"):
        train.train_step(state, batch, spec=spec, hparams={'lr_scale': 2.0})


def test_sweepable_table_and_member_values():
    assert {k: s.hparam for k, s in train.SWEEPABLE.items()} == {
        'opt.d.lr': 'lr_d_scale', 'opt.g.lr': 'lr_g_scale',
        'reg.gp_weight': 'gp_weight', 'reg.r1_gamma': 'r1_gamma',
        'reg.r2_gamma': 'r2_gamma'}
    assert all(s.doc for s in train.SWEEPABLE.values())  # launchers' help text
    config = small_config(**{'opt.d.lr': 4e-4, 'reg.gp_weight': 1.0})
    ratios = train.member_hparam_values(config, 'opt.d.lr', [1e-4, 8e-4])
    assert ratios.dtype == np.float32
    np.testing.assert_array_equal(ratios, np.float32([1e-4, 8e-4]) / np.float32(4e-4))
    weights = train.member_hparam_values(config, 'reg.gp_weight', [0.5, 10.0])
    np.testing.assert_array_equal(weights, np.float32([0.5, 10.0]))
    with pytest.raises(ValueError, match="cannot sweep 'n_critic'; sweepable keys: "
                                         "opt.d.lr, opt.g.lr, reg.gp_weight"):
        train.member_hparam_values(config, 'n_critic', [1, 2])


def test_n_critic_updates_d_several_times_per_step():
    spec, state, batch = setup(small_config(n_critic=3))
    new_state, _ = train.make_train_step(spec)(state, batch)
    d_count = jax.tree.leaves(new_state.d_opt_state)[0]
    g_count = jax.tree.leaves(new_state.g_opt_state)[0]
    assert int(d_count) == 3 and int(g_count) == 1


def test_same_seed_gives_bit_identical_parameters():
    def run():
        spec, state, batch = setup(small_config())
        step = train.make_train_step(spec)
        for _ in range(3):
            state, _ = step(state, batch)
        return copy(state)
    a, b = run(), run()
    assert tree_equal(a, b)
    spec, state, batch = setup(small_config(seed=1))
    state, _ = train.make_train_step(spec)(state, batch)
    assert not tree_equal(a.g_params, copy(state.g_params))


def test_multi_step_equals_single_steps_on_the_same_batches():
    spec, state, _ = setup(small_config())
    batches = tuple({'x': jax.random.normal(jax.random.PRNGKey(k), (1, 16, 2))}
                    for k in range(3))
    single = train.make_train_step(spec)
    reference = copy(state)
    for batch in batches:
        reference, last_metrics = single(reference, batch)
    scanned, metrics = train.make_multi_step(spec, 3)(copy(state), batches)
    assert int(scanned.step) == 3
    # The same operations; XLA may fuse them differently inside the loop.
    for a, b in zip(jax.tree.leaves(copy(scanned)), jax.tree.leaves(copy(reference))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(metrics) == set(last_metrics)
    for name in last_metrics:
        np.testing.assert_allclose(metrics[name], last_metrics[name], rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(ValueError, match='expected 3 batches'):
        train.make_multi_step(spec, 3)(copy(state), batches[:2])


@pytest.mark.parametrize('policy', ['stop', 'skip'])
def test_nonfinite_update_is_recorded_and_skipped_on_request(policy):
    spec, state, batch = setup(small_config(nan_policy=policy))
    before = copy(state)
    bad = {'x': batch['x'].at[0, 0, 0].set(jnp.nan)}
    new_state, metrics = train.make_train_step(spec)(state, bad)
    assert int(new_state.step) == 1
    assert int(new_state.stats['nonfinite_steps']) == 1
    assert int(new_state.stats['first_nonfinite_step']) == 1
    assert int(new_state.stats['first_nonfinite_mask']) & 1  # loss/d
    if policy == 'skip':
        assert tree_equal(new_state.d_params, before.d_params)
        assert tree_equal(new_state.g_params, before.g_params)
        good, _ = train.make_train_step(spec)(new_state, batch)
        assert int(good.stats['nonfinite_steps']) == 1  # recovered
        assert np.all(np.isfinite(jax.tree.leaves(copy(good.d_params))[0]))
    else:
        assert not np.all(np.isfinite(jax.tree.leaves(copy(new_state.d_params))[0]))


@pytest.mark.slow
def test_unrolled_generator_loss_looks_ahead_through_d_updates():
    spec, state, batch = setup(small_config(unroll_steps=2))
    real = batch['x'][0]
    rng = jax.random.PRNGKey(3)
    unrolled = train.unrolled_d_params(state.g_params, state.g_state, state.d_params,
                                       state.d_state, state.d_opt_state, real, None,
                                       rng, spec=spec)
    # By hand: two ordinary D updates (loss, optimizer) with the same draws.
    params, opt_state = state.d_params, state.d_opt_state
    for k in range(2):
        z_rng, reg_rng = jax.random.split(jax.random.fold_in(rng, k))
        z = train.sample_latents(z_rng, real.shape[0], spec.z_dim)
        fake = spec.G.apply({'params': state.g_params, **state.g_state}, z, None,
                            train=True, mutable=['batch_stats'])[0]
        grads = jax.grad(lambda p: train.d_loss_fn(p, state.d_state, real, fake, None,
                                                   reg_rng, spec=spec)[0])(params)
        updates, opt_state = spec.d_tx.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # G's gradient flows through the look-ahead: it differs from the gradient
    # against the same unrolled D held fixed.
    z = train.sample_latents(jax.random.PRNGKey(4), 16, spec.z_dim)

    def through(g):
        return train.g_loss_fn(g, state.g_state, state.d_params, state.d_state, z, None,
                               rng, spec=spec, d_opt_state=state.d_opt_state,
                               real=real)[0]

    plain_spec = dataclasses.replace(spec, unroll_steps=0)
    _, unroll_rng = jax.random.split(rng)
    fixed_d = jax.lax.stop_gradient(train.unrolled_d_params(
        state.g_params, state.g_state, state.d_params, state.d_state,
        state.d_opt_state, real, None, unroll_rng, spec=spec))

    def held(g):
        return train.g_loss_fn(g, state.g_state, fixed_d, state.d_state, z, None,
                               jax.random.split(rng)[0], spec=plain_spec)[0]

    assert float(through(state.g_params)) == pytest.approx(float(held(state.g_params)),
                                                            rel=1e-6)
    g_through = jax.grad(through)(state.g_params)
    g_held = jax.grad(held)(state.g_params)
    assert not all(np.allclose(a, b, rtol=1e-3) for a, b in
                   zip(jax.tree.leaves(g_through), jax.tree.leaves(g_held)))
    # And the whole step runs.
    new_state, metrics = train.make_train_step(spec)(state, batch)
    assert np.isfinite(float(metrics['loss/g'])) and int(new_state.step) == 1


def _operand_dtypes(jaxpr, counts=None):
    """{(primitive, dtype of the first operand): count} of the matmuls and
    convolutions in a jaxpr, recursively."""
    counts = {} if counts is None else counts
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ('dot_general', 'conv_general_dilated'):
            key = (eqn.primitive.name, str(eqn.invars[0].aval.dtype))
            counts[key] = counts.get(key, 0) + 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            _operand_dtypes(sub, counts)
    return counts


BF16_MODELS = {
    'mlp': {},
    'dcgan': {'dataset': 'digits', 'model.name': 'dcgan', 'model.z_dim': 8,
              'model.g': {'base_channels': 4},
              'model.d': {'base_channels': 4, 'norm': 'batch'}},
    'resnet': {'dataset': 'cifar10', 'model.name': 'resnet', 'model.z_dim': 8,
               'model.g': {'channels': (8, 8, 8)},
               'model.d': {'channels': (8, 8, 8, 8)}},
}


# The ResNet case compiles SNGAN's networks twice: in the slow tier.
@pytest.mark.parametrize('model', [pytest.param(m, marks=pytest.mark.slow)
                                   if m == 'resnet' else m for m in BF16_MODELS])
def test_bfloat16_compute_keeps_float32_state_and_matches_float32(model):
    overrides = BF16_MODELS[model]
    results = {}
    for dtype in ('float32', 'bfloat16'):
        config = small_config(**overrides)
        config.model.compute_dtype = dtype
        info, _, _, spec, state = experiment.build(config)
        batch = {'x': jax.random.uniform(jax.random.PRNGKey(7), (
            config.n_critic, config.batch_size) + tuple(info.shape), minval=-1.0)}
        before = copy(state)
        step = train.make_train_step(spec)
        jaxpr = jax.make_jaxpr(step)(state, batch).jaxpr
        new_state, metrics = step(state, batch)
        for old, new in zip(jax.tree.leaves(before), jax.tree.leaves(new_state)):
            assert old.dtype == new.dtype  # parameters, moments, statistics
        results[dtype] = (_operand_dtypes(jaxpr), metrics)
    assert not any(dtype == 'bfloat16' for _, dtype in results['float32'][0])
    ran_bf16 = results['bfloat16'][0]
    assert ran_bf16.get(('dot_general', 'bfloat16'), 0) > 0
    # Every convolution in bfloat16 (matmuls may be float32: spectral norm's
    # power iteration multiplies its float32 vectors).
    assert ran_bf16.get(('conv_general_dilated', 'float32'), 0) == 0
    for name in ('loss/d', 'loss/g'):
        f32, bf16 = results['float32'][1][name], results['bfloat16'][1][name]
        assert np.isfinite(bf16)
        assert abs(float(bf16) - float(f32)) <= 0.05 * abs(float(f32)) + 1e-3, name


def test_penalties_under_bfloat16_compute_are_taken_in_float32():
    """The R1/R2/GP input gradients come from a float32 D even when the step
    computes in bfloat16: equal to the float32 run's penalties, while the
    adversarial term shows bfloat16 rounding."""
    overrides = dict(BF16_MODELS['dcgan'], **{'reg.r1_gamma': 1.0, 'reg.r2_gamma': 1.0,
                                              'reg.gp_weight': 1.0})
    out = {}
    for dtype in ('float32', 'bfloat16'):
        config = small_config(**overrides)
        config.model.compute_dtype = dtype
        info, _, _, spec, state = experiment.build(config)
        real, fake = jnp.split(jax.random.uniform(
            jax.random.PRNGKey(3), (2 * config.batch_size,) + tuple(info.shape),
            minval=-1.0), 2)
        _, aux = jax.jit(lambda p, s: train.d_loss_fn(
            p, s, real, fake, None, jax.random.PRNGKey(5), spec=spec))(
                state.d_params, state.d_state)
        out[dtype] = aux['metrics']
    for name in ('reg/r1', 'reg/r2', 'reg/gp'):
        np.testing.assert_allclose(out['bfloat16'][name], out['float32'][name],
                                   rtol=1e-6, err_msg=name)
    assert out['bfloat16']['loss/d_adv'] != out['float32']['loss/d_adv']


def test_lazy_r1_update_is_the_interval_weighted_r1_gradient_at_its_steps():
    """Lazy R1 (StyleGAN2): the D penalty update every k steps descends
    k * gamma/2 * grad R1, so over k steps its expected gradient is that of
    R1 in every step; between those steps D's loss has no penalty."""
    k, gamma = 4, 10.0
    eager = small_config(**{'reg.r1_gamma': gamma})
    lazy = small_config(**{'reg.r1_gamma': gamma, 'reg.d_reg_interval': k})
    spec_e, state, batch = setup(eager)
    spec_l, lazy_state, _ = setup(lazy)
    assert lazy_state.stats['reg/r1'] == 0  # carried between lazy updates
    real = batch['x'][0]
    # The main D loss of the lazy spec has no penalty term.
    _, aux = train.d_loss_fn(state.d_params, state.d_state, real, real, None,
                             jax.random.PRNGKey(0), spec=spec_l)
    assert 'reg/r1' not in aux['metrics']
    assert aux['metrics']['loss/d'] == aux['metrics']['loss/d_adv']

    def d_fn(params):  # D in training mode, its statistics' updates dropped
        return lambda x: spec_e.D.apply({'params': params, **state.d_state}, x, None,
                                        train=True, mutable=list(state.d_state))[0]

    expected = jax.grad(lambda p: regularizers.r1_penalty(d_fn(p), real))(
        state.d_params)
    # d_reg_step's update is Adam's on k * gamma/2 * grad R1: compare the
    # gradient it feeds the optimizer through an identity optimizer.
    import optax
    identity = dataclasses.replace(spec_l, d_tx=optax.sgd(1.0))
    new, values = train.d_reg_step(state, real, None, jax.random.PRNGKey(1),
                                   spec=identity)
    step = jax.tree.map(lambda a, b: a - b, state.d_params, new.d_params)
    for got, want in zip(jax.tree.leaves(step), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, k * gamma / 2 * want, rtol=2e-4, atol=1e-7)
    assert float(values['reg/r1']) > 0


def test_lazy_d_regularization_runs_every_interval_and_adam_is_corrected():
    k = 3
    config = small_config(**{'reg.r1_gamma': 1.0, 'reg.d_reg_interval': k})
    spec, state, batch = setup(config)
    c = k / (k + 1)
    # Adam's rate and betas scaled by c = k / (k + 1), as StyleGAN2.
    reference = train.make_optimizer(config.opt.d)
    corrected = train.make_optimizer(config.opt.d, reg_interval=k)
    grads = jax.tree.map(jnp.ones_like, state.d_params)
    u_ref, _ = reference.update(grads, reference.init(state.d_params))
    u_cor, _ = corrected.update(grads, corrected.init(state.d_params))
    # First Adam step with unit gradients: -lr (bias-corrected), whatever
    # the betas (float32 rounding of b ** c: 1.3e-5 relative).
    for a, b in zip(jax.tree.leaves(u_ref), jax.tree.leaves(u_cor)):
        np.testing.assert_allclose(b, c * a, rtol=1e-4)
    step = train.make_train_step(spec)
    r1_values = []
    for i in range(2 * k):
        state, metrics = step(state, batch)
        r1_values.append(float(metrics['reg/r1']))
    # Computed at steps 0 and k, carried in between.
    assert r1_values[0] > 0 and r1_values[1:k] == [r1_values[0]] * (k - 1)
    assert r1_values[k] != r1_values[0] and r1_values[k + 1:] == [r1_values[k]] * (k - 1)


def test_ema_half_life_and_rampup_follow_stylegan2():
    config = small_config(**{'ema.half_life_kimg': 10.0, 'ema.rampup': 0.05})
    spec, _, _ = setup(config)
    batch = 16
    for step in (0, 1, 100, 100_000):
        seen = step * batch
        half_life = min(10_000.0, seen * 0.05)
        want = 0.5 ** (batch / max(half_life, 1e-8))
        np.testing.assert_allclose(train.ema_beta(jnp.int32(step), batch, spec), want,
                                   rtol=1e-6)
    assert float(train.ema_beta(jnp.int32(0), batch, spec)) == 0.0


def test_path_length_penalty_equals_its_closed_form_on_a_linear_synthesis():
    """synthesis(ws) = mean over layers of ws @ A (reshaped to an image): J^T y
    is (A y / L) per layer, so every length is |A y| / sqrt(L)."""
    num_ws, w_dim, h, w = 3, 5, 2, 2
    A = jax.random.normal(jax.random.PRNGKey(0), (w_dim, h * w))

    def synthesis(ws):
        return (jnp.mean(ws, axis=1) @ A).reshape(ws.shape[0], h, w, 1)

    ws = jax.random.normal(jax.random.PRNGKey(1), (4, num_ws, w_dim))
    rng = jax.random.PRNGKey(2)
    penalty, new_mean = regularizers.path_length_penalty(
        synthesis, ws, rng, jnp.float32(0.5), decay=0.01)
    y = jax.random.normal(rng, (4, h, w, 1)) / jnp.sqrt(h * w)
    jt_y = (y.reshape(4, -1) @ A.T) / num_ws                 # per layer [4, w_dim]
    lengths = jnp.sqrt(jnp.sum(jt_y ** 2, axis=1))
    mean = 0.5 + 0.01 * (jnp.mean(lengths) - 0.5)
    np.testing.assert_allclose(new_mean, mean, rtol=1e-6)
    np.testing.assert_allclose(penalty, jnp.mean((lengths - mean) ** 2), rtol=1e-5)


def test_static_reg_phases_give_the_update_of_the_device_side_decision():
    """The loop compiles the lazy phases in or out from its host step counter
    (phases=reg_phases(spec, step), positional); that is the lax.cond update, step by
    step, for lazy R1 and path length (the StyleGAN2 smoke config)."""
    from experiments.configs import digits_stylegan2
    config = digits_stylegan2.get_config('smoke')
    config.batch_size = 4
    config.reg.d_reg_interval, config.reg.g_reg_interval = 3, 2
    info, _, _, spec, state = experiment.build(config)
    assert [train.reg_phases(spec, s) for s in range(4)] == [
        (True, True), (False, False), (False, True), (True, False)]
    step = train.make_train_step(spec)
    rng = np.random.default_rng(0)
    static, dynamic = state, copy(state)
    for s in range(4):
        x = rng.uniform(-1, 1, (1, config.batch_size) + info.shape).astype(np.float32)
        static, m_static = step(static, {'x': x}, train.reg_phases(spec, s))
        dynamic, m_dynamic = step(dynamic, {'x': x})
        for a, b in zip(jax.tree.leaves(static), jax.tree.leaves(dynamic)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        for name in ('reg/r1', 'reg/pl', 'pl_mean', 'loss/d', 'loss/g'):
            np.testing.assert_allclose(m_static[name], m_dynamic[name], rtol=2e-5)
    # Static phases leave no conditional in the program (XLA:CPU runs
    # convolutions inside one several times slower; train._every).
    def primitives(phases):
        jaxpr = jax.make_jaxpr(lambda st, b: train.train_step(
            st, b, spec=spec, phases=phases))(static, {'x': x})
        return {str(e.primitive) for e in jaxpr.jaxpr.eqns}
    assert 'cond' in primitives(None)
    assert all('cond' not in primitives(p) for p in [(True, True), (False, False)])


def test_diff_augment_reaches_the_adversarial_term_and_the_penalties():
    """With augment.policy on, D's loss is the plain loss of the augmented
    real and fake batch (one diff_augment call on both, with the key the
    step splits off), the adversarial term and R1 alike."""
    overrides = dict(BF16_MODELS['dcgan'], **{'reg.r1_gamma': 1.0})
    config = small_config(**overrides, **{'augment.policy': 'translation,cutout'})
    info, _, _, spec, state = experiment.build(config)
    plain = dataclasses.replace(spec, augment_policy='')
    real, fake = jnp.split(jax.random.uniform(
        jax.random.PRNGKey(3), (2 * config.batch_size,) + tuple(info.shape),
        minval=-1.0), 2)
    rng = jax.random.PRNGKey(5)
    aug_rng, rest = jax.random.split(rng)
    seen_real, seen_fake = jnp.split(augment.diff_augment(
        aug_rng, jnp.concatenate([real, fake]), spec.augment_policy), 2)
    loss, aux = train.d_loss_fn(state.d_params, state.d_state, real, fake, None, rng,
                                spec=spec)
    want, want_aux = train.d_loss_fn(state.d_params, state.d_state, seen_real,
                                     seen_fake, None, rest, spec=plain)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    for name in ('loss/d_adv', 'reg/r1'):
        np.testing.assert_allclose(aux['metrics'][name], want_aux['metrics'][name],
                                   rtol=1e-6, err_msg=name)
    unaugmented, _ = train.d_loss_fn(state.d_params, state.d_state, real, fake, None,
                                     rest, spec=plain)
    assert abs(float(unaugmented) - float(loss)) > 1e-5
