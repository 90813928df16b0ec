"""gan_jax.ops.policy: 'auto' per backend, every form selectable from a config,
and no backend test anywhere in the models."""
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import pytest

import gan_jax
from gan_jax import models, ops
from gan_jax.config import default_config
from gan_jax.ops import policy


def test_models_never_ask_for_the_backend():
    root = pathlib.Path(gan_jax.__file__).parent / 'models'
    for path in root.glob('*.py'):
        assert 'default_backend' not in path.read_text(), path


@pytest.mark.parametrize('op', sorted(policy.FORMS))
def test_auto_is_plain_xla_off_cpu(op, monkeypatch):
    monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
    assert policy.resolve(op, 'auto') == 'xla'
    monkeypatch.setattr(jax, 'default_backend', lambda: 'tpu')
    assert policy.resolve(op, 'auto') == 'xla'


@pytest.mark.parametrize('op', sorted(policy.FORMS))
def test_auto_on_cpu_is_one_of_the_forms_and_named_forms_pass(op):
    assert policy.resolve(op, 'auto') in policy.FORMS[op]
    for form in policy.FORMS[op]:
        assert policy.resolve(op, form) == form


def test_unknown_forms_and_ops_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"no form 'adjoint'; choose from auto, xla, "
                                         r"space_to_depth"):
        policy.resolve('strided_conv4x4', 'adjoint')
    with pytest.raises(ValueError, match='unknown op'):
        policy.resolve('conv9x9', 'auto')


def _primitives(fn, *args):
    """Names of the primitives in fn's jaxpr, sub-jaxprs included."""
    names = set()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    inner = getattr(sub, 'jaxpr', sub)
                    if hasattr(inner, 'eqns'):
                        visit(inner)
    visit(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


def _dcgan_32(g_impl, d_impl):
    config = ml_collections.ConfigDict(default_config().to_dict())
    config.model.name = 'dcgan'
    config.model.g = ml_collections.ConfigDict(
        {'base_channels': 8, 'upconv_impl': g_impl})
    config.model.d = ml_collections.ConfigDict(
        {'base_channels': 8, 'conv_impl': d_impl})
    return models.build(config, (32, 32, 3))


def test_every_form_is_selectable_from_the_config():
    z = jnp.ones((2, 16))
    x = jnp.ones((2, 32, 32, 3))
    for g_impl in ('auto',) + policy.FORMS['conv_transpose4x4']:
        G, _ = _dcgan_32(g_impl, 'xla')
        assert G.upconv_impl == g_impl
        G.init(jax.random.PRNGKey(0), z, train=False)
    for d_impl in ('auto',) + policy.FORMS['strided_conv4x4']:
        _, D = _dcgan_32('xla', d_impl)
        variables = D.init(jax.random.PRNGKey(0), x, train=False)
        forward = lambda v: D.apply(v, x, train=False)  # noqa: E731
        # The space-to-depth form is a custom_vjp; plain XLA is not.
        assert ('custom_vjp_call' in _primitives(forward, variables)) == (
            d_impl == 'space_to_depth'
            or (d_impl == 'auto' and ops.resolve('strided_conv4x4', 'auto') != 'xla'))
    G, _ = _dcgan_32('nonsense', 'xla')
    with pytest.raises(ValueError, match="no form 'nonsense'"):
        G.init(jax.random.PRNGKey(0), z, train=False)


def test_off_cpu_the_models_trace_plain_flax_convolutions(monkeypatch):
    # What a GPU run traces with the defaults: no custom_vjp forms.
    monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
    G, D = _dcgan_32('auto', 'auto')
    z, x = jnp.ones((2, 16)), jnp.ones((2, 32, 32, 3))
    g_vars = G.init(jax.random.PRNGKey(0), z, train=False)
    d_vars = D.init(jax.random.PRNGKey(0), x, train=False)
    g_prims = _primitives(lambda v: G.apply(v, z, train=False), g_vars)
    d_prims = _primitives(lambda v: D.apply(v, x, train=False), d_vars)
    assert 'custom_vjp_call' not in g_prims | d_prims
    assert 'conv_general_dilated' in g_prims & d_prims
    # and on CPU, by contrast, the forms measured faster there:
    monkeypatch.setattr(jax, 'default_backend', lambda: 'cpu')
    if ops.resolve('conv_transpose4x4', 'auto') == 'adjoint':
        assert 'custom_vjp_call' in _primitives(
            lambda v: G.apply(v, z, train=False), g_vars)
