"""Moved to gan_jax.ops.xla_options (kept while importers move)."""
from gan_jax.ops.xla_options import compiler_options, jit  # noqa: F401
