"""Runners: what `loop.run` advances, one compiled call at a time.

`SingleRunner` trains one GAN over the device mesh (`train.make_train_step`
or `make_multi_step`); `SweepRunner` trains the K members of a sweep in
chunks (`sweep.make_sweep_step`, members vmapped or unrolled). Both offer the
same surface to the hooks (`gan_jax.hooks`): `step`, `advance()`,
`metric_records()`, `nonfinite()`, `saved_state()`, `members()`,
`sample_mesh`, `final_state()`.

Both keep at most two compiled calls in flight (`DispatchWindow`): see its
docstring for the deadlock that an unbounded queue of launches caused.
"""
import collections
import dataclasses
import logging
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import checkpoint, data, parallel, sweep as sweep_lib
from gan_jax import train
from gan_jax.data import images
from gan_jax.experiment import Prepared
from gan_jax.state import GUARDED_METRICS, GANState

log = logging.getLogger(__name__)


class DispatchWindow:
    """Keeps at most `depth` compiled calls in flight.

    JAX dispatches asynchronously: without a bound, the host queues launch
    after launch while the devices work through them. On XLA:CPU with several
    devices (`--xla_force_host_platform_device_count=8`) that deadlocked: each
    device's share of a launch runs on a shared pool of host threads, and a
    collective (the gradient all-reduce, the batch-norm all-gather) holds its
    thread until all 8 participants arrive; with many launches queued, one
    participant of the oldest collective never got to run, and after 40 s
    XLA aborted the process ("Expected 8 threads to join the rendezvous, but
    only 7 of them arrived"). A 20-line jitted all-reduce loop reproduces it
    within seconds on the 2-core Zen 5 CPU, with or without a data thread,
    and with `jax_cpu_enable_async_dispatch` off; waiting for launch N-1
    after dispatching launch N made it run 3,000 steps.

    Two in flight keep an accelerator busy (launch N runs while the host
    prepares N+1) and bound the host memory held by queued batches, so the
    window applies on every backend. Programs other than the step (sampling,
    evaluation, checkpoint copies) run after `drain()`.
    """

    def __init__(self, depth: int = 2):
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        self.depth = depth
        self._pending: collections.deque = collections.deque()

    def launched(self, outputs: Any) -> None:
        """Records a launch by (some of) its outputs; blocks until the oldest
        launches have finished when more than `depth` are in flight."""
        self._pending.append(outputs)
        while len(self._pending) >= self.depth:
            jax.block_until_ready(self._pending.popleft())

    def drain(self) -> None:
        """Blocks until every recorded launch has finished."""
        while self._pending:
            jax.block_until_ready(self._pending.popleft())


@dataclasses.dataclass
class Member:
    """One trained GAN of a runner, for sampling and evaluation.

    Attributes:
      index: the sweep member index, or None for a single run.
      seed: its seed.
      state: its GANState, as this process's local (unsharded) copy.
    """
    index: Optional[int]
    seed: int
    state: GANState


def steps_in_next_call(config: ml_collections.ConfigDict, step: int) -> int:
    """How many update steps the next compiled call after `step` runs:
    config.steps_per_call when no log, checkpoint, sample or evaluation falls
    due strictly inside that block and it ends by num_steps, else 1 (so every
    such event still sees the state of its own step)."""
    k = config.steps_per_call
    if k <= 1 or step + k > config.num_steps:
        return 1
    for inner in range(step + 1, step + k):
        for every in (config.log_every, config.checkpoint_every,
                      config.sample_every, config.eval_every):
            if every > 0 and inner % every == 0:
                return 1
    return k


def describe_nonfinite(stats: Dict[str, Any]) -> Optional[str]:
    """'non-finite loss/d at step 12' from GANState.stats, or None when no
    guarded metric has been non-finite."""
    if int(stats['first_nonfinite_step']) < 0:
        return None
    mask = int(stats['first_nonfinite_mask'])
    names = [n for i, n in enumerate(GUARDED_METRICS) if mask >> i & 1]
    return (f'non-finite {", ".join(names) or "metric"} at step '
            f'{int(stats["first_nonfinite_step"])}')


class SingleRunner:
    """One GAN, its state replicated over the mesh and every batch split over
    it (see gan_jax.parallel)."""

    def __init__(self, prepared: Prepared, ckpt: checkpoint.Checkpointer):
        config, mesh, spec = prepared.config, prepared.mesh, prepared.spec
        self.config = config
        self.sample_mesh = mesh
        state_sharding = parallel.replicated(mesh)
        batch_sharding = parallel.batch_sharding(mesh)
        # Placed on the mesh before restoring, so that Orbax restores straight
        # into the global (replicated) arrays, also across processes.
        self.state = ckpt.restore_or_init(
            jax.device_put(prepared.init_state, state_sharding))
        self.step = int(self.state.step)
        self._batches = data.make_train_iter(config, start_step=self.step,
                                             sharding=batch_sharding)
        self._step_fn = train.make_train_step(spec, state_sharding=state_sharding,
                                              batch_sharding=batch_sharding)
        self._spec = spec
        self._multi_fn = None
        if config.steps_per_call > 1:
            self._multi_fn = train.make_multi_step(
                spec, config.steps_per_call, state_sharding=state_sharding,
                batch_sharding=batch_sharding)
        self._window = DispatchWindow()
        self._metrics = None

    def advance(self) -> int:
        """Dispatches the next compiled call; returns the steps it runs."""
        n = steps_in_next_call(self.config, self.step)
        if n > 1:
            self.state, self._metrics = self._multi_fn(
                self.state, tuple(next(self._batches) for _ in range(n)))
        else:
            self.state, self._metrics = self._step_fn(
                self.state, next(self._batches),
                train.reg_phases(self._spec, self.step))
        self._window.launched(self._metrics)
        self.step += n
        return n

    def metric_records(self) -> List[Dict[str, float]]:
        """[the last call's final-step metrics as floats] (syncs)."""
        return [{k: float(v) for k, v in jax.device_get(self._metrics).items()}]

    def nonfinite(self) -> Optional[str]:
        """What `describe_nonfinite` says of the state (syncs)."""
        return describe_nonfinite(jax.device_get(self.state.stats))

    def saved_state(self) -> GANState:
        """The state a checkpoint holds."""
        return self.state

    def members(self) -> List[Member]:
        """[the run], its state as a local copy: every process samples its
        own copy, so a figure on process 0 needs no collective."""
        self._window.drain()
        return [Member(None, self.config.seed, parallel.local_copy(self.state))]

    def final_state(self) -> GANState:
        self._window.drain()
        return self.state


