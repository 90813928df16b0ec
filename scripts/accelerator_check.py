r"""One prepared check of gan_jax on an accelerator: step speed in float32 and
bfloat16 beside PyTorch eager, the sweep speed-up, the loop's overhead,
Inception throughput and compile times, in one command.

  python scripts/accelerator_check.py --out DIR [--cpu] [--tiny]
      [--parts step,torch,sweep,loop,inception,compile]
      [--torch_variants eager,tuned,compiled] [--time_budget_s 400]
      [--compilation_cache DIR]

Writes DIR/accelerator_check.json (every number, the environment, the peaks
assumed) and DIR/accelerator_check.md (the same as tables), rewritten after
each part, so a run stopped early still leaves what it measured. Sized for
<= 8 minutes on one GPU; --tiny shrinks every part (batch 4, K = 2, a
few steps, narrow networks, plain XLA convolutions, XLA's optimisations off)
so that all of them run in seconds per part on a CPU (the fast-tier test);
--cpu forces JAX_PLATFORMS=cpu (and torch on the CPU).

Parts:
  step       the update step (n_critic = 1: one D update on real + fresh fakes,
             one G update, the EMA; gan_jax.train.train_step) of DCGAN-32 and
             ResNet-32 (SNGAN; StyleGAN2-32 once its config exists, see
             STEP_MODELS) from their real configs (scripts/bench_step.py
             `model_config`, built by gan_jax.experiment.build), at batch 64
             and 256, in float32 and bfloat16 (model.compute_dtype), on
             synthetic data (dataset 'synthetic', the in-memory uint8 path):
             ms/step as throughput (N steps dispatched, one block at the end)
             and latency (median of blocked steps), images/s (real images per
             second: batch x n_critic / step), GFLOP/step from XLA's cost
             analysis of the compiled step, achieved TFLOP/s and its share of
             the device's dense peak (step_timing.PEAK_TFLOPS: H200 dense
             bf16 989, TF32 495, FP32 67 TFLOP/s; float32 rows are quoted
             against TF32, which XLA uses for float32 convolutions and matrix
             products on GPUs by default, and against plain FP32);
  torch      the same networks and step in PyTorch on the same device
             (scripts/torch_reference.py; CUDA with TF32 and cuDNN autotuning
             as bench_step; bfloat16 = torch.autocast), where torch imports,
             in the forms of --torch_variants (default eager, and tuned:
             channels_last and Adam(fused=True); 'compiled' adds
             torch.compile), timed as the JAX rows (scripts/step_timing.py);
  sweep      K = 1, 4, 16 members of toy_ring and DCGAN-32 (batch 64) in one
             compiled sweep step (gan_jax.sweep.make_sweep_step, member mode
             as a sweep run picks it: 'vmap' off CPU; --tiny: 'vmap') against
             K sequential single runs (K x the single step's throughput
             time): the speed-up;
  loop       the full driver (gan_jax.loop.run: data on its prefetch thread,
             dispatch window, logs, two checkpoints, two sample figures),
             steps/s between its first and last log line, against the bare
             step: DCGAN-32 on the synthetic dataset (uint8 to the device), and
             toy_ring at 1 and 10 steps per compiled call (config.steps_per_call);
  inception  FID Inception (gan_jax.metrics.inception.FeatureExtractor, random
             weights) features of 32x32 images: images/s at batch 50 (the
             default) and 500;
  compile    the lowering and compile seconds of every program above.

It needs jax, flax, optax, orbax-checkpoint, ml_collections, numpy (torch,
tqdm, tensorboardX and pillow for their parts) and neither TensorFlow nor
tensorflow-datasets: nothing it runs imports them, and the JSON records that.
A part that fails records its error and the others still run; the exit status
is 1 when any part or row failed (skipped rows, e.g. torch missing, do not).
"""
import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (ROOT, HERE):  # experiments.configs; sibling scripts
    if _path not in sys.path:
        sys.path.insert(0, _path)

import step_timing  # noqa: E402  (a sibling script module, as bench_step)

PARTS = ('step', 'torch', 'sweep', 'loop', 'inception', 'compile')
JSON_FILE = 'accelerator_check.json'
MARKDOWN_FILE = 'accelerator_check.md'

# Networks of the step and torch parts: (name, label, source). A source that
# is a key of bench_step.MODELS is built by bench_step.model_config; any other
# is an experiments/configs module, used once it exists (else its rows say
# 'not available').
STEP_MODELS = (
    ('dcgan32', 'DCGAN-32', 'dcgan32'),
    ('resnet32', 'ResNet-32 (SNGAN)', 'resnet32'),
    ('stylegan2_32', 'StyleGAN2-32', 'cifar10_stylegan2_ada'),
)
# Left out of --tiny: even its smoke networks take ~100 s to compile on the
# 2-core CPU (two branches for the lazy penalties, the path length's second
# derivatives), more than the whole tiny check.
SKIPPED_WHEN_TINY = ('cifar10_stylegan2_ada',)
DTYPES = ('float32', 'bfloat16')
# Forms of the PyTorch reference step the torch part times by default
# (torch_reference.VARIANTS; --torch_variants adds 'compiled').
TORCH_VARIANTS = ('eager', 'tuned')


