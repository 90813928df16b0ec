"""gan_jax.ops.xla_options: the CPU compiler options and the jit that applies them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.ops import xla_options
from gan_jax.ops import conv

pytestmark = pytest.mark.skipif(
    jax.default_backend() != 'cpu' or not xla_options._cpu_options_supported(),
    reason='the options are for an XLA:CPU that accepts them')


def _conv_bn_loss(x, kernel):
    """A strided convolution, batch-norm statistics and a mean: convolutions,
    which the options take from YNNPACK, and reductions, which they keep
    there."""
    y = conv.strided_conv4x4(x, kernel)
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
    # reductions still YNNPACK's, not XLA's own reduce-window trees (as when
    # the option names matrix products only).
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    x = jnp.zeros((64, 16, 16, 64), jnp.float32)
    kernel = jnp.zeros((4, 4, 64, 128), jnp.float32)
    grad_fn = jax.grad(_conv_bn_loss, argnums=(0, 1))
    text = xla_options.jit(grad_fn).lower(x, kernel).compile().as_text()
    fusions = [block for block in text.split('\n\n') if '__ynn_fusion' in block]
    ynn_computations = {line.split('calls=')[1].split(',')[0] for block in fusions
                        for line in block.splitlines() if '__ynn_fusion' in line}
    assert ynn_computations  # the reductions (and any dot) are YNNPACK's
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
    # The top-level call compiled the variant with options, and only it.
    assert double._top._cache_size() == 1 and double._nested._cache_size() == 0
    np.testing.assert_allclose(jax.jit(lambda v: double(v) + 1.0)(x), 2.0 * x + 1.0)
    # Inside a trace with concrete arguments (a closed-over constant).
    np.testing.assert_allclose(jax.jit(lambda: double(np.arange(6.0)))(), 2.0 * x)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(double(v)))(x), 2.0 * np.ones(6))
    assert 'mul' in str(jax.make_jaxpr(double)(x))
    assert double._top._cache_size() == 1
    assert double.__name__ == '<lambda>'


def test_wrapping_a_jitted_function_keeps_the_outer_arguments(monkeypatch):
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    inner = xla_options.jit(lambda v: v + 1.0)
    outer = xla_options.jit(inner, donate_argnums=0)
    assert outer._top is not inner._top
    x = jnp.arange(3.0)
    np.testing.assert_allclose(outer(x), np.arange(3.0) + 1.0)
    assert x.is_deleted()  # donated


def test_without_jax_trace_state_the_fallbacks_still_nest(monkeypatch):
    # Where jax.extend.core.get_opaque_trace_state is missing: tracer
    # arguments, and the ValueError jax raises for options inside a trace
    # (a closure with concrete arguments), both take the plain jit.
    monkeypatch.delenv('XLA_FLAGS', raising=False)
    monkeypatch.setattr(xla_options, '_trace_state', None)
    x = jnp.arange(6.0)
    double = xla_options.jit(lambda v: 2.0 * v)
    np.testing.assert_allclose(jax.jit(lambda v: double(v) + 1.0)(x), 2.0 * x + 1.0)
    np.testing.assert_allclose(jax.jit(lambda: double(np.arange(6.0)))(), 2.0 * x)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(double(v)))(x),
                               2.0 * np.ones(6))
    np.testing.assert_allclose(double(x), 2.0 * x)


def test_only_unknown_options_count_as_unsupported():
    for options in ({'xla_no_such_option_anywhere': 'x'},
                    {'xla_cpu_experimental_ynn_fusion_type': 'NO_SUCH_VALUE'}):
        with pytest.raises(jax.errors.JaxRuntimeError) as error:
            jax.jit(lambda v: v + 1, compiler_options=options).lower(
                jnp.zeros(())).compile()
        assert xla_options._is_unsupported(error.value)
    assert not xla_options._is_unsupported(
        RuntimeError('RESOURCE_EXHAUSTED: out of memory'))