class SweepRunner:
    """The K members of a sweep on one device, in chunks of
    sweep.chunk_size members per compiled call; every chunk advances each
    step, so a checkpoint holds all members at one step."""

    def __init__(self, prepared: Prepared, ckpt: checkpoint.Checkpointer, *,
                 members: str = 'auto'):
        config, sweep, spec = prepared.config, prepared.sweep, prepared.spec
        self.config, self.sweep = config, sweep
        self.sample_mesh = None
        state = ckpt.restore_or_init(prepared.init_state)
        self.step = int(state.step[0])
        log.info('sweep of %d members in %d chunk(s), from step %d',
                 sweep.num_members, len(sweep.chunks()), self.step)
        if members == 'auto':
            one_batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                     next(data.host_batches(config)))
            members = sweep_lib.choose_member_mode(
                spec, sweep_lib.member_of(prepared.init_state, 0), one_batch)
        self.mode = members
        log.info('members: %s', members)
        self._step_fn = sweep_lib.make_sweep_step(
            spec, shared_data=sweep.shared_data, members=members)
        self._multi_fn = (sweep_lib.make_sweep_step(
            spec, shared_data=sweep.shared_data, steps=config.steps_per_call,
            members=members) if config.steps_per_call > 1 else None)
        self.chunks = sweep.chunks()
        hparams = sweep_lib.member_hparams(config, sweep)
        # Placed on the device here: a host (numpy) state would be copied
        # implicitly inside the first call.
        self._states = [sweep_lib.as_step_state(jax.device_put(
            jax.tree.map(lambda x: x[lo:hi], state)), members)
            for lo, hi in self.chunks]
        self._hparams = [{k: jnp.asarray(v[lo:hi]) for k, v in hparams.items()}
                         for lo, hi in self.chunks]
        # Batches go onto the device on the prefetch thread, ahead of the
        # call that takes them, and images travel as uint8 and are flipped
        # and scaled there (as a single run's do, bit for bit the host's
        # values): finishing K members' images on the host took 43 ms per
        # step for 16 DCGAN members at batch 64 on the 2-core CPU, against
        # 1.1 ms for their uint8 batches, more than an accelerator's step.
        finish = (images.finish_on_device if prepared.info.kind == 'images'
                  else (lambda b: b))
        self._streams = [data.prefetch(
            (finish(jax.device_put(b)) for b in sweep_lib.member_batches(
                config, sweep, lo, hi, self.step, raw=True)), config.data.prefetch)
            for lo, hi in self.chunks]
        self._window = DispatchWindow()
        self._metrics: List[Any] = []

    def advance(self) -> int:
        """Dispatches the next call of every chunk; returns the steps run."""
        n = steps_in_next_call(self.config, self.step)
        self._metrics = []
        for c, stream in enumerate(self._streams):
            if n > 1:
                self._states[c], m = self._multi_fn(
                    self._states[c], tuple(next(stream) for _ in range(n)),
                    self._hparams[c])
            else:
                self._states[c], m = self._step_fn(self._states[c], next(stream),
                                                   self._hparams[c])
            self._window.launched(m)
            self._metrics.append(m)
        self.step += n
        return n

    def metric_records(self) -> List[Dict[str, float]]:
        """One record per member, with a 'member' entry (syncs)."""
        records = []
        values = [sweep_lib.stack(m) if isinstance(m, tuple) else m
                  for m in jax.device_get(self._metrics)]
        for (lo, _), chunk_metrics in zip(self.chunks, values):
            for j in range(len(chunk_metrics['loss/d'])):
                records.append({'member': lo + j,
                                **{k: float(v[j]) for k, v in chunk_metrics.items()}})
        return records

    def nonfinite(self) -> Optional[str]:
        """None: a member's NaN never stops the others (its metrics and its
        `nonfinite_steps` count show it)."""
        return None

    def saved_state(self) -> GANState:
        """The stacked state of all members [K, ...]."""
        stacked = [sweep_lib.stack(c) if isinstance(c, tuple) else c
                   for c in self._states]
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *stacked)

    def members(self) -> List[Member]:
        self._window.drain()
        stacked = self.saved_state()
        return [Member(i, self.config.seed + i, sweep_lib.member_of(stacked, i))
                for i in range(self.sweep.num_members)]

    def final_state(self) -> GANState:
        self._window.drain()
        return self.saved_state()


def make(prepared: Prepared, ckpt: checkpoint.Checkpointer, *,
         members: str = 'auto'):
    """The runner of a prepared run, its state restored from `ckpt`;
    `members` ('auto', 'vmap', 'unroll') applies to sweeps."""
    if prepared.sweep is None:
        return SingleRunner(prepared, ckpt)
    return SweepRunner(prepared, ckpt, members=members)
