"""WGAN with weight clipping (Arjovsky et al. 2017): reg.weight_clip, the
RMSProp optimizer and the toy_*_wgan_clip configs."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import toy_grid_wgan_clip, toy_ring_wgan_clip
from gan_jax import config as config_lib
from gan_jax import experiment, train
from helpers import override


def small_clip_config(**overrides):
    config = toy_ring_wgan_clip.get_config('smoke')
    config.model.g.hidden = (32, 32)
    config.model.d.hidden = (32, 32)
    return override(config, **overrides)


def run_steps(config, steps):
    _, _, _, spec, state = experiment.build(config)
    step_fn = train.make_train_step(spec)
    init_d = jax.tree.map(np.asarray, state.d_params)
    for i in range(steps):
        x = jax.random.normal(jax.random.PRNGKey(i),
                              (config.n_critic, config.batch_size, 2))
        state, metrics = step_fn(state, {'x': x})
    return init_d, state, metrics


def test_weight_clipping_keeps_every_d_parameter_in_the_box():
    c = 0.01
    init_d, state, metrics = run_steps(small_clip_config(), 3)
    # LeCun-normal initial weights lie far outside [-c, c]: the clip acts.
    assert max(float(np.abs(p).max()) for p in jax.tree.leaves(init_d)) > 10 * c
    leaves = jax.tree.leaves(state.d_params)
    assert max(float(jnp.abs(p).max()) for p in leaves) <= c
    # Many weights sit on the box's faces after three steps of RMSProp.
    on_face = np.mean(np.concatenate([np.abs(np.asarray(p)).ravel() for p in leaves])
                      == np.float32(c))
    assert on_face > 0.3
    assert np.isfinite(float(metrics['loss/d']))
    # G is not clipped.
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.g_params)) > c


def test_no_clipping_by_default_and_clip_helper_is_exact():
    _, state, _ = run_steps(small_clip_config(**{'reg.weight_clip': 0.0}), 1)
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.d_params)) > 0.1
    spec = experiment.build(small_clip_config())[3]
    params = {'w': jnp.array([-1.0, -0.005, 0.0, 0.02]), 'b': jnp.array([0.5])}
    clipped = train.clip_d_params(params, spec)
    np.testing.assert_array_equal(clipped['w'], np.float32([-0.01, -0.005, 0.0, 0.01]))
    np.testing.assert_array_equal(clipped['b'], np.float32([0.01]))


def test_rmsprop_matches_pytorchs_update_rule():
    opt = ml_collections.ConfigDict(dict(name='rmsprop', lr=5e-5, b1=0.0, b2=0.99,
                                         schedule='constant', decay_steps=0))
    tx = train.make_optimizer(opt)
    p = jnp.array([1.0, -2.0, 3.0])
    state = tx.init(p)
    v = np.zeros(3)
    expected = np.asarray(p, np.float64)
    for g in ([0.5, -1.0, 2.0], [0.1, 0.3, -4.0]):
        g = np.asarray(g)
        updates, state = tx.update(jnp.asarray(g, jnp.float32), state, p)
        p = p + updates
        # torch.optim.RMSprop: v = α v + (1 - α) g², p -= lr g / (√v + eps).
        v = 0.99 * v + 0.01 * g ** 2
        expected = expected - 5e-5 * g / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    with pytest.raises(ValueError,
                       match="unknown optimizer 'sgd'; valid: adam, rmsprop"):
        train.make_optimizer(ml_collections.ConfigDict(dict(opt.to_dict(), name='sgd')))


@pytest.mark.parametrize('module', [toy_ring_wgan_clip, toy_grid_wgan_clip])
def test_wgan_clip_configs_have_the_papers_settings(module):
    config = module.get_config()
    config_lib.validate(config)
    assert (config.loss.name, config.reg.weight_clip, config.n_critic) == (
        'wasserstein', 0.01, 5)
    assert config.model.d.maxout_pieces == 1  # maxout pieces tie once clipped
    for net in ('g', 'd'):
        assert (config.opt[net].name, config.opt[net].lr) == ('rmsprop', 5e-5)
    bad = module.get_config()
    bad.reg.weight_clip = -0.01
    with pytest.raises(config_lib.ConfigError, match='reg.weight_clip must be >= 0'):
        config_lib.validate(bad)


def test_d_update_is_d_step_given_its_fakes():
    config = small_clip_config()
    _, _, _, spec, state = experiment.build(config)
    real = jax.random.normal(jax.random.PRNGKey(3), (config.batch_size, 2))
    rng = jax.random.PRNGKey(4)
    stepped, m_step = train.d_step(state, real, None, rng, spec=spec)
    # d_step's fakes, drawn as it draws them.
    z_rng, reg_rng = jax.random.split(rng)
    z = train.sample_latents(z_rng, config.batch_size, spec.z_dim)
    fake, _ = spec.G.apply({'params': state.g_params, **state.g_state}, z, None,
                           train=True, mutable=list(state.g_state))
    updated, m_update = train.d_update(state, real, fake, None, reg_rng, spec=spec)
    for a, b in zip(jax.tree.leaves(stepped.d_params),
                    jax.tree.leaves(updated.d_params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(m_step['loss/d'], m_update['loss/d'], rtol=1e-6)
