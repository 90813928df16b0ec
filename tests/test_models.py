"""Model registry, shapes and parameter counts."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models
from gan_jax.config import default_config


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_pacgan_toy_networks_shapes_and_parameter_counts():
    G_cls, D_cls = models.get('mlp')
    G, D = G_cls(out_shape=(2,)), D_cls()
    z = jnp.zeros((10, 2))
    g_vars = G.init(jax.random.PRNGKey(0), z, train=False)
    x, _ = G.apply(g_vars, z, train=True, mutable=['batch_stats'])
    assert x.shape == (10, 2)
    # G: 2->400, 3 x 400->400 dense layers (no bias: BN follows), 400->2
    # dense, plus 4 BN (scale, bias).
    assert count(g_vars['params']) == 2 * 400 + 3 * 400 * 400 + (
        400 * 2 + 2) + 4 * 2 * 400
    d_vars = D.init(jax.random.PRNGKey(1), x, train=False)
    assert D.apply(d_vars, x, train=True).shape == (10,)
    # D: maxout 2->200x5, maxout 200->200x5, dense 200->1.
    assert count(d_vars['params']) == (2 * 1000 + 1000) + (200 * 1000 + 1000) + 201


def test_maxout_takes_the_max_of_its_pieces():
    from gan_jax.models.layers import MaxoutDense
    layer = MaxoutDense(features=3, pieces=4)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 7))
    variables = layer.init(jax.random.PRNGKey(1), x)
    kernel = variables['params']['Dense_0']['kernel']
    bias = variables['params']['Dense_0']['bias']
    expected = (np.asarray(x) @ np.asarray(kernel) + np.asarray(bias)).reshape(
        5, 3, 4).max(-1)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5)


def test_packing_judges_pack_samples_jointly():
    _, D_cls = models.get('mlp')
    D = D_cls(pack=4, maxout_pieces=1)
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
    variables = D.init(jax.random.PRNGKey(1), x, train=False)
    assert D.apply(variables, x, train=False).shape == (2,)
    with pytest.raises(ValueError, match='does not split into packs of 4'):
        D.apply(variables, x[:6], train=False)


def test_build_rejects_unknown_names_and_keys():
    config = default_config()
    with pytest.raises(ValueError, match=r"unknown model 'gpt'; valid models: dcgan, mlp, resnet"):
        models.get('gpt')
    config.model.g.widths = (3,)
    with pytest.raises(ValueError, match=r"unknown model.g key 'widths' for model 'mlp'"):
        models.build(config, (2,))


def test_build_accepts_lists_from_json():
    config = ml_collections.ConfigDict(default_config().to_dict())
    config.model.g = ml_collections.ConfigDict({'hidden': [8, 8]})
    G, _ = models.build(config, (2,))
    assert G.hidden == (8, 8) and hash(G)


@pytest.mark.parametrize('name', models.names())
def test_every_family_follows_the_written_protocol(name):
    family = models.family(name)
    G_cls, D_cls = models.get(name)
    g_fields = models.constructor_fields(G_cls)
    d_fields = models.constructor_fields(D_cls)
    assert 'out_shape' in g_fields
    # The declared capabilities are exactly the fields the classes have.
    assert ('pack' in d_fields) == family.packing
    assert ('pack' in g_fields) is False
    assert ('num_classes' in g_fields) == family.conditional
    assert ('num_classes' in d_fields) == family.conditional
    config = default_config()
    config.model.name = name
    shape = (2,) if name == 'mlp' else (32, 32, 3)
    G, D = models.build(config, shape, num_classes=10)
    assert isinstance(G, models.GeneratorProtocol)
    assert isinstance(D, models.DiscriminatorProtocol)
    assert G.out_shape == shape
    assert models.pack_of(D) == 1
    assert models.num_classes_of(G) == models.num_classes_of(D) == (
        10 if family.conditional else 0)
    assert models.num_classes_of(models.build(config, shape)[0]) == 0


def test_pack_comes_from_the_config_and_the_module():
    config = default_config()
    assert models.configured_pack(config) == 1
    config.model.d.pack = 4
    assert models.configured_pack(config) == 4
    _, D = models.build(config, (2,))
    assert models.pack_of(D) == 4
    with pytest.raises(ValueError, match="unknown model 'gpt'"):
        models.family('gpt')