def sizes(tiny: bool) -> Dict[str, Any]:
    """Every size the parts use, full or --tiny."""
    if tiny:
        # K = 2 only: K = 1 runs the same sweep code, and every sweep program
        # costs seconds of compile on a 2-core CPU.
        return dict(batches=(4,), members=(2,), steps=3, latency_steps=2,
                    rounds=1, sweep_batch=4, loop_steps=12, loop_batch=4,
                    toy_loop_steps=12, toy_steps_per_call=2,
                    inception_batches=(2,), inception_images=4)
    # Throughput in 5 blocks of 10 steps: a median and a spread, and each
    # block long enough to keep a GPU's queue full.
    return dict(batches=(64, 256), members=(1, 4, 16), steps=50, latency_steps=20,
                rounds=5, sweep_batch=64, loop_steps=300, loop_batch=64,
                toy_loop_steps=3000, toy_steps_per_call=10,
                inception_batches=(50, 500), inception_images=5000)


# --------------------------------------------------------------------------- #
# Configs.                                                                     #
# --------------------------------------------------------------------------- #
def base_config(source: str, tiny: bool):
    """The config of a STEP_MODELS source (n_critic 1, no evaluations), or
    None when it does not exist yet."""
    import bench_step
    if tiny and source in SKIPPED_WHEN_TINY:
        return None
    if source in bench_step.MODELS:
        config = bench_step.model_config(source, n_critic=1)
    else:
        if importlib.util.find_spec(f'experiments.configs.{source}') is None:
            return None
        config = importlib.import_module(
            f'experiments.configs.{source}').get_config('noeval')
        config.n_critic = 1
    return adapt(config, tiny)


def adapt(config, tiny: bool, *, batch: Optional[int] = None,
          dtype: str = 'float32'):
    """`config` on the synthetic dataset (same image shape), no evaluations,
    the given batch and compute dtype; --tiny: the config's smoke sizes
    (narrow networks), batch 4."""
    from experiments.configs import common

    from gan_jax import data
    config = config.copy_and_resolve_references()
    info = data.get_info(config)
    if info.kind == 'images':
        config.dataset = 'synthetic'
        config.data.synthetic_shape = tuple(info.shape)
    config.evals = {}
    config.best_metric = ''
    config.eval_every = 0
    config.progress = False
    if tiny:
        common.apply_smoke(config)
        config.batch_size = 4
        # Plain XLA convolutions, as 'auto' picks off CPU: the GPU's
        # programs, and half the CPU compile time of the CPU forms.
        for part in ('g', 'd'):
            for key in list(config.model[part].keys()):
                if key.endswith('_impl'):
                    config.model[part][key] = 'xla'
    if batch is not None:
        config.batch_size = batch
    config.model.compute_dtype = dtype
    return config


def config_key(config) -> str:
    """What the update step compiles from: the config without the keys that
    only schedule the loop (config.RESUMABLE_KEYS: num_steps, log_every, ...)."""
    from gan_jax import config as config_lib
    flat = config_lib.flatten(config.to_dict())
    resumable = config_lib.RESUMABLE_KEYS
    kept = {k: v for k, v in flat.items()
            if not any(k == r or k.startswith(r + '.') for r in resumable)}
    return json.dumps(kept, sort_keys=True, default=str)


# --------------------------------------------------------------------------- #
# Timing.                                                                      #
# --------------------------------------------------------------------------- #
def time_jax(call: Callable[[Any], Tuple[Any, Any]], state: Any, steps: int,
             latency_steps: int, rounds: int = 1) -> Tuple[Any, Dict[str, float]]:
    """Times `state, metrics = call(state)` (a donating step: always rebind)
    after two warm-up calls, by step_timing.measure.

    Returns:
      (the last state, {'ms': throughput ms/step (steps dispatched back to
      back, one block at the end), 'spread_ms', 'latency_ms': median of
      latency_steps steps each blocked, 'latency_spread_ms',
      'latency_min_ms'}).
    """
    import jax
    holder = {'state': state}

    def dispatch():
        holder['state'], _ = call(holder['state'])
    stepper = step_timing.Stepper(
        dispatch, lambda: jax.block_until_ready(holder['state']))
    for _ in range(2):
        stepper.dispatch()
    timing = step_timing.measure([stepper], steps, rounds, latency_steps)[0]
    return holder['state'], timing


