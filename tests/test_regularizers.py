"""Gradient penalties against hand-computed values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import regularizers

KEY = jax.random.PRNGKey(0)
REAL = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
FAKE = jax.random.normal(jax.random.PRNGKey(2), (16, 3)) + 2.0


def linear_d(w):
    return lambda x: x.reshape(x.shape[0], -1) @ w


def test_gradient_penalty_zero_for_unit_gradient():
    w = jnp.array([0.6, 0.0, 0.8])  # ‖w‖ = 1
    np.testing.assert_allclose(
        regularizers.gradient_penalty(linear_d(w), REAL, FAKE, KEY), 0.0, atol=1e-6)
    # ‖x‖ has a unit-norm gradient everywhere away from 0.
    norm_d = lambda x: jnp.linalg.norm(x, axis=-1)  # noqa: E731
    np.testing.assert_allclose(
        regularizers.gradient_penalty(norm_d, REAL, FAKE, KEY), 0.0, atol=1e-5)


def test_gradient_penalty_linear_discriminator():
    w = jnp.array([1.0, 2.0, 2.0])  # ‖w‖ = 3: penalty (3 - 1)² = 4
    np.testing.assert_allclose(
        regularizers.gradient_penalty(linear_d(w), REAL, FAKE, KEY), 4.0, rtol=1e-5)


def test_gradient_penalty_quadratic_discriminator_matches_hand_computation():
    # D(x) = ½‖x‖², ∇D(x̂) = x̂: penalty = mean((‖x̂‖ - 1)²) at the same x̂.
    d = lambda x: 0.5 * jnp.sum(x ** 2, axis=-1)  # noqa: E731
    eps = jax.random.uniform(KEY, (16, 1))
    mixed = eps * REAL + (1 - eps) * FAKE
    expected = np.mean((np.linalg.norm(mixed, axis=-1) - 1.0) ** 2)
    np.testing.assert_allclose(regularizers.gradient_penalty(d, REAL, FAKE, KEY),
                               expected, rtol=1e-5)


def test_r1_zero_for_constant_discriminator():
    const = lambda x: jnp.zeros(x.shape[0]) + 3.0  # noqa: E731
    assert float(regularizers.r1_penalty(const, REAL)) == 0.0
    assert float(regularizers.r2_penalty(const, FAKE)) == 0.0


def test_r1_linear_discriminator_is_squared_weight_norm():
    w = jnp.array([1.0, 2.0, 2.0])
    np.testing.assert_allclose(regularizers.r1_penalty(linear_d(w), REAL), 9.0,
                               rtol=1e-6)
    # Per-sample gradients on images: D(x) = sum(x²) has ‖∇‖² = 4‖x‖².
    images = jax.random.normal(KEY, (4, 5, 5, 3))
    d = lambda x: jnp.sum(x ** 2, axis=(1, 2, 3))  # noqa: E731
    np.testing.assert_allclose(
        regularizers.r1_penalty(d, images),
        np.mean(4 * np.sum(np.asarray(images) ** 2, axis=(1, 2, 3))), rtol=1e-5)


def test_registry_declares_each_penalty_once_in_the_order_of_the_sum():
    keys = [p.key for p in regularizers.PENALTIES]
    assert keys[:3] == ['gp_weight', 'r1_gamma', 'r2_gamma']
    assert len(set(keys)) == len(keys)
    assert len({p.metric for p in regularizers.PENALTIES}) == len(keys)
    gp, r1, r2 = (regularizers.get(k) for k in keys[:3])
    assert (gp.metric, r1.metric, r2.metric) == ('reg/gp', 'reg/r1', 'reg/r2')
    # The weight conventions: λ·GP, γ/2·R1, γ/2·R2.
    assert (gp.coefficient(10.0), r1.coefficient(10.0), r2.coefficient(3.0)) == (
        10.0, 5.0, 1.5)
    with pytest.raises(ValueError, match="unknown penalty 'dragan'; valid penalties: "
                                         "gp_weight, r1_gamma, r2_gamma, dragan_weight"):
        regularizers.get('dragan')


def test_registry_entries_call_their_penalty_on_the_declared_samples():
    w = jnp.array([1.0, 2.0, 2.0])
    d = linear_d(w)
    gp, r1, r2 = (regularizers.get(k) for k in ('gp_weight', 'r1_gamma', 'r2_gamma'))
    assert float(gp(d, REAL, FAKE, KEY)) == float(
        regularizers.gradient_penalty(d, REAL, FAKE, KEY))
    quad = lambda x: 0.5 * jnp.sum(x ** 2, axis=-1)  # noqa: E731  ∇ = x
    r1_value = float(regularizers.r1_penalty(quad, REAL))
    assert float(r1(quad, REAL, FAKE, KEY)) == r1_value
    assert float(r2(quad, REAL, FAKE, KEY)) == float(
        regularizers.r2_penalty(quad, FAKE))
    assert float(r1(quad, REAL, FAKE, KEY)) != float(r2(quad, REAL, FAKE, KEY))
    assert gp.error(0.0) is None and gp.error(1.5) is None
    assert gp.error(-1.0) == 'reg.gp_weight must be >= 0, got -1.0'
    with pytest.raises(ValueError,
                       match='inputs must be one of real, fake, both, real_rng'):
        regularizers.Penalty('x', 'reg/x', regularizers.r1_penalty, 'interpolates')


def test_dragan_zero_for_unit_gradient_and_known_for_a_linear_discriminator():
    unit = linear_d(jnp.array([0.6, 0.0, 0.8]))
    np.testing.assert_allclose(regularizers.dragan_penalty(unit, REAL, KEY), 0.0,
                               atol=1e-6)
    three = linear_d(jnp.array([1.0, 2.0, 2.0]))  # ‖∇D‖ = 3 everywhere: (3 - 1)²
    np.testing.assert_allclose(regularizers.dragan_penalty(three, REAL, KEY), 4.0,
                               rtol=1e-5)


def test_dragan_evaluates_the_gradient_at_the_reference_perturbation():
    # D(x) = ½‖x‖² has ∇D(x̂) = x̂: the penalty is mean((‖x̂‖ - 1)²) at
    # x̂ = x + α · 0.5 std(x) U[0, 1], with the draws of the penalty's key.
    d = lambda x: 0.5 * jnp.sum(x ** 2, axis=-1)  # noqa: E731
    delta_rng, alpha_rng = jax.random.split(KEY)
    u = np.asarray(jax.random.uniform(delta_rng, REAL.shape))
    alpha = np.asarray(jax.random.uniform(alpha_rng, (REAL.shape[0], 1)))
    x = np.asarray(REAL, np.float64)
    perturbed = x + alpha * 0.5 * x.std() * u
    expected = np.mean((np.linalg.norm(perturbed, axis=-1) - 1.0) ** 2)
    np.testing.assert_allclose(regularizers.dragan_penalty(d, REAL, KEY), expected,
                               rtol=1e-5)
    # Every perturbation lies within 0.5 std(x) of its data point, per value.
    assert np.all((perturbed - x >= 0) & (perturbed - x <= 0.5 * x.std()))


def test_dragan_registry_entry_draws_from_its_own_key():
    dragan = regularizers.get('dragan_weight')
    assert (dragan.metric, dragan.inputs, dragan.coefficient(10.0)) == (
        'reg/dragan', 'real_rng', 10.0)
    d = lambda x: 0.5 * jnp.sum(x ** 2, axis=-1)  # noqa: E731
    assert float(dragan(d, REAL, FAKE, KEY)) == float(
        regularizers.dragan_penalty(d, REAL, jax.random.fold_in(KEY, 1)))


def test_consensus_penalty_is_half_the_squared_norm_of_the_field():
    field = ({'a': jnp.array([3.0]), 'b': jnp.zeros((2, 2))}, [jnp.array([4.0, 0.0])])
    assert float(regularizers.consensus_penalty(field)) == 0.5 * 25.0
    assert float(regularizers.consensus_penalty(({'a': jnp.zeros(3)},))) == 0.0
