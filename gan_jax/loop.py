"""The driver: `run(config, workdir)` trains a GAN with everything that has side
effects (files, logging, checkpoints, evaluation, clocks). The update itself is
`gan_jax.train`; nothing in the library imports this module."""
import contextlib
import json
import logging
import os
import signal
import threading
import time
from typing import Any, Dict, Tuple

import jax
import ml_collections
import numpy as np

from gan_jax import checkpoint, config as config_lib, data, metrics, models
from gan_jax import parallel, sampling, state as state_lib, train

log = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
EVAL_FILE = 'eval.jsonl'
BEST_FILE = 'best.json'


class NonFiniteError(FloatingPointError):
    """A guarded training metric became NaN or infinite."""


class WorkdirError(OSError):
    """The workdir cannot be created or written."""


def _check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Refuses a workdir whose saved config differs in keys that change the
    run, and probes that the workdir is writable. Writes nothing else."""
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        changed = config_lib.changed_keys(saved, config)
        if changed and not config.allow_config_change:
            raise config_lib.ConfigError(
                f'{workdir} holds a run whose config differs in '
                f'{", ".join(changed)}; use a new --workdir, or pass '
                '--config.allow_config_change=True to resume anyway')
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, '.write_probe')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(f'workdir {workdir} is not writable ({e}); choose another '
                           '--workdir or free the disk') from None


def build(config: ml_collections.ConfigDict):
    """(info, G, D, spec, initial state) for a config; the state is not restored."""
    info = data.get_info(config)
    # Class-conditional models take one integer label per sample.
    num_classes = info.num_classes if info.label_shape == () else 0
    try:
        G, D = models.build(config, info.shape, num_classes)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    spec = train.make_spec(config, G, D)
    init_state = state_lib.create_state(
        jax.random.PRNGKey(config.seed), G, D, spec.g_tx, spec.d_tx,
        z_dim=config.model.z_dim, data_shape=info.shape,
        labels=jax.numpy.zeros((1,), jax.numpy.int32) if num_classes else None)
    return info, G, D, spec, init_state


def load_run(workdir: str, *, best: bool = False
             ) -> Tuple[ml_collections.ConfigDict, Any, Any, Any, state_lib.GANState]:
    """(config, info, G, D, state) of the latest checkpoint in a workdir, or of
    the best one by config.best_metric when `best`.

    Raises:
      FileNotFoundError: the workdir has no config.json or no checkpoint.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path} not found: is {workdir} a training workdir?')
    with open(path) as f:
        config = config_lib.from_json_dict(json.load(f))
    info, G, D, _, init_state = build(config)
    directory = os.path.join(workdir, 'checkpoints_best' if best else 'checkpoints')
    ckpt = checkpoint.Checkpointer(directory)
    if ckpt.latest_step() is None:
        ckpt.close()
        raise FileNotFoundError(f'no checkpoint in {directory}' + (
            ' (best checkpoints are kept when config.best_metric is set)'
            if best else ''))
    state = ckpt.restore_or_init(init_state)
    ckpt.close()
    return config, info, G, D, state


class _StopRequests:
    """SIGTERM/SIGINT handling for the loop: the first signal asks the loop to
    stop after the current step (it then saves a checkpoint); a second one
    exits at once. Handlers are installed only on the main thread."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

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


def _truncate_jsonl(path: str, last_step: int) -> None:
    """Drops records after `last_step`: a run killed after its last checkpoint
    had logged steps that the resumed run will log again."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = [line for line in lines if json.loads(line).get('step', 0) <= last_step]
    if len(kept) != len(lines):
        with open(path + '.tmp', 'w') as f:
            f.writelines(kept)
        os.replace(path + '.tmp', path)


def _describe_nonfinite(stats: Dict[str, Any]) -> str:
    mask = int(stats['first_nonfinite_mask'])
    names = [n for i, n in enumerate(state_lib.GUARDED_METRICS) if mask >> i & 1]
    return (f'non-finite {", ".join(names) or "metric"} at step '
            f'{int(stats["first_nonfinite_step"])}')