class Programs:
    """Compiled update steps, one per config (the step, sweep and loop parts
    share them), and the compile record of every program of the check."""

    def __init__(self):
        self.records: List[Dict[str, Any]] = []
        self._steps: Dict[str, Dict[str, Any]] = {}

    def compile(self, part: str, name: str, jitted, *args) -> Any:
        start = time.perf_counter()
        lowered = jitted.lower(*args)
        lowered_at = time.perf_counter()
        compiled = lowered.compile()
        compile_s = time.perf_counter() - lowered_at
        try:  # float64 has no place on an accelerator (see docs/performance.md)
            float64 = 'f64' in compiled.as_text()
        except Exception:
            float64 = None
        self.records.append({'part': part, 'program': name,
                             'lower_s': lowered_at - start, 'compile_s': compile_s,
                             'float64': float64})
        return compiled

    def step(self, part: str, name: str, config) -> Dict[str, Any]:
        """{'compiled', 'state', 'batch', 'flops', 'info'} of the single-run
        update step of `config`, placed as loop.run places it (state
        replicated, batch split over a one-device mesh), on a batch of the
        config's own dataset."""
        key = config_key(config)
        if key not in self._steps:
            import jax
            import numpy as np

            from gan_jax import data, experiment, parallel, train
            info, _, _, spec, state = experiment.build(config)
            mesh = parallel.make_mesh(num_devices=1)
            replicated = parallel.replicated(mesh)
            split = parallel.batch_sharding(mesh)
            state = jax.device_put(jax.tree.map(np.asarray, state), replicated)
            batch = jax.device_put(next(data.host_batches(config)), split)
            jitted = train.make_train_step(spec, state_sharding=replicated,
                                           batch_sharding=split)
            compiled = self.compile(part, name, jitted, state, batch)
            self._steps[key] = dict(compiled=compiled, state=state, batch=batch,
                                    flops=step_timing.program_flops(compiled),
                                    info=info)
        return self._steps[key]

    def time_step(self, part: str, name: str, config, size: Dict[str, Any]
                  ) -> Tuple[Dict[str, Any], Dict[str, float]]:
        """(the step's entry, time_jax's timing at `size`'s steps, latency
        steps and rounds)."""
        entry = self.step(part, name, config)
        compiled, batch = entry['compiled'], entry['batch']
        entry['state'], timing = time_jax(
            lambda s: compiled(s, batch), entry['state'], size['steps'],
            size['latency_steps'], size['rounds'])
        return entry, timing


def with_rates(row: Dict[str, Any], flops: Optional[float], ms: float,
               dtype: str, peak: Optional[Dict[str, float]], prefix: str = '') -> None:
    """Adds achieved TFLOP/s and its share of the peak(s) to `row`
    (step_timing.peak_shares: float32 against TF32 and FP32)."""
    if not flops or not ms:
        return
    tflops = flops / (ms / 1e3) / 1e12
    row[prefix + 'tflops'] = tflops
    for key, share in step_timing.peak_shares(tflops, dtype, peak).items():
        row[prefix + key] = share


# --------------------------------------------------------------------------- #
# Parts.                                                                       #
# --------------------------------------------------------------------------- #
# Each part's share of the time left when it starts (time a part leaves
# unused goes to the parts after it).
PART_WEIGHTS = {'step': 3.0, 'torch': 1.5, 'sweep': 2.0, 'loop': 1.0,
                'inception': 1.0, 'compile': 0.0}


