"""The driver: `run(config, workdir, sweep=None)` trains a GAN, or the members
of a sweep, with everything that has side effects (files, logging,
checkpoints, evaluation, clocks). It wires a runner (`gan_jax.runners`: what
one compiled call advances) to hooks (`gan_jax.hooks`: what happens at
intervals); the update itself is `gan_jax.train`. Nothing in the library
imports this module."""
import json
import logging
import time
from typing import Any, Dict, Optional, Tuple

import ml_collections

from gan_jax import checkpoint, experiment, hooks, runners, sweep as sweep_lib
from gan_jax import workdir as workdir_lib
from gan_jax.state import GANState

log = logging.getLogger(__name__)

# The errors a launcher turns into one line on stderr.
NonFiniteError = hooks.NonFiniteError
WorkdirError = workdir_lib.WorkdirError


def run(config: ml_collections.ConfigDict, workdir: str, *,
        sweep: Optional[sweep_lib.Sweep] = None, members: str = 'auto') -> GANState:
    """Trains `config` (or every member of `sweep`) in `workdir`, resuming from
    its latest checkpoint. `members` ('auto', 'vmap', 'unroll'; see
    sweep.make_sweep_step) changes a sweep's speed, not its result.

    Writes config.json (and sweep.json), metrics.jsonl, eval.jsonl,
    TensorBoard events, samples/ and checkpoints/ under workdir, nothing
    elsewhere (see gan_jax.workdir).

    Returns:
      the final GANState (stacked over members [K, ...] for a sweep).
    Raises:
      ConfigError: bad config or sweep, or an incompatible workdir (nothing
        written).
      NonFiniteError: a guarded metric became NaN/inf with nan_policy='stop'
        (the last good checkpoint is kept; sweeps never stop).
    """
    prepared = experiment.prepare(config, workdir, sweep, members=members)
    wd = workdir_lib.Workdir(workdir)
    wd.write_config(config, prepared.runtime, sweep and sweep.to_json())
    log.info('devices: %d (%s), processes: %d, per-device batch: %d',
             *(prepared.runtime[k] for k in ('devices', 'platform', 'processes',
                                             'per_device_batch')))
    ckpt = checkpoint.Checkpointer(wd.path('checkpoints'),
                                   max_to_keep=config.keep_checkpoints)
    best = hooks.BestCheckpoint(wd, config) if config.best_metric else None
    from tqdm import tqdm
    bar = None
    try:
        runner = runners.make(prepared, ckpt, members=members)
        if runner.step:
            log.info('resumed from step %d', runner.step)
        wd.truncate_logs(runner.step)
        bar = tqdm(total=config.num_steps, initial=runner.step, unit='step',
                   disable=not (config.progress and wd.is_main), dynamic_ncols=True)
        guard = hooks.NonFiniteGuard(config.nan_policy, ckpt)
        stop = hooks.StopOnSignal(ckpt, guard)
        every = (config.num_steps,)
        periodic = [
            hooks.LogMetrics(wd, config.log_every, *every, guard,
                             start_step=runner.step, bar=bar),
            hooks.Checkpoint(ckpt, config.checkpoint_every, *every, guard),
            hooks.Samples(wd, config.sample_every, *every, config=config,
                          info=prepared.info, G=prepared.G),
            hooks.Evaluate(wd, config.eval_every, *every,
                           evaluators=prepared.evaluators, G=prepared.G,
                           z_dim=config.model.z_dim, sweep=sweep, best=best),
            stop]
        with stop.installed():
            while runner.step < config.num_steps:
                bar.update(runner.advance())
                if any([hook(runner.step, runner) for hook in periodic]):
                    break
        ckpt.wait()  # a failed asynchronous save is reported here, not lost
    finally:
        for closable in (bar, ckpt, best, wd):
            if closable is not None:
                closable.close()
    return runner.final_state()


def run_trials(config: ml_collections.ConfigDict, trials: int, workdir: str, *,
               members: str = 'auto') -> Tuple[Dict[str, Any], float]:
    """Trains `trials` seeds (config.seed + i) of `config` as one sweep in
    `workdir` (resuming it if present) and returns (its summary row, wall
    seconds): the row maps each final evaluation metric to {'mean', 'sem',
    'excluded'} over the trials, as `sweep.summarize`."""
    start = time.perf_counter()
    run(config, workdir, sweep=sweep_lib.Sweep.build(seeds=trials), members=members)
    seconds = time.perf_counter() - start
    with open(workdir_lib.Workdir(workdir, is_main=True).path(
            workdir_lib.SUMMARY_FILE)) as f:
        return json.load(f)['rows'][0], seconds
