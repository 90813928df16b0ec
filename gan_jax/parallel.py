"""Devices, mesh and shardings, on one host or across hosts.

One `data` mesh axis spans the devices; batches are split over it and the
GANState is replicated, so the update step is plain data parallelism that XLA
compiles from the shardings (gradients are all-reduced, and BatchNorm
statistics are those of the global batch, as on one device). A second mesh
axis for model parallelism fits here later; nothing else assumes one axis.

Several processes (GPU hosts, TPU pod slices, or processes on one machine)
join through `jax.distributed.initialize`, configured by environment
variables (see `initialize_distributed`); each then feeds its own slice of
every global batch. Work that needs no collective inside it (evaluation:
sampling and feature extraction) is split into contiguous per-process shares
(`process_share`) and its results joined with `allgather` / `allgather_rows`.
"""
import logging
import os
from typing import Any, Optional, Sequence, Tuple

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


def process_share(num: int, process_index: Optional[int] = None,
                  process_count: Optional[int] = None) -> Tuple[int, int]:
    """Rows [lo, hi) of `num` rows that one process handles.

    The shares are contiguous, in process order, tile 0..num exactly once and
    differ in size by at most one (lo = num * i // P). One process: (0, num).

    Args:
      num: rows in all (>= 0).
      process_index, process_count: default this process's.
    """
    i = jax.process_index() if process_index is None else process_index
    p = jax.process_count() if process_count is None else process_count
    return num * i // p, num * (i + 1) // p


def allgather(x: Any) -> np.ndarray:
    """[P, *x.shape]: every process's `x` (same shape and dtype on each),
    stacked in process order, on every process.

    Exact for every dtype: the bytes travel (as uint8), so float64 and int64
    stay what they were even where jax runs without x64. One process:
    x[None], no collective. Every process must call it, in the same order
    as the others' calls.
    """
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x[None]
    from jax.experimental import multihost_utils
    raw = np.ascontiguousarray(x).reshape(1, -1).view(np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(raw, tiled=True))
    return np.ascontiguousarray(gathered).view(x.dtype).reshape(
        (jax.process_count(),) + x.shape)


def allgather_rows(x: Any) -> np.ndarray:
    """The concatenation over processes, in process order, of each one's rows
    x [n_i, ...] (n_i may differ; trailing shape and dtype must not).

    With `process_share` shares this reassembles the rows of all processes in
    their global order. One process: x itself. A collective, as `allgather`.
    """
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x
    counts = allgather(np.int64(len(x)))
    if not counts.any():
        return x
    padded = np.zeros((int(counts.max()),) + x.shape[1:], x.dtype)
    padded[:len(x)] = x
    parts = allgather(padded)
    return np.concatenate([part[:int(n)] for part, n in zip(parts, counts)])
