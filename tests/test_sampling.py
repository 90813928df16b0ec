"""Sampling helpers: grids, latent interpolation, class labels, determinism."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import sampling
from gan_jax.models import dcgan, resnet


def test_image_grid_places_images_row_major_with_padding():
    images = np.stack([np.full((2, 3, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)])
    grid = sampling.image_grid(images, columns=2, padding=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1) and grid.dtype == np.uint8
    assert (grid[1:3, 1:4] == 0).all()          # -1 -> black
    assert (grid[1:3, 5:8] == 128).all()        # 0 -> mid grey
    assert (grid[4:6, 1:4] == 255).all()        # 1 -> white
    assert (grid[0] == 255).all()               # padding


def test_interpolation_hits_endpoints_and_keeps_norm_under_slerp():
    z0, z1 = jax.random.normal(jax.random.PRNGKey(0), (2, 64))
    path = sampling.interpolate_latents(z0, z1, 7)
    np.testing.assert_allclose(path[0], z0, atol=1e-5)
    np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    z1_same_norm = z1 / jnp.linalg.norm(z1) * jnp.linalg.norm(z0)
    norms = jnp.linalg.norm(sampling.interpolate_latents(z0, z1_same_norm, 9), axis=1)
    np.testing.assert_allclose(norms, jnp.linalg.norm(z0), rtol=1e-5)
    linear = sampling.interpolate_latents(z0, z1, 3, spherical=False)
    np.testing.assert_allclose(linear[1], (z0 + z1) / 2, atol=1e-6)
    np.testing.assert_allclose(sampling.interpolate_latents(z0, z0, 3)[1], z0, atol=1e-5)


def test_sample_is_deterministic_and_batch_size_independent():
    G = dcgan.Generator(out_shape=(28, 28, 1), base_channels=8)
    z = sampling.latents(3, 10, 16)
    variables = G.init(jax.random.PRNGKey(0), z, train=False)
    params, state = variables['params'], {'batch_stats': variables['batch_stats']}
    a = sampling.sample(G, params, state, z, batch_size=4)
    b = sampling.sample(G, params, state, z, batch_size=10)
    assert a.shape == (10, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(sampling.latents(3, 10, 16), z)


def test_class_labels_cycle_for_conditional_generators():
    assert sampling.class_labels(dcgan.Generator(), 5) is None
    labels = sampling.class_labels(resnet.Generator(num_classes=10), 12)
    assert labels.tolist() == list(range(10)) + [0, 1]
