"""nn.Conv with gan_jax.ops' convolution (space-to-depth input gradient of 4x4
stride-2 convolutions) equals plain nn.Conv in value and gradients, keeps its
parameter names, and works under spectral norm; the ResNet upsampling equals
jax.image.resize; each form of gan_jax.ops.conv equals lax."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import layers
from gan_jax.ops import conv as ops_conv

# The form under test, named (not 'auto', which may pick plain XLA).
S2D_CONV = ops_conv.conv_general_dilated('space_to_depth')


def relative_error(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize('kernel_size,strides,padding,use_bias,size,strided4x4', [
    ((3, 3), (1, 1), 'SAME', True, 9, False),
    ((4, 4), (2, 2), 'SAME', False, 9, False),
    ((4, 4), (2, 2), 'SAME', True, 10, True),
    ((4, 4), (2, 2), ((1, 1), (1, 1)), False, 8, True),
    ((1, 1), (1, 1), 'SAME', True, 9, False),
    ((3, 3), (1, 1), ((1, 1), (1, 1)), True, 9, False),
    ((3, 3), (2, 2), 'VALID', True, 9, False),
])
def test_conv_equals_flax_conv_in_value_and_gradients(kernel_size, strides, padding,
                                                      use_bias, size, strided4x4):
    x = jax.random.normal(jax.random.PRNGKey(0), (3, size, size, 64))
    # Which formulation the case exercises.
    assert (ops_conv.conv_form(x.shape, kernel_size, strides, padding, 'space_to_depth')
            == 'space_to_depth') == strided4x4
    ours = nn.Conv(128, kernel_size, strides, padding, use_bias=use_bias,
                   conv_general_dilated=S2D_CONV)
    reference = nn.Conv(128, kernel_size, strides, padding, use_bias=use_bias)
    variables = ours.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(variables) == jax.tree.structure(
        reference.init(jax.random.PRNGKey(1), x))
    if use_bias:  # a non-zero bias, so its gradient path is exercised too
        variables['params']['bias'] = jnp.linspace(-1, 1, 128)
    target = jax.random.normal(jax.random.PRNGKey(2),
                               reference.apply(variables, x).shape)

    def loss(module):
        return lambda v, x_: jnp.sum(jnp.sin(module.apply(v, x_)) * target)

    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x),
                               rtol=1e-5, atol=1e-6)
    ours_grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
    reference_grads = jax.grad(loss(reference), argnums=(0, 1))(variables, x)
    for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(reference_grads)):
        assert relative_error(a, b) <= 1e-5


def test_conv_keeps_flax_names_and_works_under_spectral_norm():
    class Net(nn.Module):
        conv: type

        @nn.compact
        def __call__(self, x, train):
            x = nn.SpectralNorm(self.conv(4, (3, 3)))(x, update_stats=train)
            return self.conv(2, (1, 1))(x)

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3))
    ours = Net(functools.partial(nn.Conv, conv_general_dilated=S2D_CONV))
    reference = Net(nn.Conv)
    variables = ours.init(jax.random.PRNGKey(1), x, False)
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(
        reference.init(jax.random.PRNGKey(1), x, False))
    out, _ = ours.apply(variables, x, True, mutable=['batch_stats'])
    ref, _ = reference.apply(variables, x, True, mutable=['batch_stats'])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_resnet_upsampling_is_nearest_neighbour_resize():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 5, 3))
    np.testing.assert_array_equal(
        layers.upsample_nearest(x), jax.image.resize(x, (2, 8, 10, 3), method='nearest'))


@pytest.mark.parametrize('c_in', [3, 32])  # an image layer and a hidden one
def test_strided_conv4x4_and_its_transpose_equal_lax_in_value_and_gradients(c_in):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 10, 6, c_in))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, c_in, 24)) * 0.1
    down_target = jax.random.normal(jax.random.PRNGKey(2), (4, 5, 3, 24))
    up_x = jax.random.normal(jax.random.PRNGKey(3), (4, 5, 3, c_in))
    up_target = jax.random.normal(jax.random.PRNGKey(4), (4, 10, 6, 24))

    def lax_down(x_, k):
        return jax.lax.conv_general_dilated(x_, k, (2, 2), 'SAME',
                                            dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

    def lax_up(x_, k):
        return jax.lax.conv_transpose(x_, k, (2, 2), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

    for ours, reference, inputs, target in [
            (ops_conv.strided_conv4x4, lax_down, x, down_target),
            (ops_conv.conv_transpose4x4, lax_up, up_x, up_target)]:
        assert relative_error(ours(inputs, kernel), reference(inputs, kernel)) <= 1e-5

        def loss(f):
            return lambda x_, k: jnp.sum(jnp.sin(f(x_, k)) * target)
        ours_grads = jax.grad(loss(ours), argnums=(0, 1))(inputs, kernel)
        reference_grads = jax.grad(loss(reference), argnums=(0, 1))(inputs, kernel)
        for a, b in zip(ours_grads, reference_grads):
            assert relative_error(a, b) <= 1e-5


@pytest.mark.parametrize('c_in,c_out', [(5, 7), (96, 128)])  # few and many channels
def test_conv_of_upsampled_input_equals_literal_form_in_value_and_gradients(c_in, c_out):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, c_in))
    ours = layers.upsample_conv(c_out, (3, 3), impl='coarse')
    reference = nn.Conv(c_out, (3, 3))
    variables = ours.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(variables) == jax.tree.structure(
        reference.init(jax.random.PRNGKey(1), layers.upsample_nearest(x)))
    variables['params']['bias'] = jnp.linspace(-1, 1, c_out)
    target = jax.random.normal(jax.random.PRNGKey(2), (2, 10, 12, c_out))

    def loss_ours(v, x_):
        return jnp.sum(jnp.sin(ours.apply(v, x_)) * target)

    def loss_reference(v, x_):
        return jnp.sum(jnp.sin(reference.apply(v, layers.upsample_nearest(x_))) * target)

    assert relative_error(ours.apply(variables, x),
                          reference.apply(variables, layers.upsample_nearest(x))) <= 1e-5
    ours_grads = jax.grad(loss_ours, argnums=(0, 1))(variables, x)
    reference_grads = jax.grad(loss_reference, argnums=(0, 1))(variables, x)
    for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(reference_grads)):
        assert relative_error(a, b) <= 1e-5
