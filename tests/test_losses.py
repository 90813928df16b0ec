"""Closed-form values of every adversarial loss on hand-written logits."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

REAL = jnp.array([2.0, -1.0, 0.0])
FAKE = jnp.array([-3.0, 0.5, 0.0])


def softplus(x):
    return np.log1p(np.exp(x))


def test_logistic_discriminator_loss():
    expected = (np.mean([softplus(-2.0), softplus(1.0), softplus(0.0)])
                + np.mean([softplus(-3.0), softplus(0.5), softplus(0.0)]))
    got = losses.get('non_saturating').d_loss(real_logits=REAL, fake_logits=FAKE)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    zero = jnp.zeros(4)
    np.testing.assert_allclose(
        losses.get('minimax').d_loss(real_logits=zero, fake_logits=zero),
        2 * math.log(2), rtol=1e-6)


def test_non_saturating_and_minimax_generator_losses():
    ns = losses.get('non_saturating').g_loss(fake_logits=FAKE)
    np.testing.assert_allclose(
        ns, np.mean([softplus(3.0), softplus(-0.5), softplus(0.0)]), rtol=1e-6)
    mm = losses.get('minimax').g_loss(fake_logits=FAKE)
    # log(1 - sigmoid(f)) = -softplus(f)
    expected = np.mean(np.log(1 - 1 / (1 + np.exp(-np.array([-3.0, 0.5, 0.0])))))
    np.testing.assert_allclose(mm, expected, rtol=1e-6)


def test_wasserstein_losses():
    w = losses.get('wasserstein')
    np.testing.assert_allclose(w.d_loss(real_logits=REAL, fake_logits=FAKE),
                               np.mean([-3.0, 0.5, 0.0]) - np.mean([2.0, -1.0, 0.0]),
                               rtol=1e-6)
    np.testing.assert_allclose(w.g_loss(fake_logits=FAKE), 2.5 / 3, rtol=1e-6)


def test_hinge_losses():
    h = losses.get('hinge')
    # relu(1 - [2, -1, 0]) = [0, 2, 1]; relu(1 + [-3, .5, 0]) = [0, 1.5, 1]
    np.testing.assert_allclose(h.d_loss(real_logits=REAL, fake_logits=FAKE),
                               3 / 3 + 2.5 / 3, rtol=1e-6)
    np.testing.assert_allclose(h.g_loss(fake_logits=FAKE), 2.5 / 3, rtol=1e-6)


def test_least_squares_losses():
    ls = losses.get('least_squares')
    d = 0.5 * np.mean([1.0, 4.0, 1.0]) + 0.5 * np.mean([9.0, 0.25, 0.0])
    np.testing.assert_allclose(ls.d_loss(real_logits=REAL, fake_logits=FAKE), d,
                               rtol=1e-6)
    np.testing.assert_allclose(ls.g_loss(fake_logits=FAKE),
                               0.5 * np.mean([16.0, 0.25, 1.0]), rtol=1e-6)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown loss 'bce'; valid losses: hinge, "
                                         r"least_squares, minimax"):
        losses.get('bce')


def test_a_loss_registered_once_is_accepted_by_the_config_and_the_update(monkeypatch):
    from gan_jax import config as config_lib, models, train
    # A pair registered only for this test: one LOSSES entry is all a new
    # loss needs.
    def d_rs(*, real_logits, fake_logits):
        return jnp.mean(jnp.logaddexp(0.0, fake_logits - real_logits))

    def g_rs(*, fake_logits):
        return -jnp.mean(fake_logits)

    monkeypatch.setitem(losses.LOSSES, 'rs_test', losses.Loss(d_rs, g_rs))
    assert 'rs_test' in losses.names()
    config = config_lib.default_config()
    config.loss.name = 'rs_test'
    config_lib.validate(config)
    G, D = models.build(config, (2,))
    assert train.make_spec(config, G, D).loss == losses.Loss(d_rs, g_rs)
