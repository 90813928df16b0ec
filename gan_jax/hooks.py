"""Periodic actions of the training loop, in the manner of clu's periodic
actions: each is called as `hook(step, runner)` after every compiled call
and acts when its interval falls due (and always at the last step), so each
can be tested alone with a stand-in runner.

The runner (`gan_jax.runners`) is a single run or a sweep; hooks treat both
alike through `runner.metric_records()`, `runner.members()`,
`runner.saved_state()` and `runner.nonfinite()`.
"""
import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any, Dict, List, Optional

import ml_collections
import numpy as np

from gan_jax import checkpoint, sampling, sweep as sweep_lib
from gan_jax import workdir as workdir_lib

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """A guarded training metric became NaN or infinite."""


class Periodic:
    """Due every `every` steps (0: never before the end) and at `num_steps`."""

    def __init__(self, every: int, num_steps: int):
        self.every, self.num_steps = every, num_steps

    def due(self, step: int) -> bool:
        return step == self.num_steps or (self.every > 0 and step % self.every == 0)


class NonFiniteGuard:
    """Raises NonFiniteError when nan_policy is 'stop' and the runner saw a
    non-finite guarded metric; called before every checkpoint and log, so the
    last checkpoint on disk is always a good one."""

    def __init__(self, nan_policy: str, ckpt: checkpoint.Checkpointer):
        self.nan_policy, self.ckpt = nan_policy, ckpt

    def check(self, runner) -> None:
        if self.nan_policy != 'stop':
            return
        problem = runner.nonfinite()
        if problem:
            raise NonFiniteError(
                f'{problem}; training stopped and the last good checkpoint (step '
                f'{self.ckpt.latest_step()}) is kept. Lower the learning rates, add '
                'a penalty, or set --config.nan_policy=skip')


class LogMetrics(Periodic):
    """metrics.jsonl lines and TensorBoard scalars of the last step's metrics
    (one line per member for a sweep), with perf/steps_per_sec over the
    window since the last log and perf/wall_s since the first step; then the
    NaN guard."""

    def __init__(self, wd: workdir_lib.Workdir, every: int, num_steps: int,
                 guard: NonFiniteGuard, *, start_step: int = 0, bar: Any = None):
        super().__init__(every, num_steps)
        self.wd, self.guard, self.bar = wd, guard, bar
        self._start = self._window_start = time.perf_counter()
        self._window_step = start_step

    def __call__(self, step: int, runner) -> None:
        if not self.due(step):
            return
        records = runner.metric_records()
        now = time.perf_counter()
        perf = {'perf/steps_per_sec': (step - self._window_step) /
                max(now - self._window_start, 1e-9),
                # Seconds since this process started its first step: for
                # plots against wall time and the loop benchmark.
                'perf/wall_s': now - self._start}
        self._window_start, self._window_step = now, step
        for record in records:
            record.update(perf)
            self.wd.append(workdir_lib.METRICS_FILE, {'step': step, **record})
            self.wd.scalars(record, step, record.get('member'))
        if self.bar is not None and len(records) == 1:
            self.bar.set_postfix({k: f'{records[0][k]:.3g}' for k in ('loss/d', 'loss/g')})
        self.guard.check(runner)


class Checkpoint(Periodic):
    """Saves the runner's state (asynchronously), after the NaN guard."""

    def __init__(self, ckpt: checkpoint.Checkpointer, every: int, num_steps: int,
                 guard: NonFiniteGuard):
        super().__init__(every, num_steps)
        self.ckpt, self.guard = ckpt, guard

    def __call__(self, step: int, runner) -> None:
        if self.due(step):
            self.guard.check(runner)
            self.ckpt.save(runner.saved_state())


class Samples(Periodic):
    """Figures of the EMA generator on fixed latents: 8x8 image grids or 2-D
    scatter plots, in samples/step_S.png (sweep member i:
    samples/member_i/step_S.png)."""

    def __init__(self, wd: workdir_lib.Workdir, every: int, num_steps: int, *,
                 config: ml_collections.ConfigDict, info: Any, G: Any):
        super().__init__(every, num_steps)
        self.wd, self.config, self.info, self.G = wd, config, info, G
        self.z = sampling.latents(config.seed + 1,
                                  2500 if info.kind == 'points' else 64,
                                  config.model.z_dim)

    def __call__(self, step: int, runner) -> None:
        if not self.due(step) or not self.wd.is_main:
            return
        for member in runner.members():
            samples = sampling.sample(self.G, member.state.ema_params,
                                      member.state.g_state, self.z,
                                      sampling.class_labels(self.G, self.z.shape[0]))
            folder = ('samples' if member.index is None
                      else os.path.join('samples', f'member_{member.index}'))
            os.makedirs(self.wd.path(folder), exist_ok=True)
            path = self.wd.path(folder, f'step_{step:07d}.png')
            if self.info.kind == 'images':
                sampling.save_image_grid(samples, path)
            else:
                who = '' if member.index is None else f' member {member.index},'
                sampling.save_scatter(
                    samples, path, centers=self.info.extras.get('centers'),
                    title=f'{self.config.dataset},{who} EMA generator, step {step}')