class _BestCheckpoint:
    """Keeps the checkpoint with the best config.best_metric so far in
    workdir/checkpoints_best, and its step and value in workdir/best.json."""

    def __init__(self, workdir: str, config: ml_collections.ConfigDict):
        self.key = f'eval/{config.best_metric}'
        self.sign = 1.0 if config.best_mode == 'min' else -1.0
        self.path = os.path.join(workdir, BEST_FILE)
        self.ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints_best'),
                                            max_to_keep=1)
        self.value = None
        if os.path.exists(self.path):
            with open(self.path) as f:
                saved = json.load(f)
            if saved.get('metric') == config.best_metric:
                self.value = saved['value']

    def offer(self, state: state_lib.GANState, step: int,
              record: Dict[str, Any]) -> None:
        if self.key not in record:
            raise KeyError(f'best_metric {self.key[5:]!r} is not among the '
                           f'evaluated metrics {sorted(record)}')
        value = float(record[self.key])
        if not np.isfinite(value) or (
                self.value is not None and self.sign * value >= self.sign * self.value):
            return
        self.ckpt.save(state)
        self.ckpt.wait()  # best.json must never point at an unfinished save
        self.value = value
        if jax.process_index() == 0:
            with open(self.path + '.tmp', 'w') as f:
                json.dump({'metric': self.key[5:], 'value': value, 'step': step}, f)
            os.replace(self.path + '.tmp', self.path)
        log.info('new best %s = %.5g at step %d', self.key[5:], value, step)

    def close(self) -> None:
        self.ckpt.close()


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


def _scalars(tree: Dict[str, Any]) -> Dict[str, float]:
    return {k: float(v) for k, v in tree.items()}


