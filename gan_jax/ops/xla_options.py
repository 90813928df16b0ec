"""XLA compiler options for our compiled functions, and `jit`, which applies them.

On XLA:CPU (jaxlib 0.10.2) YNNPACK runs matrix products, convolutions and
reductions by default. Its convolutions are the slower ones on both CPUs we
measured (docs/performance.md), while its reductions (batch norm is made of
them) are several times faster than XLA's own:
- AVX2 EPYC: YNNPACK's convolutions up to twice as slow as XLA's Eigen ones
  (4x4 stride-2, 64 -> 128 channels at batch 128, 16x16: forward 34.7 against
  18.9 ms), its reductions 4-16x faster (0.5 against 8.8 ms);
- AMD EPYC Zen 5 (AVX-512): the DCGAN-32 step 1.12x and the ResNet-32 step
  1.7x slower under XLA's default options than under ours.
So on CPU we name matrix products and reductions (the option replaces the
whole list, so reductions must be named to stay) and leave convolutions to
Eigen.

A user's own `--xla_cpu_experimental_ynn_fusion_type` in XLA_FLAGS wins: then
we add nothing. On a jaxlib that does not know the option (it answers "No
such compile option" or "not a valid enum value") we add nothing and compile
with XLA's defaults; any other error is raised.

Only public jax API: jax.jit(..., compiler_options=...), and
jax.extend.core.get_opaque_trace_state (the way flax tells trace levels
apart) to see whether a call happens inside another trace, where jax accepts
no compiler options and a plain jit runs instead. Should that function be
missing or be wrong, the ValueError jax raises for options inside a trace
sends the call to the plain jit as well. tests/test_xla_options.py pins both.
"""
import functools
import os
from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp

_YNN_OPTION = 'xla_cpu_experimental_ynn_fusion_type'
# YNNPACK for matrix products and reductions, convolutions left to Eigen.
EIGEN_CONVOLUTIONS = {
    _YNN_OPTION: 'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'}
_CPU_OPTIONS = EIGEN_CONVOLUTIONS
# What XLA answers for an option name or value this jaxlib does not know.
_UNSUPPORTED = ('No such compile option', 'not a valid enum value')
# What jax raises for compiler options on a jit called inside another trace.
_NESTED = 'can only be passed to top-level'


def _is_unsupported(error: Exception) -> bool:
    return any(text in str(error) for text in _UNSUPPORTED)


@functools.lru_cache(maxsize=None)
def _cpu_options_supported() -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(
            jnp.zeros((), jnp.float32)).compile()
    except jax.errors.JaxRuntimeError as error:
        if _is_unsupported(error):
            return False
        raise
    return True


def compiler_options() -> Optional[Dict[str, Any]]:
    """The options our compiled steps take on the default backend: on CPU,
    YNNPACK for matrix products and reductions only (see the module doc);
    None elsewhere, when XLA_FLAGS already sets the YNNPACK option, or when
    this jaxlib does not accept it."""
    if jax.default_backend() != 'cpu' or _YNN_OPTION in os.environ.get('XLA_FLAGS', ''):
        return None
    return dict(_CPU_OPTIONS) if _cpu_options_supported() else None


class _Jitted:
    """A jitted function compiled with `compiler_options()` when called at
    the top level, and as a plain jax.jit inside another trace (jax.jit,
    make_jaxpr, grad), where jax accepts no compiler options; then the outer
    computation's options apply. Attributes (lower, trace, eval_shape, ...)
    are those of the top-level jit."""

    def __init__(self, fn: Callable, jit_kwargs: Dict[str, Any]):
        # Name and docstring only: copying fn's __dict__ could overwrite ours.
        functools.update_wrapper(self, fn, updated=())
        options = compiler_options()
        self._top = jax.jit(fn, compiler_options=options, **jit_kwargs)
        self._nested = jax.jit(fn, **jit_kwargs) if options else self._top

    def __call__(self, *args, **kwargs):
        if self._nested is self._top or _inside_a_trace(args, kwargs):
            return self._nested(*args, **kwargs)
        try:
            return self._top(*args, **kwargs)
        except ValueError as error:
            # Raised while staging into an outer trace, before anything ran.
            if _NESTED not in str(error):
                raise
        return self._nested(*args, **kwargs)

    def __getattr__(self, name: str):
        if name in ('_top', '_nested') or name.startswith('__'):
            raise AttributeError(name)  # e.g. during copy, before __init__ ran
        return getattr(self._top, name)


try:  # public since jax 0.4.36; flax compares trace levels with it
    from jax.extend.core import get_opaque_trace_state as _trace_state
except ImportError:
    _trace_state = None
# The state at import, at the top level (an import inside a trace would make
# every later call look nested: plain jit, never a wrong result).
_TOP_LEVEL = _trace_state() if _trace_state is not None else None


def _inside_a_trace(args, kwargs) -> bool:
    """Whether a call happens inside a jax transformation: jax's trace state
    where this jax exposes it, else any tracer among the arguments (and the
    ValueError fallback in _Jitted.__call__ for traced closures)."""
    if _trace_state is not None:
        return _trace_state() != _TOP_LEVEL
    leaves = jax.tree.leaves((args, kwargs))
    return any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def jit(fn: Callable, **jit_kwargs) -> Callable:
    """jax.jit(fn, **jit_kwargs) with `compiler_options()` (see _Jitted)."""
    return _Jitted(fn, jit_kwargs)