class Budget:
    """Rows start only while their part's time is left, so every part gets
    its turn and the files come out in time (a row already started runs to
    its end)."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds
        self.deadline = self.end

    def start_part(self, name: str, parts) -> None:
        """Gives part `name` its weight's share of the time left, among
        itself and the `parts` after it."""
        now = time.perf_counter()
        total = sum(PART_WEIGHTS[p] for p in parts) or 1.0
        self.deadline = now + max(self.end - now, 0.0) * PART_WEIGHTS[name] / total

    def left(self) -> bool:
        return time.perf_counter() < self.deadline


SKIPPED_BUDGET = 'skipped: time budget spent'


def unavailable(source: str) -> str:
    if source in SKIPPED_WHEN_TINY:
        return 'skipped with --tiny (compile time), measured at full size'
    return f'not available (no experiments/configs/{source}.py)'


def record_error(row: Dict[str, Any], error: Exception) -> None:
    row.update(status='error', error=f'{type(error).__name__}: {error}',
               traceback=traceback.format_exc())


def step_cases(args, budget: Budget, rows: List[Dict[str, Any]],
               variants: Tuple[Optional[str], ...] = (None,)):
    """The rows of the step and torch parts: for each batch (batch 64 of every
    model first), STEP_MODELS network, dtype and variant (None: no 'variant'
    key), appends a row to `rows` and yields (row, config) for those that are
    to run; the others get their status here (config missing or left out of
    --tiny, budget spent, config error)."""
    size = sizes(args.tiny)
    bases = {source: base_config(source, args.tiny) for _, _, source in STEP_MODELS}
    for batch in size['batches']:
        for name, label, source in STEP_MODELS:
            for dtype in DTYPES:
                for variant in variants:
                    row = {'model': name, 'label': label, 'batch': batch,
                           'dtype': dtype}
                    if variant is not None:
                        row['variant'] = variant
                    rows.append(row)
                    if bases[source] is None:
                        row['status'] = unavailable(source)
                        continue
                    if not budget.left():
                        row['status'] = SKIPPED_BUDGET
                        continue
                    try:
                        config = adapt(bases[source], args.tiny, batch=batch,
                                       dtype=dtype)
                    except Exception as e:
                        record_error(row, e)
                        continue
                    yield row, config


def step_rows(args, programs: Programs, budget: Budget, peak) -> List[Dict[str, Any]]:
    size = sizes(args.tiny)
    rows: List[Dict[str, Any]] = []
    for row, config in step_cases(args, budget, rows):
        try:
            entry, timing = programs.time_step(
                'step', f"{row['model']} b{row['batch']} {row['dtype']}", config,
                size)
            row.update(timing, status='ok', n_critic=config.n_critic,
                       images_per_s=row['batch'] * config.n_critic
                       / (timing['ms'] / 1e3),
                       gflops_per_step=(entry['flops'] or 0) / 1e9 or None)
            with_rates(row, entry['flops'], timing['ms'], row['dtype'], peak)
        except Exception as e:  # recorded; the other rows still run
            record_error(row, e)
    return rows


def torch_rows(args, budget: Budget, peak, step_results) -> Dict[str, Any]:
    """The torch part: each step row's networks and step in PyTorch, in each
    of args.torch_variants, timed by step_timing as the JAX rows are."""
    size = sizes(args.tiny)
    try:
        import torch

        import bench_step
    except ImportError as e:
        return {'status': f'skipped: torch not importable ({e})', 'rows': []}
    device = bench_step.torch_device(cpu=args.cpu)
    if device.type == 'cpu':
        # --tiny on a shared CPU: one thread (OpenMP threads wait on each
        # other at every op when the cores are busy elsewhere).
        torch.set_num_threads(1 if args.tiny else (os.cpu_count() or 1))
    jax_rows = {(r['model'], r['batch'], r['dtype']): r for r in step_results or []}
    rows: List[Dict[str, Any]] = []
    for row, config in step_cases(args, budget, rows, tuple(args.torch_variants)):
        try:
            from gan_jax import data
            stepper = bench_step.torch_stepper(
                config, tuple(data.get_info(config).shape), device, row['variant'])
            timing = step_timing.measure([stepper], size['steps'], size['rounds'],
                                         size['latency_steps'])[0]
            ms = timing['ms']
            row.update(timing, status='ok', adam=stepper.adam,
                       images_per_s=row['batch'] * config.n_critic / (ms / 1e3),
                       device=str(device))
            jax_row = jax_rows.get((row['model'], row['batch'], row['dtype']), {})
            if jax_row.get('status') == 'ok':
                row['jax_over_torch'] = jax_row['ms'] / ms
                flops = (jax_row.get('gflops_per_step') or 0) * 1e9
                with_rates(row, flops, ms, row['dtype'], peak)
        except NotImplementedError as e:
            row.update(status=f'skipped: {e}')
        except Exception as e:  # e.g. torch.compile without a working compiler
            record_error(row, e)
            row['error'] = bench_step.one_line(e)
    return {'status': 'ok', 'device': str(device), 'torch': torch.__version__,
            'rows': rows}


def sweep_rows(args, programs: Programs, budget: Budget) -> List[Dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    from gan_jax import data, experiment, sweep as sweep_lib
    from experiments.configs import toy_ring
    size = sizes(args.tiny)
    configs = [('toy_ring', adapt(toy_ring.get_config(), args.tiny)),
               ('dcgan32', adapt(base_config('dcgan32', args.tiny), args.tiny,
                                 batch=size['sweep_batch']))]
    rows = []
    for name, config in configs:
        single = None
        for count in size['members']:
            row = {'config': name, 'batch': config.batch_size, 'members': count}
            rows.append(row)
            if not budget.left():
                row['status'] = SKIPPED_BUDGET
                continue
            try:
                if single is None:
                    _, single = programs.time_step('sweep', f'{name} single run',
                                                   config, size)
                sweep = sweep_lib.Sweep.build(seeds=count)
                _, _, _, spec, stacked = experiment.initial_state(config, sweep)
                if args.tiny:
                    # The accelerator's mode (what 'auto' picks off CPU), and
                    # one program per K instead of K members written out.
                    mode = 'vmap'
                else:
                    mode = sweep_lib.choose_member_mode(
                        spec, sweep_lib.member_of(stacked, 0),
                        next(data.host_batches(config)))
                state = sweep_lib.as_step_state(jax.device_put(stacked), mode)
                batch = jax.device_put(next(sweep_lib.member_batches(
                    config, sweep, 0, count, 0)))
                hparams = {k: jnp.asarray(v) for k, v in
                           sweep_lib.member_hparams(config, sweep).items()}
                jitted = sweep_lib.make_sweep_step(spec, shared_data=False,
                                                   members=mode)
                compiled = programs.compile('sweep', f'{name} K={count} {mode}',
                                            jitted, state, batch, hparams)
                _, timing = time_jax(lambda s: compiled(s, batch, hparams), state,
                                     size['steps'], size['latency_steps'],
                                     size['rounds'])
                sequential_ms = count * single['ms']
                row.update(status='ok', mode=mode, sweep_ms=timing['ms'],
                           single_ms=single['ms'], sequential_ms=sequential_ms,
                           speedup=sequential_ms / timing['ms'],
                           member_steps_per_s=count / (timing['ms'] / 1e3))
            except Exception as e:
                row.update(status='error', error=f'{type(e).__name__}: {e}',
                           traceback=traceback.format_exc())
    return rows


def loop_seconds_per_step(workdir: str) -> Tuple[float, int]:
    """(seconds per step between the first and the last metrics.jsonl
    line, steps between them); compile and start-up fall before the first."""
    path = os.path.join(workdir, 'metrics.jsonl')
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if len(records) < 2:
        raise RuntimeError(f'{path} has {len(records)} line(s); need 2 to time '
                           'the loop')
    first, last = records[0], records[-1]
    steps = last['step'] - first['step']
    return (last['perf/wall_s'] - first['perf/wall_s']) / steps, steps


def loop_configs(tiny: bool):
    """(name, config) of each loop row: DCGAN-32 on the synthetic dataset,
    and toy_ring (a step that a GPU runs in well under a millisecond, so the
    per-call cost shows) at one and at several steps per compiled call. Log
    every 1/6 of the steps, a checkpoint and a sample figure at the middle
    and the end."""
    from experiments.configs import toy_ring
    size = sizes(tiny)
    dcgan = adapt(base_config('dcgan32', tiny), tiny, batch=size['loop_batch'])
    toy = adapt(toy_ring.get_config(), tiny)
    rows = [('dcgan32', dcgan, size['loop_steps'], 1)]
    rows += [('toy_ring', toy, size['toy_loop_steps'], k)
             for k in (1, size['toy_steps_per_call'])]
    out = []
    for name, config, steps, per_call in rows:
        config = config.copy_and_resolve_references()
        config.num_steps = steps
        config.log_every = steps // 6
        config.checkpoint_every = config.sample_every = steps // 2
        config.steps_per_call = per_call
        out.append((name, config))
    return out


def loop_rows(args, programs: Programs, budget: Budget) -> List[Dict[str, Any]]:
    from gan_jax import loop
    size = sizes(args.tiny)
    rows = []
    for name, config in loop_configs(args.tiny):
        row = {'config': name, 'dataset': config.dataset, 'batch': config.batch_size,
               'steps': config.num_steps, 'steps_per_call': config.steps_per_call,
               'log_every': config.log_every,
               'checkpoint_every': config.checkpoint_every,
               'sample_every': config.sample_every}
        rows.append(row)
        if not budget.left():
            row['status'] = SKIPPED_BUDGET
            continue
        try:
            # One compiled call per step, as loop.run at steps_per_call 1 (it
            # loads this program from the compilation cache).
            _, bare = programs.time_step('loop', f'{name} bare step', config, size)
            with tempfile.TemporaryDirectory() as tmp:
                workdir = os.path.join(tmp, 'run')
                start = time.perf_counter()
                failure = None
                try:
                    loop.run(config, workdir)
                except Exception as e:  # e.g. a sample figure without pillow:
                    failure = e          # the log lines written still time it
                total_s = time.perf_counter() - start
                try:
                    per_step, timed_steps = loop_seconds_per_step(workdir)
                except (OSError, RuntimeError):
                    # Too few log lines to time: loop.run's own error says why.
                    if failure is not None:
                        raise failure
                    raise
            row.update(status='ok' if failure is None else 'error',
                       loop_ms=1e3 * per_step, loop_steps_per_s=1 / per_step,
                       timed_steps=timed_steps, loop_total_s=total_s,
                       bare_ms=bare['ms'], bare_latency_ms=bare['latency_ms'],
                       bare_steps_per_s=1e3 / bare['ms'],
                       overhead_vs_throughput=1e3 * per_step / bare['ms'] - 1,
                       overhead_vs_latency=1e3 * per_step / bare['latency_ms'] - 1)
            if failure is not None:
                row['error'] = f'loop.run: {type(failure).__name__}: {failure}'
        except Exception as e:
            row.update(status='error', error=f'{type(e).__name__}: {e}',
                       traceback=traceback.format_exc())
    return rows


def random_inception_variables(seed: int = 0):
    """InceptionV3 variables with He-scaled kernels and batch-norm statistics
    near the identity (activations stay O(1); as tests/test_inception.py)."""
    import numpy as np
    from flax import traverse_util

    from gan_jax.metrics import inception
    rng = np.random.default_rng(seed)
    flat = {}
    for key, shape in inception.expected_shapes().items():
        leaf = key.rsplit('/', 1)[1]
        if leaf == 'kernel':
            value = rng.standard_normal(shape, np.float32) * np.sqrt(
                2.0 / int(np.prod(shape[:-1])))
        elif leaf in ('scale', 'var'):
            value = 0.8 + 0.4 * rng.random(shape, np.float32)
        else:
            value = rng.standard_normal(shape, np.float32) * 0.1
        flat[key] = value.astype(np.float32)
    return traverse_util.unflatten_dict(flat, sep='/')


def inception_rows(args, programs: Programs, budget: Budget) -> List[Dict[str, Any]]:
    import numpy as np

    from gan_jax.metrics import inception
    size = sizes(args.tiny)
    variables = random_inception_variables()
    num = size['inception_images']
    images = np.random.default_rng(0).uniform(-1, 1, (num, 32, 32, 3)).astype(
        np.float32)
    rows = []
    for batch in size['inception_batches']:
        row = {'batch': batch, 'images': num, 'image_shape': [32, 32, 3]}
        rows.append(row)
        if not budget.left():
            row['status'] = SKIPPED_BUDGET
            continue
        try:
            extractor = inception.FeatureExtractor(variables, batch_size=batch)
            start = time.perf_counter()
            extractor(images[:extractor.batch_size])  # compiles
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            features = extractor(images)
            seconds = time.perf_counter() - start
            if features['pool'].shape != (num, inception.POOL_DIM):
                raise RuntimeError(f'pool features of shape {features["pool"].shape}')
            batch_s = seconds * extractor.batch_size / num
            # The first call compiled and ran one batch.
            programs.records.append({'part': 'inception',
                                     'program': f'inception b{extractor.batch_size}',
                                     'lower_s': None,
                                     'compile_s': max(first_s - batch_s, 0.0),
                                     'float64': None})
            row.update(status='ok', images_per_s=num / seconds, seconds=seconds,
                       batch_rounded=extractor.batch_size)
        except Exception as e:
            row.update(status='error', error=f'{type(e).__name__}: {e}',
                       traceback=traceback.format_exc())
    return rows


# --------------------------------------------------------------------------- #
# Environment, output.                                                         #
# --------------------------------------------------------------------------- #
OPTIONAL_MODULES = ('torch', 'ml_collections', 'tqdm', 'tensorboardX', 'PIL',
                    'tensorflow', 'tensorflow_datasets')


def environment(args) -> Dict[str, Any]:
    import jax
    device = jax.devices()[0]
    cpu = step_timing.cpu_name()
    found = {}
    for name in OPTIONAL_MODULES:
        try:
            found[name] = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found[name] = False
    return {'date': datetime.datetime.now().isoformat(timespec='seconds'),
            'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
            'platform': device.platform, 'device_kind': device.device_kind,
            'device_count': jax.device_count(), 'cpu': cpu,
            'cpu_cores': os.cpu_count(), 'python': platform.python_version(),
            'jax': jax.__version__, 'tiny': args.tiny,
            'xla_flags': os.environ.get('XLA_FLAGS', ''),
            'mem_fraction': os.environ.get('XLA_PYTHON_CLIENT_MEM_FRACTION', ''),
            'modules_installed': found}


def _f(value, spec='.2f', missing='–'):
    return missing if value is None else format(value, spec)


def _row(*cells) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _pct(value):
    return '–' if value is None else f'{100 * value:.1f}%'


def markdown(result: Dict[str, Any]) -> str:
    env = result['environment']
    peak = result['peak_tflops']
    lines = ['# Accelerator check', '',
             f"`{env['command']}` on {env['date']}: {env['device_kind']} "
             f"({env['platform']}, {env['device_count']} device(s)); CPU "
             f"{env['cpu']}, {env['cpu_cores']} cores; Python {env['python']}, "
             f"jax {env['jax']}" + (', --tiny sizes (not a measurement)'
                                    if env['tiny'] else '') + '.',
             '',
             'Peak assumed: ' + ('unknown (no entry for this device in '
                                 'PEAK_TFLOPS; CPU: peak unknown)' if peak is None
                                 else f"dense bf16 {peak['bfloat16']:g}, TF32 "
                                 f"{peak['tf32']:g}, FP32 {peak['float32']:g} "
                                 'TFLOP/s (float32 rows against TF32, XLA\'s '
                                 'default for float32 on GPUs, and FP32)') + '.',
             f"TensorFlow imported: {result['tensorflow_imported']}; "
             f"tensorflow_datasets imported: {result['tensorflow_datasets_imported']}.",
             '']
    parts = result['parts']

    def header(name, title):
        lines.extend([f'## {title}', ''])
        part = parts.get(name)
        if part is None:
            lines.extend(['not run (--parts)', ''])
            return None
        if 'error' in part:
            lines.extend([f"failed: {part['error']}", ''])
            return None
        return part

    part = header('step', 'Update step (JAX)')
    if part is not None:
        lines += ['| model | batch | dtype | ms/step | latency ms | images/s | '
                  'GFLOP/step | TFLOP/s | share of peak | status |',
                  '|---|---|---|---|---|---|---|---|---|---|']
        for r in part['rows']:
            if peak is None:
                share = '–'
            elif r['dtype'] == 'bfloat16':
                share = _pct(r.get('share_of_bfloat16_peak'))
            else:
                share = (f"{_pct(r.get('share_of_tf32_peak'))} TF32, "
                         f"{_pct(r.get('share_of_float32_peak'))} FP32")
            lines.append(
                f"| {r['label']} | {r['batch']} | {r['dtype']} | {_f(r.get('ms'))} | "
                f"{_f(r.get('latency_ms'))} | {_f(r.get('images_per_s'), '.0f')} | "
                f"{_f(r.get('gflops_per_step'))} | {_f(r.get('tflops'), '.3f')} | "
                f"{share} | {r['status']} |")
        lines += ['', 'ms/step: N steps dispatched back to back, one block at the '
                  'end; latency: median of steps each blocked. A step: one D '
                  'update (real + fresh fakes), one G update, the EMA. images/s: '
                  'real images per second. FLOPs: XLA cost analysis.', '']
    part = header('torch', 'Update step (PyTorch, same networks and step)')
    if part is not None:
        where = (f" (torch {part.get('torch')} on {part.get('device')})"
                 if part['rows'] else '')
        lines += [f"{part['status']}{where}", '']
        if part['rows']:
            lines += ['| model | batch | dtype | variant | ms/step | latency ms | '
                      'images/s | jax/torch | TFLOP/s (JAX count) | status |',
                      '|---|---|---|---|---|---|---|---|---|---|']
            for r in part['rows']:
                status = r['status'] if r['status'] != 'error' else (
                    f"error: {r.get('error')}")
                lines.append(_row(
                    r['label'], r['batch'], r['dtype'],
                    r['variant'] + (f" (Adam {r['adam']})" if 'adam' in r else ''),
                    _f(r.get('ms')), _f(r.get('latency_ms')),
                    _f(r.get('images_per_s'), '.0f'), _f(r.get('jax_over_torch')),
                    _f(r.get('tflops'), '.3f'), status))
            lines += ['', 'Variants (scripts/torch_reference.py): eager = NCHW, '
                      'Adam(foreach=True); tuned = channels_last, Adam(fused=True) '
                      'where the device has it; compiled = tuned + torch.compile. '
                      'bfloat16: torch.autocast. jax/torch < 1: JAX faster. '
                      'ms/step and latency as in the JAX table.', '']
    part = header('sweep', 'Sweep speed-up (K members in one program against K '
                           'sequential runs)')
    if part is not None:
        lines += ['| config | batch | K | mode | sweep ms/step | single ms/step | '
                  'K sequential ms | speed-up | member-steps/s | status |',
                  '|---|---|---|---|---|---|---|---|---|---|']
        for r in part['rows']:
            lines.append(_row(
                r['config'], r['batch'], r['members'], r.get('mode', '–'),
                _f(r.get('sweep_ms')), _f(r.get('single_ms')),
                _f(r.get('sequential_ms')), _f(r.get('speedup')),
                _f(r.get('member_steps_per_s'), '.0f'), r['status']))
        lines += ['', 'K sequential = K x the single run\'s step (throughput); '
                  'speed-up = that / the sweep step.', '']
    part = header('loop', 'Loop overhead (loop.run on the synthetic dataset)')
    if part is not None:
        lines += ['| config | batch | steps | steps per call | loop ms/step | '
                  'loop steps/s | bare ms/step | bare latency ms | overhead vs bare '
                  '| vs latency | status |',
                  '|---|---|---|---|---|---|---|---|---|---|---|']
        for r in part['rows']:
            lines.append(_row(
                f"{r['config']} ({r['dataset']})", r['batch'], r['steps'],
                r['steps_per_call'], _f(r.get('loop_ms')),
                _f(r.get('loop_steps_per_s'), '.1f'), _f(r.get('bare_ms')),
                _f(r.get('bare_latency_ms')), _pct(r.get('overhead_vs_throughput')),
                _pct(r.get('overhead_vs_latency')), r['status']))
        lines += ['', 'Timed between the first and last log line; log every 1/6 '
                  'of the steps, a checkpoint and a sample figure at the middle '
                  'and the end. bare: one compiled call per step on one batch.', '']
    part = header('inception', 'Inception features (random weights, 32x32 inputs '
                               'resized to 299)')
    if part is not None:
        lines += ['| batch | images | images/s | status |', '|---|---|---|---|']
        for r in part['rows']:
            lines.append(f"| {r.get('batch_rounded', r['batch'])} | {r['images']} | "
                         f"{_f(r.get('images_per_s'), '.0f')} | {r['status']} |")
        lines.append('')
    part = header('compile', 'Compile times')
    if part is not None:
        lines += ['| part | program | lower s | compile s | float64 ops |',
                  '|---|---|---|---|---|']
        for r in part['rows']:
            f64 = {True: 'yes', False: 'none', None: '–'}[r.get('float64')]
            lines.append(f"| {r['part']} | {r['program']} | {_f(r['lower_s'])} | "
                         f"{_f(r['compile_s'])} | {f64} |")
        lines += ['', 'inception: first call minus one batch (the extractor compiles '
                  'inside its call). float64 ops: whether the compiled program '
                  "holds any ('f64' in its optimised HLO).", '']
    for name, part in parts.items():
        for r in part.get('rows', []) if isinstance(part, dict) else []:
            if r.get('status') == 'error':
                lines.append(f"- {name} {r.get('model') or r.get('config') or ''} "
                             f"{r.get('batch', '')}: {r.get('error')}")
    return '\n'.join(lines).rstrip() + '\n'


def failed(result: Dict[str, Any]) -> List[str]:
    """'part: error' for every failed part or row."""
    out = []
    for name, part in result['parts'].items():
        if 'error' in part:
            out.append(f"{name}: {part['error']}")
        for r in part.get('rows', []):
            if r.get('status') == 'error':
                out.append(f"{name}: {r.get('error')}")
    return out


def write(out: str, result: Dict[str, Any]) -> None:
    result['tensorflow_imported'] = 'tensorflow' in sys.modules
    result['tensorflow_datasets_imported'] = 'tensorflow_datasets' in sys.modules
    for name, text in ((JSON_FILE, json.dumps(result, indent=2, default=str)),
                       (MARKDOWN_FILE, markdown(result))):
        path = os.path.join(out, name)
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.replace(path + '.tmp', path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='folder for the two files')
    parser.add_argument('--cpu', action='store_true',
                        help='JAX_PLATFORMS=cpu, torch on the CPU')
    parser.add_argument('--tiny', action='store_true',
                        help='tiny sizes: every part in seconds (a check, not a '
                             'measurement)')
    parser.add_argument('--parts', default=','.join(PARTS),
                        help=f'comma-separated, from {",".join(PARTS)}')
    parser.add_argument('--torch_variants', default=','.join(TORCH_VARIANTS),
                        help='forms of the PyTorch step (scripts/torch_reference.py '
                             'VARIANTS: eager, tuned, compiled)')
    parser.add_argument('--time_budget_s', type=float, default=400.0,
                        help='shared among the parts (PART_WEIGHTS); rows that '
                             'would start after their part\'s share are skipped '
                             '(the files are still written)')
    parser.add_argument('--compilation_cache', default='',
                        help="jax's persistent compilation cache folder (for a "
                             'rerun: compile times then measure cache loads)')
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(',') if p]
    args.torch_variants = [v for v in args.torch_variants.split(',') if v]
    known = ('eager', 'tuned', 'compiled')  # torch_reference.VARIANTS, which
    # needs torch to import
    if not args.torch_variants or any(v not in known for v in args.torch_variants):
        parser.error(f'--torch_variants: comma-separated, from {", ".join(known)}')
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f'unknown part {unknown[0]!r}; valid: {", ".join(PARTS)}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # Before jax is imported: these are read at start-up.
    if args.cpu:
        os.environ['JAX_PLATFORMS'] = 'cpu'
    if args.tiny:
        os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
    # JAX takes 75% of the GPU's memory at start by default; torch runs in
    # the same process: leave it half.
    os.environ.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.5')
    os.makedirs(args.out, exist_ok=True)
    import logging
    logging.getLogger('absl').setLevel(logging.WARNING)
    import jax
    # A persistent compilation cache (by default a fresh folder, removed at
    # the end): loop.run then loads the step that the check compiled before
    # it instead of compiling it again. Every program the check times is
    # compiled here first, so its compile time is a real compile, unless
    # --compilation_cache names a folder that already holds it.
    cache = args.compilation_cache or tempfile.mkdtemp(
        prefix='accelerator_check_cache_')
    jax.config.update('jax_compilation_cache_dir', cache)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
    env = environment(args)
    peak = (step_timing.peaks(env['device_kind']) if env['platform'] != 'cpu'
            else None)
    result: Dict[str, Any] = {'environment': env, 'peak_tflops': peak,
                              'sizes': sizes(args.tiny), 'parts': {}}
    programs = Programs()
    budget = Budget(args.time_budget_s)
    started = time.perf_counter()
    runners = {
        'step': lambda: {'rows': step_rows(args, programs, budget, peak)},
        'torch': lambda: torch_rows(args, budget, peak,
                                    result['parts'].get('step', {}).get('rows')),
        'sweep': lambda: {'rows': sweep_rows(args, programs, budget)},
        'loop': lambda: {'rows': loop_rows(args, programs, budget)},
        'inception': lambda: {'rows': inception_rows(args, programs, budget)},
        'compile': lambda: {'rows': list(programs.records)},
    }
    chosen = [name for name in PARTS if name in args.parts]
    for i, name in enumerate(chosen):  # in PARTS' order: torch after step
        budget.start_part(name, chosen[i:])
        part_start, part_cpu = time.perf_counter(), time.process_time()
        print(f'[accelerator_check] {name} ...', file=sys.stderr, flush=True)
        try:
            result['parts'][name] = runners[name]()
        except Exception as e:
            result['parts'][name] = {'error': f'{type(e).__name__}: {e}',
                                     'traceback': traceback.format_exc()}
        result['parts'][name]['seconds'] = time.perf_counter() - part_start
        result['parts'][name]['cpu_seconds'] = time.process_time() - part_cpu
        result['total_s'] = time.perf_counter() - started
        write(args.out, result)
    if not args.compilation_cache:
        shutil.rmtree(cache, ignore_errors=True)
    problems = failed(result)
    print(markdown(result))
    for problem in problems:
        print(f'[accelerator_check] FAILED {problem}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
