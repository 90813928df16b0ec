"""Instance noise (reg.instance_noise): D's adversarial terms see x + σ N(0, I)."""
import jax
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import experiment, train
from gan_jax.config import default_config
from helpers import override


def small_config(**overrides):
    config = default_config()
    config.batch_size = 16
    config.model.g.hidden = (32, 32)
    config.model.d.hidden = (32,)
    config.model.d.maxout_pieces = 3
    return override(config, **overrides)


def setup(sigma):
    config = small_config(**{'reg.instance_noise': sigma})
    _, _, _, spec, state = experiment.build(config)
    real = jax.random.normal(jax.random.PRNGKey(1), (config.batch_size, 2))
    fake = jax.random.normal(jax.random.PRNGKey(2), (config.batch_size, 2)) + 1.0
    return config, spec, state, real, fake


def test_d_loss_sees_noised_real_and_fake():
    sigma, rng = 0.3, jax.random.PRNGKey(5)
    _, noisy, state, real, fake = setup(sigma)
    _, plain, _, _, _ = setup(0.0)
    loss, aux = train.d_loss_fn(state.d_params, state.d_state, real, fake, None, rng,
                                spec=noisy)
    noise = [jax.random.normal(jax.random.fold_in(rng, k), real.shape) for k in (3, 4)]
    noised_real, noised_fake = real + sigma * noise[0], fake + sigma * noise[1]
    expected, _ = train.d_loss_fn(state.d_params, state.d_state, noised_real,
                                  noised_fake, None, rng, spec=plain)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    unnoised, _ = train.d_loss_fn(state.d_params, state.d_state, real, fake, None, rng,
                                  spec=plain)
    assert abs(float(unnoised) - float(loss)) > 1e-4


def test_g_loss_sees_noised_fakes_and_zero_noise_is_the_plain_step():
    _, noisy, state, _, _ = setup(0.5)
    _, plain, _, _, _ = setup(0.0)
    assert plain.instance_noise == 0.0 and noisy.instance_noise == 0.5
    z = jax.random.normal(jax.random.PRNGKey(3), (16, 2))
    args = (state.g_params, state.g_state, state.d_params, state.d_state, z, None,
            jax.random.PRNGKey(4))
    assert float(train.g_loss_fn(*args, spec=noisy)[0]) != float(
        train.g_loss_fn(*args, spec=plain)[0])


def test_negative_instance_noise_is_refused():
    config = small_config(**{'reg.instance_noise': -0.1})
    with pytest.raises(config_lib.ConfigError, match='reg.instance_noise must be >= 0'):
        config_lib.validate(config)
