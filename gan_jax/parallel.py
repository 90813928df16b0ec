"""Device mesh and shardings: one `data` axis over all devices; batches are
split over it, the state is replicated."""
from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh named ('data',) over `devices` (default: all devices)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device (used for the GANState)."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Splits axis 1 (the per-update batch axis of [n_critic, B, ...]) over
    'data'."""
    return NamedSharding(mesh, P(None, 'data'))
