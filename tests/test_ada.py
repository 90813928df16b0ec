"""ADA: every op is exactly the identity at p = 0; at p = 1 the blit ops are
their closed forms (flip, rot90, reflect-padded integer shift) and the color
ops theirs on constant images; the pipeline is differentiable and jits with a
traced p; the p update follows the reference's rule step by step."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import ada

KEY = jax.random.PRNGKey(1)
X = jax.random.uniform(jax.random.PRNGKey(0), (6, 8, 8, 3), minval=-1, maxval=1)
GREY = X[..., :1]


def only(name, rng=KEY, x=X, p=1.0):
    return ada.augment(rng, x, p, ops='', multipliers={name: 1.0})


def matrix_of(name, x=X, p=1.0, rng=KEY):
    b, h, w, _ = x.shape
    return np.asarray(ada.geometric_matrix(rng, b, h, w, p,
                                           ada.multipliers_of('', {name: 1.0})))


@pytest.mark.parametrize('name', ada.OPS)
def test_each_op_at_p0_is_exactly_the_identity(name):
    np.testing.assert_array_equal(only(name, p=0.0), X)
    np.testing.assert_array_equal(only(name, x=GREY, p=0.0), GREY)


def test_pipeline_at_p0_is_exactly_the_identity():
    for x in (X, GREY):
        y = ada.augment(KEY, x, 0.0)
        assert y.shape == x.shape and y.dtype == x.dtype
        np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ada.augment(KEY, X, 1.0, ops=''), X)


def test_pipeline_at_p1_changes_every_sample_and_is_deterministic_per_key():
    y = ada.augment(KEY, X, 1.0)
    assert np.all(np.abs(np.asarray(y - X)).reshape(len(X), -1).max(1) > 1e-3)
    np.testing.assert_array_equal(y, ada.augment(KEY, X, 1.0))
    assert not np.allclose(y, ada.augment(jax.random.PRNGKey(2), X, 1.0))


def test_xflip_at_p1_reverses_width_or_leaves_the_sample():
    y, g = np.asarray(only('xflip')), matrix_of('xflip')
    flipped = g[:, 0, 0] == -1
    assert flipped.any() and not flipped.all()
    for b in range(len(X)):
        expected = np.asarray(X[b, :, ::-1]) if flipped[b] else np.asarray(X[b])
        np.testing.assert_array_equal(y[b], expected)


def test_rotate90_at_p1_is_rot90_on_the_spatial_axes():
    y, g = np.asarray(only('rotate90')), matrix_of('rotate90')
    # G_inv = rotate2d(k * 90°): (cos, sin) names k.
    ks = [{(1, 0): 0, (0, 1): 1, (-1, 0): 2, (0, -1): 3}[(c, s)]
          for c, s in zip(g[:, 0, 0].astype(int), g[:, 1, 0].astype(int))]
    assert len(set(ks)) > 1
    for b, k in enumerate(ks):
        np.testing.assert_array_equal(y[b], np.asarray(jnp.rot90(X[b], k, axes=(0, 1))))
        others = [j for j in range(4) if j != k]
        assert not any(np.array_equal(y[b], jnp.rot90(X[b], j, axes=(0, 1)))
                       for j in others)


def test_integer_translation_at_p1_is_a_reflect_padded_shift():
    x = jax.random.uniform(jax.random.PRNGKey(3), (6, 16, 16, 2))
    y, g = np.asarray(only('xint', x=x)), matrix_of('xint', x=x)
    tx, ty = -g[:, 0, 2], -g[:, 1, 2]  # output(x, y) = input(x - tx, y - ty)
    np.testing.assert_array_equal(tx, np.round(tx))
    assert np.all(np.abs(tx) <= 2) and np.all(np.abs(ty) <= 2)  # 0.125 * 16
    assert np.any(tx != 0) and np.any(ty != 0)
    padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')
    for b in range(len(x)):
        i, j = 2 - int(ty[b]), 2 - int(tx[b])
        np.testing.assert_array_equal(y[b], padded[b, i:i + 16, j:j + 16])


def test_identity_matrix_and_half_pixel_shift_resample_in_closed_form():
    eye = jnp.broadcast_to(jnp.eye(3), (len(X), 3, 3))
    np.testing.assert_array_equal(ada.apply_geometric(X, eye), X)
    half = eye.at[:, 0, 2].set(0.5)  # input x = output x + 0.5
    y, x = np.asarray(ada.apply_geometric(X, half)), np.asarray(X)
    np.testing.assert_allclose(y[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2,
                               atol=1e-6)
    # Past the last column the mirror image continues: x[W-2] again.
    np.testing.assert_allclose(y[:, :, -1], (x[:, :, -2] + x[:, :, -1]) / 2,
                               atol=1e-6)


def test_geometric_parameters_follow_the_reference_distributions():
    b, p = 20000, 0.5
    mult = ada.multipliers_of('g')
    g = np.asarray(ada.geometric_matrix(KEY, b, 16, 16, p, mult))
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[:, 2], np.broadcast_to([0, 0, 1], (b, 3)))
    # Alone, each op applies to a fraction p, with its reference std.
    s = 1 / matrix_of('scale', x=jnp.zeros((b, 16, 16, 1)), p=p)[:, 0, 0]
    scaled = np.log2(s[s != 1])
    assert abs(len(scaled) / b - p) < 0.02
    assert abs(scaled.std() - ada.SCALE_STD) < 0.01
    t = -matrix_of('xfrac', x=jnp.zeros((b, 16, 16, 1)), p=p)[:, 0, 2] / 16
    assert abs(t[t != 0].std() - ada.XFRAC_STD) < 0.01
    # P(pre-rotation or post-rotation) = p.
    r = matrix_of('rotate', x=jnp.zeros((b, 16, 16, 1)), p=p)
    rotated = ~np.isclose(r[:, 0, 1], 0, atol=1e-7)
    assert abs(rotated.mean() - p) < 0.02


def test_brightness_contrast_lumaflip_closed_forms_on_constant_images():
    rgb = jnp.array([0.5, -0.2, 0.1])
    x = jnp.broadcast_to(rgb, (16, 4, 4, 3))
    bright = np.asarray(only('brightness', x=x)) - np.asarray(x)
    offsets = bright[:, 0, 0, 0]
    np.testing.assert_allclose(bright, offsets[:, None, None, None]
                               * np.ones_like(bright), atol=1e-6)
    assert np.all(offsets != 0)
    contrast = np.asarray(only('contrast', x=x)) / np.asarray(x)
    gains = contrast[:, 0, 0, 0]
    np.testing.assert_allclose(contrast, gains[:, None, None, None]
                               * np.ones_like(contrast), rtol=1e-5)
    assert np.all(gains > 0) and np.all(gains != 1)
    flip = np.asarray(only('lumaflip', x=x))[:, 0, 0]
    mirrored = np.asarray(rgb - 2 * rgb.mean())  # x - 2 (v.x) v
    is_flipped = np.all(np.isclose(flip, mirrored, atol=1e-6), axis=1)
    is_same = np.all(flip == np.asarray(rgb), axis=1)
    assert np.all(is_flipped ^ is_same) and is_flipped.any() and is_same.any()


def test_hue_and_saturation_keep_luma_and_move_chroma_as_closed_forms():
    rgb = jnp.array([0.5, -0.2, 0.1])
    x = jnp.broadcast_to(rgb, (16, 4, 4, 3))
    chroma = np.asarray(rgb - rgb.mean())
    hue = np.asarray(only('hue', x=x))[:, 0, 0]
    np.testing.assert_allclose(hue.mean(1), rgb.mean(), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(hue - hue.mean(1, keepdims=True),
                                              axis=1),
                               np.linalg.norm(chroma), rtol=1e-5)
    sat = np.asarray(only('saturation', x=x))[:, 0, 0]
    np.testing.assert_allclose(sat.mean(1), rgb.mean(), atol=1e-6)
    s = (sat - sat.mean(1, keepdims=True)) / chroma  # one factor per sample
    np.testing.assert_allclose(s, s[:, :1] * np.ones_like(s), rtol=1e-4)
    assert np.all(s > 0)


def test_grayscale_color_ops():
    x = jnp.full((16, 4, 4, 1), 0.3)
    bright = np.asarray(only('brightness', x=x)) - 0.3
    assert np.all(bright[:, 0, 0, 0] != 0)
    np.testing.assert_allclose(bright, np.broadcast_to(bright[:, :1, :1],
                                                       bright.shape), atol=1e-6)
    c = ada.color_matrix(KEY, 16, 1.0, ada.multipliers_of('', {'brightness': 1}),
                         num_channels=1)
    np.testing.assert_allclose(bright[:, 0, 0, 0], c[:, 0, 3], atol=1e-6)
    flip = np.asarray(only('lumaflip', x=x))[:, 0, 0, 0]
    assert np.all(np.isclose(flip, -0.3, atol=1e-6) | (flip == np.float32(0.3)))
    assert np.any(flip < 0) and np.any(flip > 0)
    for name in ('hue', 'saturation'):  # no chroma: skipped
        np.testing.assert_array_equal(only(name, x=x), x)
    with pytest.raises(ValueError, match='1 or 3 channels'):
        ada.augment(KEY, jnp.zeros((2, 4, 4, 2)), 1.0)


def test_pipeline_is_differentiable_in_the_images():
    weights = jax.random.normal(jax.random.PRNGKey(4), X.shape)
    for x, p in ((X, 1.0), (X, 0.5), (GREY, 1.0)):
        w = weights[..., :x.shape[-1]]
        grad = jax.grad(lambda x: jnp.sum(ada.augment(KEY, x, p) * w))(x)
        assert grad.shape == x.shape and np.all(np.isfinite(grad))
        assert np.abs(grad).sum() > 0
    # Linear in the images: at p = 0 the gradient is the weights themselves.
    grad = jax.grad(lambda x: jnp.sum(ada.augment(KEY, x, 0.0) * weights))(X)
    np.testing.assert_array_equal(grad, weights)


def test_jit_with_a_traced_p_compiles_once():
    traces = []

    @jax.jit
    def fn(rng, x, p):
        traces.append(1)
        return ada.augment(rng, x, p)

    np.testing.assert_array_equal(fn(KEY, X, jnp.float32(0.0)), X)
    y = fn(KEY, X, jnp.float32(1.0))
    np.testing.assert_allclose(y, ada.augment(KEY, X, 1.0), atol=1e-5)
    assert len(traces) == 1


def test_xflip_at_p1_flips_about_half_the_samples():
    b = 4000
    x = jnp.broadcast_to(jnp.arange(4, dtype=jnp.float32)[None, None, :, None],
                         (b, 4, 4, 1))
    for p, fraction in ((1.0, 0.5), (0.5, 0.25)):
        y = np.asarray(ada.augment(jax.random.PRNGKey(5), x, p, ops='',
                                   multipliers={'xflip': 1.0}))
        flipped = y[:, 0, 0, 0] == 3
        assert np.all(flipped | (y[:, 0, 0, 0] == 0))
        assert abs(flipped.mean() - fraction) < 0.03


def test_multipliers_of():
    m = ada.multipliers_of('bgc')
    assert all(m[name] == 1.0 for name in ada.OPS)
    assert ada.multipliers_of('b', {'xint': 0.0}) == dict(
        {name: 0.0 for name in ada.OPS}, xflip=1.0, rotate90=1.0)
    with pytest.raises(ValueError, match='group'):
        ada.multipliers_of('bgx')
    with pytest.raises(ValueError, match='unknown ADA op'):
        ada.multipliers_of('', {'cutout': 1.0})


# --- the p update ---------------------------------------------------------

def logits(positive, negative):
    return jnp.array([1.0] * positive + [-1.0] * negative)


def test_p_update_follows_the_rule_step_by_step():
    batch, interval, speed = 10, 4, 500
    delta = np.float32(batch * interval / (speed * 1000))  # 8e-5
    kw = dict(target=0.6, batch_size=batch, interval=interval, speed_kimg=speed)
    script = ([logits(10, 0)] * 4         # r_t = 1 > 0.6: up
              + [logits(5, 5)] * 4        # r_t = 0 < 0.6: down
              + [logits(8, 2)] * 4        # r_t = 0.6: unchanged
              + [logits(10, 0), logits(0, 10)] * 2)  # r_t = 0: down
    stats = ada.init_stats(0.5)
    step = jax.jit(lambda s, l, n: ada.update_stats(s, l, steps_done=n, **kw))
    expected = np.float32(0.5)
    for n, real_logits in enumerate(script, start=1):
        stats = step(stats, real_logits, n)
        if n % interval == 0:
            expected = {4: expected + delta, 8: expected - delta,
                        12: expected, 16: expected - delta}[n]
            assert int(stats['ada_count']) == 0
            assert float(stats['ada_sign_sum']) == 0
        else:
            assert int(stats['ada_count']) == batch * (n % interval)
        assert stats['ada_p'].dtype == jnp.float32
        assert stats['ada_p'] == expected, n
    assert set(stats) == set(ada.init_stats())


def test_p_update_clips_to_0_and_1_and_ignores_empty_intervals():
    kw = dict(target=0.6, batch_size=8, interval=4, speed_kimg=0.016)  # step 2
    up = ada.accumulate(*ada.accumulate(jnp.float32(0), jnp.int32(0),
                                        logits(8, 0)), logits(8, 0))
    down = ada.accumulate(jnp.float32(0), jnp.int32(0), logits(0, 8))
    assert ada.update_p(0.3, *up, **kw) == 1.0
    assert ada.update_p(1.0, *up, **kw) == 1.0
    assert ada.update_p(0.3, *down, **kw) == 0.0
    assert ada.update_p(0.0, *down, **kw) == 0.0
    assert ada.update_p(0.3, jnp.float32(0), jnp.int32(0), **kw) == np.float32(0.3)
    small = dict(kw, speed_kimg=500)
    assert ada.update_p(0.0, *down, **small) == 0.0
    assert ada.update_p(0.0, *up, **small) == np.float32(32 / 500000)
