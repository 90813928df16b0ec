"""ResNet (SNGAN) models: parameter counts, spectral norm, conditioning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import resnet
from gan_jax.models.layers import ConditionalBatchNorm, SelfAttention


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.slow
def test_sngan_cifar10_parameter_counts():
    # Counted layer by layer from Miyato et al. 2018, appendix B.4 (Table 4):
    # G: dense 128 -> 4x4x256; 3 up-blocks 256 -> 256, each BN, conv3, BN,
    # conv3 and a conv1 shortcut; BN; conv3 256 -> 3.
    block_g = 2 * 256 + (9 * 256 * 256 + 256) + 2 * 256 + (9 * 256 * 256 + 256) + (
        256 * 256 + 256)
    expected_g = (128 * 4096 + 4096) + 3 * block_g + 2 * 256 + (9 * 256 * 3 + 3)
    # D: optimised block 3 -> 128 (conv3, conv3, conv1 shortcut), a down block
    # with conv1 shortcut, two blocks with identity shortcuts, dense 128 -> 1.
    conv3 = 9 * 128 * 128 + 128
    expected_d = ((9 * 3 * 128 + 128) + conv3 + (3 * 128 + 128)) + (
        2 * conv3 + (128 * 128 + 128)) + 2 * (2 * conv3) + 129
    G = resnet.Generator(out_shape=(32, 32, 3))
    D = resnet.Discriminator()
    g_vars = G.init(jax.random.PRNGKey(0), jnp.ones((2, 128)), train=False)
    x = G.apply(g_vars, jnp.ones((2, 128)), train=False)
    d_vars = D.init(jax.random.PRNGKey(1), x, train=False)
    assert count(g_vars['params']) == expected_g == 4_276_739
    assert count(d_vars['params']) == expected_d == 1_053_825
    assert x.shape == (2, 32, 32, 3)
    assert D.apply(d_vars, x, train=False).shape == (2,)


def test_resnet64_shapes():
    G = resnet.Generator(out_shape=(64, 64, 3), channels=(16, 16, 16, 16))
    D = resnet.Discriminator(channels=(8, 8, 8, 8, 8))
    g_vars = G.init(jax.random.PRNGKey(0), jnp.ones((2, 8)), train=False)
    x = G.apply(g_vars, jnp.ones((2, 8)), train=False)
    assert x.shape == (2, 64, 64, 3)
    d_vars = D.init(jax.random.PRNGKey(1), x, train=False)
    assert D.apply(d_vars, x, train=False).shape == (2,)


def test_spectral_norm_makes_top_singular_value_one():
    D = resnet.Discriminator(channels=(16, 16, 16, 16))
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 32, 3))
    variables = D.init(jax.random.PRNGKey(1), x, train=False)
    # Scale the raw kernels so that normalisation has real work to do.
    params = jax.tree.map(lambda p: p * 7.0 if p.ndim > 1 else p, variables['params'])
    stats = variables['batch_stats']
    for _ in range(30):  # one power iteration per training-mode call
        _, updates = D.apply({'params': params, 'batch_stats': stats}, x, train=True,
                             mutable=['batch_stats'])
        stats = updates['batch_stats']
    flat_params = {'/'.join(k.key for k in path): v for path, v in
                   jax.tree_util.tree_flatten_with_path(params)[0]}
    checked = 0
    for path, sigma in jax.tree_util.tree_flatten_with_path(stats)[0]:
        name = path[-1].key  # e.g. 'Conv_0/kernel/sigma'
        if not name.endswith('/sigma'):
            continue
        # Stats sit at A/B/SpectralNorm_k/'Conv_0/kernel/sigma', the kernel at
        # A/B/Conv_0/kernel.
        parents = [k.key for k in path[:-1] if not k.key.startswith('SpectralNorm')]
        kernel_path = '/'.join(parents + [name[:-len('/sigma')]])
        kernel = flat_params[kernel_path]
        matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
        top = np.linalg.svd(matrix / float(sigma), compute_uv=False)[0]
        assert abs(top - 1.0) < 0.05, (kernel_path, top)
        checked += 1
    assert checked >= 10  # every conv and the dense layer


@pytest.mark.slow
def test_projection_discriminator_uses_the_label():
    D = resnet.Discriminator(channels=(8, 8, 8, 8), num_classes=10)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 32, 3))
    labels = jnp.array([0, 1, 2, 3])
    variables = D.init(jax.random.PRNGKey(1), x, labels, train=False)
    a = D.apply(variables, x, labels, train=False)
    b = D.apply(variables, x, labels + 1, train=False)
    assert not np.allclose(a, b)
    grads = jax.grad(lambda p: D.apply({**variables, 'params': p}, x, labels,
                                       train=False).sum())(variables['params'])
    embedding = [v for path, v in jax.tree_util.tree_flatten_with_path(grads)[0]
                 if 'embedding' in jax.tree_util.keystr(path)]
    assert len(embedding) == 1
    rows = np.abs(np.asarray(embedding[0])).sum(axis=1)
    assert np.all(rows[:4] > 0)
    # Without spectral norm (whose σ couples all rows) only used rows move.
    D = resnet.Discriminator(channels=(8, 8, 8, 8), num_classes=10, spectral=False)
    variables = D.init(jax.random.PRNGKey(1), x, labels, train=False)
    grads = jax.grad(lambda p: D.apply({**variables, 'params': p}, x, labels,
                                       train=False).sum())(variables['params'])
    rows = np.abs(np.asarray(grads['Embed_0']['embedding'])).sum(axis=1)
    assert np.all(rows[:4] > 0) and np.all(rows[4:] == 0)


def test_conditional_batch_norm_scales_per_class():
    cbn = ConditionalBatchNorm(num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 4, 4, 2))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    variables = cbn.init(jax.random.PRNGKey(1), x, labels, train=False)
    params = jax.tree.map(lambda p: p, variables['params'])
    params['gamma']['embedding'] = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    y, _ = cbn.apply({**variables, 'params': params}, x, labels, train=True,
                     mutable=['batch_stats'])
    normalised = (x - x.mean(axis=(0, 1, 2))) / jnp.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
    scale = jnp.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])[:, None, None, None]
    np.testing.assert_allclose(y, normalised * scale, rtol=1e-4, atol=1e-5)


def test_self_attention_starts_as_identity():
    layer = SelfAttention()
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
    variables = layer.init(jax.random.PRNGKey(1), x, train=False)
    np.testing.assert_array_equal(layer.apply(variables, x, train=False), x)
    params = dict(variables['params'], gamma=jnp.array(1.0))
    assert not np.allclose(layer.apply({'params': params}, x, train=False), x)
    G = resnet.Generator(channels=(16, 16, 16), attention_resolution=16)
    g_vars = G.init(jax.random.PRNGKey(0), jnp.ones((2, 8)), train=False)
    assert 'SelfAttention_0' in g_vars['params']


@pytest.mark.parametrize('impl', ['coarse', 'xla'])
def test_upsampling_conv_forms_compute_the_same_generator(impl):
    z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
    G = resnet.Generator(channels=(16, 16, 16))
    other = resnet.Generator(channels=(16, 16, 16), conv_impl=impl)
    variables = G.init(jax.random.PRNGKey(1), z, train=False)
    np.testing.assert_allclose(other.apply(variables, z, train=False),
                               G.apply(variables, z, train=False), atol=1e-5)
