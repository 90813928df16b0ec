"""gan_jax.xla_options: the CPU compiler options and the jit that applies them."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import xla_options
from gan_jax.models import layers


def _conv_bn_loss(x, kernel):
    """A strided convolution, batch-norm statistics and a mean: the kinds of
    operation the options move between YNNPACK and XLA's own code."""
    y = layers.strided_conv4x4(x, kernel)
    mean = jnp.mean(y, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(y), axis=(0, 1, 2)) - jnp.square(mean)
    return jnp.mean(jnp.tanh((y - mean) * jax.lax.rsqrt(var + 1e-5)))


def test_cpu_options_are_set_and_accepted(monkeypatch):
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    options = xla_options.compiler_options()
    assert options == {'xla_cpu_experimental_ynn_fusion_type':
                       'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'}


def test_users_xla_flags_win(monkeypatch):
    monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type=individual_dot')
    assert xla_options.compiler_options() is None


def test_jit_with_options_computes_what_plain_jit_computes(monkeypatch):
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 16, 16, 32), np.float32))
    kernel = jnp.asarray(rng.standard_normal((4, 4, 32, 48), np.float32) * 0.05)
    grad_fn = jax.value_and_grad(_conv_bn_loss, argnums=(0, 1))
    ours = xla_options.jit(grad_fn)(x, kernel)
    plain = jax.jit(grad_fn)(x, kernel)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_cpu_options_keep_convolutions_and_reductions_where_measured_fastest(monkeypatch):
    # The compiled program: no convolution inside a YNNPACK fusion, and the
    # reductions not rewritten into XLA's reduce-window trees.
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    x = jnp.zeros((64, 16, 16, 64), jnp.float32)
    kernel = jnp.zeros((4, 4, 64, 128), jnp.float32)
    grad_fn = jax.grad(_conv_bn_loss, argnums=(0, 1))
    text = xla_options.jit(grad_fn).lower(x, kernel).compile().as_text()
    fusions = [block for block in text.split('\n\n') if '__ynn_fusion' in block]
    ynn_computations = {line.split('calls=')[1].split(',')[0] for block in fusions
                        for line in block.splitlines() if '__ynn_fusion' in line}
    for name in ynn_computations:
        body = text.split(f'{name} ')[1].split('\n}')[0]
        assert 'convolution(' not in body, body
    assert 'reduce-window(' not in text
    assert 'convolution(' in text


def test_jitted_function_also_runs_inside_other_transformations(monkeypatch):
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    x = jnp.arange(6.0)
    double = xla_options.jit(lambda v: 2.0 * v)
    np.testing.assert_allclose(double(x), 2.0 * x)
    np.testing.assert_allclose(jax.jit(lambda v: double(v) + 1.0)(x), 2.0 * x + 1.0)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(double(v)))(x), 2.0 * np.ones(6))
    assert 'mul' in str(jax.make_jaxpr(double)(x))
    assert double.lower(x).compile() is not None