def run(config: ml_collections.ConfigDict, workdir: str) -> state_lib.GANState:
    """Trains `config` in `workdir`, resuming from its latest checkpoint.

    Writes config.json, metrics.jsonl, eval.jsonl, TensorBoard events,
    samples/ and checkpoints/ under workdir, and nothing elsewhere.

    Returns:
      the final GANState.
    Raises:
      ConfigError: bad config or incompatible workdir (nothing written).
      NonFiniteError: a guarded metric became NaN/inf with nan_policy='stop'
        (the last good checkpoint is kept).
    """
    # ------------------------------------------------------------------ #
    # Validate, before anything is written.                               #
    # ------------------------------------------------------------------ #
    config_lib.validate(config)
    try:
        mesh = parallel.make_mesh(num_devices=config.parallel.num_devices)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    config_lib.validate(config, device_count=mesh.size)
    info, G, D, spec, init_state = build(config)
    try:
        evaluators = metrics.from_config(config.evals, info, config)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    # Loads (and caches) the training split: a missing dataset fails here.
    data.check_available(config)
    _check_workdir(config, workdir)
    runtime = {'devices': mesh.size, 'platform': jax.devices()[0].platform,
               'processes': jax.process_count(),
               'per_device_batch': config.batch_size // mesh.size}
    if jax.process_index() == 0:
        saved = dict(json.loads(config.to_json_best_effort()),
                     **{config_lib.RUNTIME_KEY: runtime})
        with open(os.path.join(workdir, CONFIG_FILE), 'w') as f:
            json.dump(saved, f, indent=2, sort_keys=True)
    log.info('devices: %d (%s), processes: %d, per-device batch: %d',
             runtime['devices'], runtime['platform'], runtime['processes'],
             runtime['per_device_batch'])

    # ------------------------------------------------------------------ #
    # State: fresh, or restored from the latest checkpoint.               #
    # ------------------------------------------------------------------ #
    state_sharding = parallel.replicated(mesh)
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                   max_to_keep=config.keep_checkpoints)
    # Placed on the mesh before restoring, so that Orbax restores straight into
    # the global (replicated) arrays, also across processes.
    init_state = jax.device_put(jax.tree.map(np.asarray, init_state), state_sharding)
    state = ckpt.restore_or_init(init_state)
    start_step = int(state.step)
    if start_step:
        log.info('resumed from step %d', start_step)
    if jax.process_index() == 0:
        for name in (METRICS_FILE, EVAL_FILE):
            _truncate_jsonl(os.path.join(workdir, name), start_step)

    # ------------------------------------------------------------------ #
    # Data and the compiled update.                                       #
    # ------------------------------------------------------------------ #
    batches = data.make_train_iter(config, start_step=start_step,
                                   sharding=parallel.batch_sharding(mesh))
    step_fn = train.make_train_step(spec, state_sharding=state_sharding,
                                    batch_sharding=parallel.batch_sharding(mesh))
    multi_fn = None
    if config.steps_per_call > 1:
        multi_fn = train.make_multi_step(
            spec, config.steps_per_call, state_sharding=state_sharding,
            batch_sharding=parallel.batch_sharding(mesh))

    # ------------------------------------------------------------------ #
    # Writers.                                                            #
    # ------------------------------------------------------------------ #
    is_main = jax.process_index() == 0
    os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
    tb = None
    if is_main:
        from tensorboardX import SummaryWriter
        tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
    fixed_z = sampling.latents(config.seed + 1, 2500 if info.kind == 'points' else 64,
                               config.model.z_dim)

    def write_jsonl(name: str, record: Dict[str, Any]) -> None:
        if is_main:
            with open(os.path.join(workdir, name), 'a') as f:
                f.write(json.dumps(record) + '\n')

    def sample_fn_for(state_now):
        # Every process samples its own local copy (the same numbers), so a
        # figure on process 0 needs no collective with the others.
        state_now = parallel.local_copy(state_now)

        # Split over the training mesh (one process; several processes each
        # sample their local copy).
        return sampling.sample_fn(G, state_now.ema_params, state_now.g_state,
                                  config.model.z_dim, mesh=mesh)

    best = _BestCheckpoint(workdir, config) if config.best_metric else None

    def evaluate(state_now, step: int) -> None:
        if not evaluators:
            return
        record = {'step': step}
        sample_fn = sample_fn_for(state_now)  # one per round: features are shared
        for name, evaluator in evaluators.items():
            for key, value in evaluator.run(sample_fn):
                record[f'eval/{name}/{key}'] = value
        write_jsonl(EVAL_FILE, record)
        if tb is not None:
            for key, value in record.items():
                if key != 'step':
                    tb.add_scalar(key, value, step)
        log.info('eval at step %d: %s', step, record)
        if best is not None:
            best.offer(state_now, step, record)

    def save_samples(state_now, step: int) -> None:
        if not is_main:
            return
        state_now = parallel.local_copy(state_now)
        samples = sampling.sample(G, state_now.ema_params, state_now.g_state, fixed_z,
                                  sampling.class_labels(G, fixed_z.shape[0]))
        path = os.path.join(workdir, 'samples', f'step_{step:07d}.png')
        if info.kind == 'images':
            sampling.save_image_grid(samples, path)
        else:
            sampling.save_scatter(samples, path, centers=info.extras.get('centers'),
                                  title=f'{config.dataset}, EMA generator, step {step}')

    def guard(state_now) -> None:
        """Raises NonFiniteError under nan_policy='stop' (syncs with the device)."""
        stats = jax.device_get(state_now.stats)
        if config.nan_policy == 'stop' and int(stats['first_nonfinite_step']) >= 0:
            last = ckpt.latest_step()
            raise NonFiniteError(
                f'{_describe_nonfinite(stats)}; training stopped and the last good '
                f'checkpoint (step {last}) is kept. Lower the learning rates, add '
                'a penalty, or set --config.nan_policy=skip')

    def due(every: int, step: int) -> bool:
        return step == config.num_steps or (every > 0 and step % every == 0)

    def advance(state_now, step: int):
        """Runs the next compiled call after `step`; returns (state, metrics
        of its last step, its last step)."""
        n = steps_in_next_call(config, step)
        if n > 1:
            state_now, step_metrics = multi_fn(
                state_now, tuple(next(batches) for _ in range(n)))
        else:
            state_now, step_metrics = step_fn(state_now, next(batches))
        return state_now, step_metrics, step + n

    # ------------------------------------------------------------------ #
    # Loop.                                                               #
    # ------------------------------------------------------------------ #
    from tqdm import tqdm
    bar = tqdm(total=config.num_steps, initial=start_step, unit='step',
               disable=not (config.progress and is_main), dynamic_ncols=True)
    window_start, window_steps = time.perf_counter(), 0
    loop_start = window_start
    stop = _StopRequests()
    try:
        with stop.installed():
            step = start_step
            while step < config.num_steps:
                state, step_metrics, new_step = advance(state, step)
                window_steps += new_step - step
                bar.update(new_step - step)
                step = new_step
                if due(config.log_every, step):
                    values = _scalars(jax.device_get(step_metrics))
                    now = time.perf_counter()
                    values['perf/steps_per_sec'] = window_steps / (now - window_start)
                    # Seconds since this process started its first step:
                    # for plots against wall time and the loop benchmark.
                    values['perf/wall_s'] = now - loop_start
                    window_start, window_steps = now, 0
                    write_jsonl(METRICS_FILE, {'step': step, **values})
                    if tb is not None:
                        for key, value in values.items():
                            tb.add_scalar(key, value, step)
                    bar.set_postfix({k: f'{values[k]:.3g}' for k in ('loss/d', 'loss/g')})
                    guard(state)
                if due(config.checkpoint_every, step):
                    guard(state)
                    ckpt.save(state)
                if due(config.sample_every, step):
                    save_samples(state, step)
                if due(config.eval_every, step):
                    evaluate(state, step)
                if stop.signal_name is not None:
                    guard(state)
                    ckpt.save(state)
                    ckpt.wait()
                    log.warning('stopped by %s at step %d; checkpoint saved, run '
                                'again with the same workdir to resume',
                                stop.signal_name, step)
                    break
        ckpt.wait()  # a failed asynchronous save is reported here, not lost
    finally:
        bar.close()
        ckpt.close()
        if best is not None:
            best.close()
        if tb is not None:
            tb.close()
    return state
