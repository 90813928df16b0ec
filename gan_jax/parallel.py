"""Devices, mesh and shardings, on one host or across hosts.

One `data` mesh axis spans the devices; batches are split over it and the
GANState is replicated, so the update step is plain data parallelism that XLA
compiles from the shardings (gradients are all-reduced, and BatchNorm
statistics are those of the global batch, as on one device). A second mesh
axis for model parallelism fits here later; nothing else assumes one axis.

Several processes (GPU hosts, TPU pod slices, or processes on one machine)
join through `jax.distributed.initialize`, configured by environment
variables (see `initialize_distributed`); each then feeds its own slice of
every global batch.
"""
import logging
import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

log = logging.getLogger(__name__)

# Environment variables of a multi-process run (all processes set the same
# coordinator and count, each its own id).
COORDINATOR_ENV = 'GAN_JAX_COORDINATOR'      # host:port of process 0
NUM_PROCESSES_ENV = 'GAN_JAX_NUM_PROCESSES'
PROCESS_ID_ENV = 'GAN_JAX_PROCESS_ID'
# 'auto': let JAX detect the cluster (TPU pods, SLURM, Open MPI).
DISTRIBUTED_ENV = 'GAN_JAX_DISTRIBUTED'


def initialize_distributed() -> bool:
    """Joins a multi-process run when the environment asks for one.

    Either GAN_JAX_COORDINATOR=host:port, GAN_JAX_NUM_PROCESSES=n and
    GAN_JAX_PROCESS_ID=i (any platform; CPU processes use gloo collectives),
    or GAN_JAX_DISTRIBUTED=auto (JAX's cluster detection). Must run before
    anything touches a device.

    Returns:
      True when this process joined a multi-process run.
    Raises:
      ValueError: an incomplete or malformed set of variables.
    """
    if os.environ.get(DISTRIBUTED_ENV) == 'auto':
        jax.distributed.initialize()
        return True
    coordinator = os.environ.get(COORDINATOR_ENV)
    if not coordinator:
        return False
    try:
        num_processes = int(os.environ[NUM_PROCESSES_ENV])
        process_id = int(os.environ[PROCESS_ID_ENV])
    except (KeyError, ValueError):
        raise ValueError(f'{COORDINATOR_ENV} is set, so {NUM_PROCESSES_ENV} and '
                         f'{PROCESS_ID_ENV} must be integers too') from None
    if not 0 <= process_id < num_processes:
        raise ValueError(f'{PROCESS_ID_ENV}={process_id} must lie in '
                         f'0..{num_processes - 1}')
    platforms = os.environ.get('JAX_PLATFORMS', '')
    if platforms in ('', 'cpu'):
        # CPU devices need a collectives backend to talk across processes.
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=coordinator,
                               num_processes=num_processes, process_id=process_id)
    return True


def make_mesh(devices: Optional[Sequence[jax.Device]] = None, *,
              num_devices: int = 0) -> Mesh:
    """A 1-D mesh named ('data',).

    Args:
      devices: the devices; default all devices of all processes.
      num_devices: use only the first n of them (0 = all); one process only.
    """
    devices = list(jax.devices() if devices is None else devices)
    if num_devices:
        if jax.process_count() > 1 and num_devices != len(devices):
            raise ValueError('parallel.num_devices must be 0 (all devices) in a '
                             'multi-process run')
        if num_devices > len(devices):
            raise ValueError(f'parallel.num_devices={num_devices} but only '
                             f'{len(devices)} devices exist')
        devices = devices[:num_devices]
    return Mesh(np.asarray(devices), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device (used for the GANState)."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Splits axis 1 (the per-update batch axis of [n_critic, B, ...]) over
    'data'."""
    return NamedSharding(mesh, P(None, 'data'))


def rows_sharding(mesh: Mesh) -> NamedSharding:
    """Splits axis 0 (e.g. latents [N, z_dim] for sampling) over 'data'."""
    return NamedSharding(mesh, P('data'))


def local_copy(tree: Any) -> Any:
    """Each replicated global array as this process's own single-device copy.

    Lets one process run computations (sampling for figures) that the other
    processes do not join. Arrays split across processes are refused.
    """
    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return x
        if not x.is_fully_replicated:
            raise ValueError('local_copy needs replicated arrays; this one is split '
                             f'over processes (sharding {x.sharding})')
        return x.addressable_data(0)
    return jax.tree.map(one, tree)
