"""DiffAugment: shape-preserving, differentiable, deterministic per key, off
when disabled; translation and cutout checked against their definitions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment

X = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3), minval=-1, maxval=1)
KEY = jax.random.PRNGKey(1)
POLICY = 'color,translation,cutout'


def test_shape_preserving_and_deterministic_per_key():
    y = augment.diff_augment(KEY, X, POLICY)
    assert y.shape == X.shape and y.dtype == X.dtype
    np.testing.assert_array_equal(y, augment.diff_augment(KEY, X, POLICY))
    assert not np.allclose(y, augment.diff_augment(jax.random.PRNGKey(2), X, POLICY))


def test_disabled_is_identity():
    np.testing.assert_array_equal(augment.diff_augment(KEY, X, ''), X)


def test_differentiable_in_the_images():
    grad = jax.grad(lambda x: jnp.sum(augment.diff_augment(KEY, x, POLICY) ** 2))(X)
    assert grad.shape == X.shape and np.all(np.isfinite(grad))
    assert np.abs(grad).sum() > 0


def test_translation_shifts_whole_pixels_with_zero_fill():
    x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1) + 1
    y = np.asarray(augment.translation(KEY, x))
    for b in range(2):
        found = [(dy, dx) for dy in range(-1, 2) for dx in range(-1, 2)
                 if np.array_equal(y[b], np.asarray(shift(x[b], dy, dx)))]
        assert len(found) == 1


def shift(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[i, j] = image[i - dy, j - dx]
    return out


def test_cutout_zeroes_one_square_of_half_the_size():
    x = jnp.ones((3, 8, 8, 2))
    y = np.asarray(augment.cutout(KEY, x))
    for b in range(3):
        zeros = np.argwhere(y[b, ..., 0] == 0)
        assert 0 < len(zeros) <= 16
        if len(zeros) == 16:  # fully inside: a 4x4 square
            assert np.ptp(zeros[:, 0]) == 3 and np.ptp(zeros[:, 1]) == 3


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        augment.diff_augment(KEY, X, 'color,rotate')
