"""DCGAN shapes and parameter counts, and the sub-pixel transposed convolution
against nn.ConvTranspose (forward and gradients)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import dcgan
from gan_jax.models.layers import UpConv


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('impl', ['adjoint', 'subpixel', 'xla'])
@pytest.mark.parametrize('shape', [(5, 7, 3), (4, 4, 8), (1, 1, 2)])
def test_upconv_equals_conv_transpose_forward_and_gradients(shape, impl):
    x = jax.random.normal(jax.random.PRNGKey(0), (2,) + shape)
    reference = nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding='SAME')
    params = reference.init(jax.random.PRNGKey(1), x)['params']
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(
        jax.random.PRNGKey(2), p.shape), params)  # non-zero bias too
    ours = UpConv(6, impl=impl)
    ours_params = {'ConvTranspose_0': params}
    assert jax.tree.structure(ours.init(jax.random.PRNGKey(1), x)['params']) == \
        jax.tree.structure(ours_params)
    target = jax.random.normal(jax.random.PRNGKey(3), (2, 2 * shape[0], 2 * shape[1], 6))

    def loss_ref(p, xx):
        return jnp.sum(jnp.sin(reference.apply({'params': p}, xx)) * target)

    def loss_ours(p, xx):
        return jnp.sum(jnp.sin(ours.apply({'params': {'ConvTranspose_0': p}}, xx)) * target)

    y_ref = reference.apply({'params': params}, x)
    y_ours = ours.apply({'params': ours_params}, x)
    assert y_ours.shape == y_ref.shape == (2, 2 * shape[0], 2 * shape[1], 6)
    np.testing.assert_allclose(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    g_ref = jax.grad(loss_ref, argnums=(0, 1))(params, x)
    g_ours = jax.grad(loss_ours, argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
        scale = np.abs(np.asarray(b)).max()
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize('size,channels', [(28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(size, channels):
    G = dcgan.Generator(out_shape=(size, size, channels), base_channels=8)
    D = dcgan.Discriminator(base_channels=8, norm='batch')
    z = jnp.ones((3, 16))
    g_vars = G.init(jax.random.PRNGKey(0), z, train=False)
    x = G.apply(g_vars, z, train=False)
    assert x.shape == (3, size, size, channels)
    assert float(jnp.abs(x).max()) <= 1.0
    d_vars = D.init(jax.random.PRNGKey(1), x, train=False)
    assert D.apply(d_vars, x, train=False).shape == (3,)


def test_dcgan32_parameter_counts():
    # The DCGAN-32 of the benchmarks: G dense 128 -> 4x4x256, transposed convs
    # 256 -> 128 -> 64 -> 3 (4x4), BN after the dense and the first two (which
    # therefore have no bias, as in DCGAN's reference code);
    # D convs 3 -> 64 -> 128 -> 256 (4x4), dense 4*4*256 -> 1.
    G = dcgan.Generator(out_shape=(32, 32, 3), base_channels=64)
    g = G.init(jax.random.PRNGKey(0), jnp.ones((2, 128)), train=False)['params']
    expected_g = 128 * 4096 + 16 * 256 * 128 + 16 * 128 * 64 + (
        16 * 64 * 3 + 3) + 2 * (256 + 128 + 64)
    assert count(g) == expected_g
    D = dcgan.Discriminator(base_channels=64)
    d = D.init(jax.random.PRNGKey(0), jnp.ones((2, 32, 32, 3)), train=False)['params']
    assert count(d) == (16 * 3 * 64 + 64) + (16 * 64 * 128 + 128) + (
        16 * 128 * 256 + 256) + (4096 + 1)


@pytest.mark.parametrize('impl', ['subpixel', 'xla'])  # 'xla': nn.ConvTranspose's
def test_upconv_impl_changes_nothing_but_the_algorithm(impl):
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 32))
    fast = dcgan.Generator(out_shape=(32, 32, 3), base_channels=8)
    slow = dcgan.Generator(out_shape=(32, 32, 3), base_channels=8, upconv_impl=impl)
    variables = fast.init(jax.random.PRNGKey(1), z, train=False)
    np.testing.assert_allclose(fast.apply(variables, z, train=False),
                               slow.apply(variables, z, train=False), atol=1e-5)
