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


TRACES = []


class CountingGenerator(dcgan.Generator):
    """dcgan.Generator that records each trace of its body: under jit the
    Python body runs only when jax traces, never on a cached executable."""

    def __call__(self, z, labels=None, *, train):
        TRACES.append(z.shape)
        return super().__call__(z, labels, train=train)


def test_sample_traces_the_generator_once_for_new_params_of_the_same_structure():
    G = CountingGenerator(out_shape=(28, 28, 1), base_channels=8)
    z = sampling.latents(3, 8, 16)
    inits = [G.init(jax.random.PRNGKey(seed), z, train=False) for seed in (0, 1)]
    states = [{'batch_stats': v['batch_stats']} for v in inits]
    expected = G.apply(inits[1], z, train=False)  # runs the body: count after
    TRACES.clear()
    first = sampling.sample(G, inits[0]['params'], states[0], z)
    second = sampling.sample(G, inits[1]['params'], states[1], z)
    assert TRACES == [(8, 16)]
    # The params are arguments of the compiled function, not constants baked
    # into it: the second call gives the second params' images.
    np.testing.assert_allclose(second, expected, atol=1e-6)
    assert np.abs(first - second).max() > 1e-3
    # An equal module built anew (as loop, evaluate.py and each sweep member
    # do) shares the executable; other fields or shapes are compiled anew.
    again = CountingGenerator(out_shape=(28, 28, 1), base_channels=8)
    sampling.sample(again, inits[0]['params'], states[0], z)
    assert TRACES == [(8, 16)]
    sampling.sample(G, inits[0]['params'], states[0], z, batch_size=5)
    assert TRACES == [(8, 16), (5, 16), (3, 16)]
    wider = CountingGenerator(out_shape=(28, 28, 1), base_channels=16)
    variables = wider.init(jax.random.PRNGKey(0), z, train=False)
    TRACES.clear()
    sampling.sample(wider, variables['params'],
                    {'batch_stats': variables['batch_stats']}, z)
    assert TRACES == [(8, 16)]


def test_sample_fn_reuses_the_compiled_generator_across_calls():
    G = CountingGenerator(out_shape=(28, 28, 1), base_channels=8)
    variables = G.init(jax.random.PRNGKey(0), sampling.latents(0, 4, 16),
                       train=False)
    fn = sampling.sample_fn(G, variables['params'],
                            {'batch_stats': variables['batch_stats']}, 16)
    TRACES.clear()
    a, b = fn(6, 0), fn(6, 1)
    assert TRACES == [(6, 16)] and a.shape == (6, 28, 28, 1)
    assert np.abs(a - b).max() > 1e-3  # other seeds, other latents


def test_sample_fn_rows_are_that_share_of_the_full_draw():
    G = dcgan.Generator(out_shape=(28, 28, 1), base_channels=8)
    variables = G.init(jax.random.PRNGKey(0), sampling.latents(0, 2, 16), train=False)
    fn = sampling.sample_fn(G, variables['params'],
                            {'batch_stats': variables['batch_stats']}, 16)
    full = fn(10, 3)
    np.testing.assert_allclose(fn(10, 3, rows=(4, 7)), full[4:7], atol=1e-6)
    assert fn(10, 3, rows=(0, 10)).shape == (10, 28, 28, 1)


def test_truncation_psi_zero_gives_the_average_image_for_every_latent():
    from gan_jax.models import stylegan2
    G = stylegan2.Generator(out_shape=(8, 8, 1), channel_base=64, channel_max=8,
                            w_dim=8, mapping_layers=1)
    z = sampling.latents(0, 3, 8)
    variables = dict(G.init(jax.random.PRNGKey(0), z, train=False))
    params = variables.pop('params')
    plain = sampling.sample(G, params, variables, z)
    average = sampling.sample(G, params, variables, z, truncation_psi=0.0)
    assert not np.allclose(plain[0], plain[1])
    np.testing.assert_allclose(average[1:], np.broadcast_to(average[0], (2, 8, 8, 1)),
                               atol=1e-6)
    assert plain.min() >= -1 and plain.max() <= 1
