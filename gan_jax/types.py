"""Type aliases shared across gan_jax."""
from typing import Any, Dict

import jax

PyTree = Any
PRNGKey = jax.Array
Batch = Dict[str, jax.Array]    # {'x': [B, ...] data, optionally 'label': [B]}
Metrics = Dict[str, jax.Array]  # scalar arrays keyed by slash names
