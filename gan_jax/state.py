"""GANState: the whole training state of a GAN as one pytree (after magvit's
VQGANTrainState), so that one checkpoint, one `jax.jit` argument and one
`jax.vmap` axis carry everything that determines the future of a run."""
from typing import Any, Dict, Optional, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import models
from gan_jax.types import PRNGKey, PyTree

# Order of the metrics whose non-finiteness is recorded in
# `stats['first_nonfinite_mask']` (bit i = GUARDED_METRICS[i]).
GUARDED_METRICS = ('loss/d', 'loss/g', 'grad_norm/d', 'grad_norm/g')


@flax.struct.dataclass
class GANState:
    """Everything a GAN run carries from one update to the next.

    Attributes:
      step: int32 scalar, the number of completed generator updates.
      g_params, d_params: the networks' 'params' collections.
      g_state, d_state: their other variable collections (e.g. 'batch_stats'),
        {} when they have none.
      g_opt_state, d_opt_state: optax states (they hold the schedule position).
      ema_params: exponential moving average of g_params, used for sampling
        and evaluation.
      rng: uint32[2] key; step t uses fold_in(rng, t).
      stats: int32 scalars: 'nonfinite_steps' (updates with a non-finite
        guarded metric), 'first_nonfinite_step' (-1 if none) and
        'first_nonfinite_mask' (which of GUARDED_METRICS were non-finite).
    """
    step: jax.Array
    g_params: PyTree
    d_params: PyTree
    g_state: Dict[str, PyTree]
    d_state: Dict[str, PyTree]
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    ema_params: PyTree
    rng: PRNGKey
    stats: Dict[str, jax.Array]


def _split_variables(variables: Dict[str, Any]):
    variables = flax.core.unfreeze(variables)
    params = variables.pop('params')
    return params, variables


def create_state(rng: PRNGKey, G: nn.Module, D: nn.Module,
                 g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, *, z_dim: int,
                 data_shape: Sequence[int],
                 labels: Optional[jax.Array] = None) -> GANState:
    """Initialises both networks, their optimizers and the EMA.

    Args:
      rng: uint32[2] key (jax.random.PRNGKey(seed)).
      G, D: generator and discriminator modules.
      g_tx, d_tx: their optax optimizers.
      z_dim: latent size.
      data_shape: shape of one sample, e.g. (2,) or (32, 32, 3).
      labels: optional int32 [n] labels for conditional models.
    Returns:
      a GANState at step 0.
    """
    g_rng, d_rng, run_rng = jax.random.split(rng, 3)
    # Enough samples to fill one pack of the discriminator (PacGAN) twice.
    n = 2 * max(1, models.pack_of(D))
    z = jnp.zeros((n, z_dim), jnp.float32)
    x = jnp.zeros((n,) + tuple(data_shape), jnp.float32)
    if labels is not None:
        labels = jnp.resize(labels, (n,))
    g_params, g_state = _split_variables(G.init(g_rng, z, labels, train=False))
    d_params, d_state = _split_variables(D.init(d_rng, x, labels, train=False))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        d_params=d_params,
        g_state=g_state,
        d_state=d_state,
        g_opt_state=g_tx.init(g_params),
        d_opt_state=d_tx.init(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params),
        rng=run_rng,
        stats={
            'nonfinite_steps': jnp.zeros((), jnp.int32),
            'first_nonfinite_step': jnp.full((), -1, jnp.int32),
            'first_nonfinite_mask': jnp.zeros((), jnp.int32),
        },
    )