class BestCheckpoint:
    """Keeps the checkpoint with the best config.best_metric so far in
    checkpoints_best/ and its step and value in best.json. A sweep is judged
    by the mean of the metric over its members with finite values."""

    def __init__(self, wd: workdir_lib.Workdir, config: ml_collections.ConfigDict):
        self.wd, self.metric = wd, config.best_metric
        self.key = f'eval/{config.best_metric}'
        self.sign = 1.0 if config.best_mode == 'min' else -1.0
        self.ckpt = checkpoint.Checkpointer(wd.path('checkpoints_best'), max_to_keep=1)
        self.value = wd.read_best(self.metric)

    def offer(self, step: int, runner, records: List[Dict[str, Any]]) -> None:
        missing = [r for r in records if self.key not in r]
        if missing:
            raise KeyError(f'best_metric {self.metric!r} is not among the '
                           f'evaluated metrics {sorted(missing[0])}')
        values = np.asarray([r[self.key] for r in records], np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            return
        value = float(np.mean(values))
        if self.value is not None and self.sign * value >= self.sign * self.value:
            return
        self.ckpt.save(runner.saved_state())
        self.ckpt.wait()  # best.json must never point at an unfinished save
        self.value = value
        self.wd.write_best(self.metric, value, step)
        log.info('new best %s = %.5g at step %d', self.metric, value, step)

    def close(self) -> None:
        self.ckpt.close()


class Evaluate(Periodic):
    """Scores every member's EMA generator with the evaluators into
    eval.jsonl and TensorBoard (sweep records carry 'member' and 'seed');
    then offers the round to the best checkpoint and, for a sweep, writes
    summary.json / summary.md (mean ± standard error over members)."""

    def __init__(self, wd: workdir_lib.Workdir, every: int, num_steps: int, *,
                 evaluators: Dict[str, Any], G: Any, z_dim: int,
                 sweep: Optional[sweep_lib.Sweep] = None,
                 best: Optional[BestCheckpoint] = None):
        super().__init__(every, num_steps)
        self.wd, self.evaluators, self.G, self.z_dim = wd, evaluators, G, z_dim
        self.sweep, self.best = sweep, best

    def __call__(self, step: int, runner) -> None:
        if not self.due(step) or not self.evaluators:
            return
        records = []
        for member in runner.members():
            # One sampling function per member and round: features are shared
            # by the evaluators.
            sample_fn = sampling.sample_fn(self.G, member.state.ema_params,
                                           member.state.g_state, self.z_dim,
                                           mesh=runner.sample_mesh)
            record: Dict[str, Any] = {'step': step}
            if member.index is not None:
                record.update(member=member.index, seed=member.seed)
            for name, evaluator in self.evaluators.items():
                for key, value in evaluator.run(sample_fn):
                    record[f'eval/{name}/{key}'] = value
            self.wd.append(workdir_lib.EVAL_FILE, record)
            self.wd.scalars(record, step, member.index)
            log.info('eval at step %d: %s', step, record)
            records.append(record)
        if self.sweep is not None:
            rows = sweep_lib.summarize(records, self.sweep)
            table = sweep_lib.summary_markdown(rows)
            self.wd.write_summary(step, rows, table)
            log.info('summary at step %d (mean ± standard error over members):\n%s',
                     step, table)
        if self.best is not None:
            self.best.offer(step, runner, records)


class StopOnSignal:
    """SIGTERM/SIGINT: the first signal asks the loop to stop after the
    current step, with a checkpoint (the hook returns True then); a second
    one exits at once. Handlers are installed only on the main thread."""

    def __init__(self, ckpt: checkpoint.Checkpointer, guard: NonFiniteGuard):
        self.ckpt, self.guard = ckpt, guard
        self.signal_name: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signal_name is not None:
            log.warning('second %s: exiting now, without a checkpoint',
                        signal.Signals(signum).name)
            os._exit(128 + signum)
        self.signal_name = signal.Signals(signum).name
        log.warning('%s received: finishing the current step and saving a '
                    'checkpoint (send it again to exit at once)', self.signal_name)

    @contextlib.contextmanager
    def installed(self):
        """Installs the handlers for the duration of the block."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def __call__(self, step: int, runner) -> bool:
        if self.signal_name is None:
            return False
        self.guard.check(runner)
        self.ckpt.save(runner.saved_state())
        self.ckpt.wait()
        log.warning('stopped by %s at step %d; checkpoint saved, run again with '
                    'the same workdir to resume', self.signal_name, step)
        return True
