r"""Update-step speed: our jitted step next to the same networks and the same
step written in PyTorch, as throughput and as latency.

  python scripts/bench_step.py [--models mlp,dcgan32,resnet32,dcgan64,stylegan2_32]
      [--batch N] [--dtype float32|bfloat16] [--steps 20] [--rounds 5]
      [--n_critic 1] [--torch_variants eager,tuned,compiled] [--no-torch]
      [--torch_threads N] [--json FILE]

Models, each built from its real config through `gan_jax.experiment.build` and
compiled by `gan_jax.train.make_train_step` (state replicated on a one-device
mesh, as `loop.run` places it):
  mlp           toy_ring: PacGAN's toy MLPs (G 4x400 ReLU+BN, D 2 maxout
                layers), batch 256.
  dcgan32       cifar10_dcgan: DCGAN-32, base width 64, batch 64.
  resnet32      cifar10_sngan: SNGAN's ResNets, spectral norm in D, hinge loss,
                batch 64.
  dcgan64       celeba64_dcgan: DCGAN-64, base width 64, batch 64.
  stylegan2_32  cifar10_stylegan2_ada: StyleGAN2 at 32x32 in stylegan2-ada's
                CIFAR-10 setting (512 channels, class-conditional, lazy R1,
                ADA; no path length, no style mixing), batch 64.
--batch overrides every model's batch, --dtype sets model.compute_dtype.
Batches are synthetic (uniform in [-1, 1], random labels for conditional
models); no dataset is read.

One step is what `gan_jax.train.train_step` does: n_critic D updates (D sees
real and fresh fakes concatenated in one call; StyleGAN2's D, with its
minibatch stddev, in two), one G update against the updated D (D in
training mode, its statistics dropped), the generator EMA.
The PyTorch reference (scripts/torch_reference.py) repeats it in the same
order with the same layer shapes, losses, BN momentum/eps, spectral norm (one
power iteration per training forward) and Adam hyperparameters. For
StyleGAN2 it is the same networks in torch's reference ops (no custom CUDA
ops; its forward passes equal ours, tests/test_bench_step.py) and the same
phases: ADA on everything D sees (grid_sample and a color matrix, computed
at any p as ours; p adapted every 4 steps), lazy R1 every 16 steps through
the augmentation (a second derivative), Adam with the lazy-interval
correction (D: lr and betas to the power 16/17), the half-life EMA; path
length and style mixing where the config has them (cifar10_stylegan2_ada
has neither). Which steps run R1: our step is timed without static phases,
so R1 is a lax.cond on state.step % 16 == 0 (XLA:CPU runs a branch's
convolutions slower than the trainer's static phases, train._every), and
torch's counter carries the same step numbers (JAX_CALLS_BEFORE_TIMING):
the timed steps are 2 .. 2 * --steps + 1 on both sides, so --steps <= 7
times the plain (non-R1) phase only, and --steps 20 holds R1 steps 16 and
32 on both sides (with --rounds 5 both are latency steps). Forms of
`--torch_variants`
(torch_reference.VARIANTS): 'eager' as written (NCHW,
Adam(foreach=True)); 'tuned' with channels_last images and weights and
Adam(fused=True) where the device has it; 'compiled' tuned plus
torch.compile'd networks (a variant that cannot compile reports why in one
line). bfloat16: torch.autocast around the forward passes. On CUDA torch uses
TF32 and cuDNN autotuning, as XLA does by default.

Two measures (scripts/step_timing.py): throughput, ms/step of a block of
steps dispatched back to back with one block at the end (what training gets;
"ms/step"), and latency, each step waited for. Both are medians over
`--rounds` rounds; in every round each side (JAX, each torch variant) runs its
throughput block, then each its latency steps, so that a slow stretch of a
shared machine hits all of them; "± spread" = half the interquartile range.
JAX's first call (tracing and compiling) is "compile s"; FLOPs come from XLA's
cost analysis of the compiled step; on a GPU in step_timing.PEAK_TFLOPS the
achieved rate is also given as a share of its dense peak (MFU): bfloat16 rows
against the bf16 peak, float32 rows against TF32 (XLA's default for float32
convolutions and matrix products on GPUs) and FP32. torch is optional:
without it (or with --no-torch) its columns are empty / null. On a CPU shared
with other jobs, try --torch_threads 1 (see main).
"""
import argparse
import importlib
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import step_timing  # noqa: E402  (a sibling script module, as bench_step)
# Re-exported: bench_ops and bench_xla_options time their variants with it.
from step_timing import interleaved  # noqa: E402,F401

# name -> (config module in experiments/configs, batch size, description).
MODELS = {
    'mlp': ('toy_ring', 256, 'toy MLP'),
    'dcgan32': ('cifar10_dcgan', 64, 'DCGAN 32x32'),
    'resnet32': ('cifar10_sngan', 64, 'SNGAN ResNet 32x32'),
    'dcgan64': ('celeba64_dcgan', 64, 'DCGAN 64x64'),
    'stylegan2_32': ('cifar10_stylegan2_ada', 64, 'StyleGAN2 32x32 (CIFAR-10 ADA)'),
}
DTYPES = ('float32', 'bfloat16')
# Steps run before timing starts. JAX: the first call compiles, the second is
# timed apart to show that it does not compile again. torch: allocator and
# oneDNN/cuDNN set-up happen in the first steps; torch.compile traces and
# compiles each graph (G without gradient, D at 2B, G and D at B) in the first.
TORCH_WARMUP_STEPS = 3
# prepare_jax's calls before timing (the compiling one, the second): the
# torch step's counter starts so that its timed steps carry the same step
# numbers as ours, and a lazy phase (StyleGAN2's R1 at step % 16 == 0) falls
# on the same timed steps of both sides.
JAX_CALLS_BEFORE_TIMING = 2


def model_config(name: str, n_critic: int = 1, batch: Optional[int] = None,
                 dtype: str = 'float32'):
    """The config of benchmark model `name` (no evaluations), at its benchmark
    batch size (or `batch`), computing in `dtype`, and, when n_critic > 0,
    with n_critic D updates per step."""
    module_name, batch_size, _ = MODELS[name]
    config = importlib.import_module(
        f'experiments.configs.{module_name}').get_config('noeval')
    config.batch_size = batch or batch_size
    config.model.compute_dtype = dtype
    if n_critic > 0:
        config.n_critic = n_critic
    return config


# --------------------------------------------------------------------------- #
# JAX: the library's own step.                                                #
# --------------------------------------------------------------------------- #
def prepare_jax(config) -> Tuple[step_timing.Stepper, Dict[str, Any]]:
    """Compiles gan_jax's update step on synthetic batches and warms it up.

    Returns:
      (stepper, info): stepper dispatches one update (step_timing.Stepper);
      info has 'compile_s', 'jax_second_call_ms', 'gflops', 'data_shape' and
      'check', a callable that raises RuntimeError if the step compiled again
      since warm-up.
    """
    import jax

    from gan_jax import experiment, parallel, train

    info, _, _, spec, state = experiment.build(config)
    # One device, like the torch reference; the state replicated as loop.run
    # places it, so the step sees the same shardings as in training.
    mesh = parallel.make_mesh(num_devices=1)
    state_sharding = parallel.replicated(mesh)
    batch_sharding = parallel.batch_sharding(mesh)
    state = jax.device_put(jax.tree.map(np.asarray, state), state_sharding)
    rng = np.random.default_rng(0)
    leading = (config.n_critic, config.batch_size)
    batch = {'x': rng.uniform(-1.0, 1.0, leading + tuple(info.shape)
                              ).astype(np.float32)}
    if config.data.labels:  # a class-conditional model: one label per sample
        batch['label'] = rng.integers(0, info.num_classes, leading).astype(np.int32)
    batch = jax.device_put(batch, batch_sharding)
    step = train.make_train_step(spec, state_sharding=state_sharding,
                                 batch_sharding=batch_sharding)
    holder = {'state': state}

    def dispatch():
        # The step donates the state: always rebind.
        holder['state'], _ = step(holder['state'], batch)

    stepper = step_timing.Stepper(
        dispatch, lambda: jax.block_until_ready(holder['state']))
    # The first of JAX_CALLS_BEFORE_TIMING calls (steps 0 and 1).
    compile_s = stepper.latency_ms() / 1e3
    # Served from the cache of the call above, so it does not compile again.
    flops = step_timing.program_flops(step.lower(holder['state'], batch).compile())
    # A private jax API: skip the check where it is missing.
    cache_size = getattr(step, '_cache_size', lambda: None)()
    second_ms = stepper.latency_ms()

    def check():
        if cache_size is not None and step._cache_size() != cache_size:
            raise RuntimeError('the update step compiled again after its first call '
                               '(a shape, dtype or sharding of the state changed)')
    return stepper, dict(compile_s=compile_s, jax_second_call_ms=second_ms,
                         gflops=None if flops is None else flops / 1e9,
                         data_shape=tuple(info.shape), check=check)


# --------------------------------------------------------------------------- #
# PyTorch: the same networks and step (scripts/torch_reference.py).           #
# --------------------------------------------------------------------------- #
def torch_device(cpu: bool = False):
    """CUDA when available (and not `cpu`), else the CPU. On CUDA, as XLA on
    GPU by default: TF32 in float32 matrix products and convolutions, and
    cuDNN's convolution algorithms autotuned (in the warm-up steps)."""
    import torch
    if torch.cuda.is_available() and not cpu:
        torch.set_float32_matmul_precision('high')
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        return torch.device('cuda')
    return torch.device('cpu')


def torch_stepper(config, data_shape, device, variant: str = 'eager'
                  ) -> step_timing.Stepper:
    """The PyTorch reference step of `config` in form `variant`
    (torch_reference.VARIANTS), in bfloat16 autocast when the config computes
    in bfloat16, warmed up on synthetic batches (random labels for a
    conditional model); stepper.adam says which Adam kernel ran. Its step
    counter starts at JAX_CALLS_BEFORE_TIMING - TORCH_WARMUP_STEPS, so the
    first step after warm-up is step JAX_CALLS_BEFORE_TIMING, as prepare_jax's.

    Raises:
      NotImplementedError: the reference has no such network or option.
      Exception: whatever the variant's set-up or first steps raise (a
        torch.compile without a working compiler raises here).
    """
    import torch
    import torch_reference

    torch.manual_seed(0)
    autocast = torch.bfloat16 if config.model.compute_dtype == 'bfloat16' else None
    step, _, _ = torch_reference.make_step(
        config, data_shape, device, variant, autocast,
        first_step=JAX_CALLS_BEFORE_TIMING - TORCH_WARMUP_STEPS)
    shape = (config.n_critic, config.batch_size)
    if len(data_shape) == 3:  # HWC -> CHW
        shape += (data_shape[2], data_shape[0], data_shape[1])
    else:
        shape += tuple(data_shape)
    reals = torch_reference.as_input(torch.rand(shape, device=device) * 2.0 - 1.0,
                                     variant)
    # Random labels for a conditional model, as prepare_jax's batch.
    classes = torch_reference.num_classes(config)
    labels = (torch.randint(0, classes, shape[:2], device=device) if classes
              else None)
    # CPU ops are synchronous; CUDA ones are queued.
    wait = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    stepper = step_timing.Stepper(
        (lambda: step(reals)) if labels is None else (lambda: step(reals, labels)),
        wait)
    stepper.adam = step.adam
    for _ in range(TORCH_WARMUP_STEPS):
        stepper.dispatch()
    wait()
    return stepper


def prepare_torch(config, data_shape):
    """(timed_step() -> wall ms of one blocked step, device name) of the eager
    reference, for scripts that time single steps (bench_ops)."""
    device = torch_device()
    return torch_stepper(config, data_shape, device).latency_ms, str(device)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def one_line(error: BaseException) -> str:
    """`Type: first line of the message`, at most 200 characters."""
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'[:200]


# --------------------------------------------------------------------------- #
# Driver.                                                                     #
# --------------------------------------------------------------------------- #
def run_benchmark(models: Sequence[str], steps: int = 20, use_torch: bool = True,
                  n_critic: int = 1, torch_threads: int = 0, rounds: int = 5,
                  batch: Optional[int] = None, dtype: str = 'float32',
                  torch_variants: Sequence[str] = ('eager', 'tuned')
                  ) -> List[Dict[str, Any]]:
    """One row per model: JAX and (if use_torch and importable) torch timings.

    Args:
      models: names from MODELS.
      steps: timed steps per side and measure (after warm-up), taken in
        `rounds` rounds (see step_timing.measure).
      use_torch: run the PyTorch reference when torch imports.
      n_critic: D updates per step for every model; 0 = each config's own.
      torch_threads: torch's CPU threads; 0 = os.cpu_count().
      batch: every model's batch size; None = each model's own (MODELS).
      dtype: model.compute_dtype of every model ('float32' or 'bfloat16').
      torch_variants: keys of torch_reference.VARIANTS to time; 'eager' is
        always among them (the ratio's reference).
    Returns:
      rows with keys model, batch, dtype, n_critic, jax_ms (throughput
      ms/step), jax_ms_spread, jax_latency_ms, jax_latency_spread_ms,
      jax_second_call_ms, compile_s, gflops (per step),
      achieved_gflops_per_s, share_of_<peak>_peak (GPUs in PEAK_TFLOPS),
      torch_ms, torch_ms_spread, torch_latency_ms (the eager variant),
      ratio (jax / torch eager), torch_variants ({variant: {status, ms,
      spread_ms, latency_ms, latency_spread_ms, adam} or {status, error}}),
      torch_best (the fastest variant that ran), torch_best_ms, ratio_best,
      torch_device, torch_status (why torch has no numbers, else 'ok'); the
      torch entries are None when torch did not run.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f'unknown model {unknown[0]!r}; valid: {", ".join(MODELS)}')
    if dtype not in DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}; valid: {", ".join(DTYPES)}')
    variants = ['eager'] + [v for v in torch_variants if v != 'eager']
    use_torch = use_torch and torch_available()
    if use_torch:
        import torch
        import torch_reference
        bad = [v for v in variants if v not in torch_reference.VARIANTS]
        if bad:
            raise ValueError(f'unknown torch variant {bad[0]!r}; valid: '
                             f'{", ".join(torch_reference.VARIANTS)}')
        torch.set_num_threads(torch_threads or os.cpu_count())
        device = torch_device()
    import jax
    peak = step_timing.peaks(jax.devices()[0].device_kind)
    rows = []
    for name in models:
        config = model_config(name, n_critic, batch, dtype)
        jax_stepper, info = prepare_jax(config)
        steppers, ran = [jax_stepper], []
        row = dict(model=name, batch=config.batch_size, dtype=dtype,
                   n_critic=config.n_critic, torch_ms=None, torch_ms_spread=None,
                   torch_latency_ms=None, ratio=None, torch_variants=None,
                   torch_best=None, torch_best_ms=None, ratio_best=None,
                   torch_device=None,
                   torch_status='not run' if use_torch or not torch_available()
                   else 'not run (--no-torch)')
        if not torch_available():
            row['torch_status'] = 'not installed'
        if use_torch:
            row['torch_device'], row['torch_variants'] = str(device), {}
            for variant in variants:
                try:
                    stepper = torch_stepper(config, info['data_shape'], device,
                                            variant)
                except NotImplementedError as e:  # no reference for this model
                    row['torch_status'] = f'no PyTorch reference: {e}'
                    break
                except Exception as e:  # e.g. torch.compile without a compiler
                    row['torch_variants'][variant] = {
                        'status': 'unavailable', 'error': one_line(e)}
                    continue
                steppers.append(stepper)
                ran.append(variant)
                row['torch_variants'][variant] = {'status': 'ok',
                                                  'adam': stepper.adam}
        results = step_timing.measure(steppers, steps, rounds)
        info['check']()
        jax_result = results[0]
        row.update(jax_ms=jax_result['ms'], jax_ms_spread=jax_result['spread_ms'],
                   jax_latency_ms=jax_result['latency_ms'],
                   jax_latency_spread_ms=jax_result['latency_spread_ms'],
                   jax_second_call_ms=info['jax_second_call_ms'],
                   compile_s=info['compile_s'], gflops=info['gflops'],
                   achieved_gflops_per_s=None)
        if row['gflops'] is not None:
            row['achieved_gflops_per_s'] = row['gflops'] / (row['jax_ms'] / 1e3)
            row.update(step_timing.peak_shares(
                row['achieved_gflops_per_s'] / 1e3, dtype, peak))
        for variant, result in zip(ran, results[1:]):
            row['torch_variants'][variant].update(result)
        if ran:
            row['torch_status'] = 'ok'
            if 'eager' in ran:
                eager = row['torch_variants']['eager']
                row.update(torch_ms=eager['ms'], torch_ms_spread=eager['spread_ms'],
                           torch_latency_ms=eager['latency_ms'],
                           ratio=row['jax_ms'] / eager['ms'])
            best = min(ran, key=lambda v: row['torch_variants'][v]['ms'])
            row.update(torch_best=best,
                       torch_best_ms=row['torch_variants'][best]['ms'],
                       ratio_best=row['jax_ms'] / row['torch_variants'][best]['ms'])
        rows.append(row)
    return rows


def environment(use_torch: bool = True) -> str:
    """One line: device kind, CPU, jax and torch versions."""
    import jax
    device = jax.devices()[0]
    torch_part = 'torch not installed' if use_torch else 'torch not run (--no-torch)'
    if use_torch and torch_available():
        import torch
        where = (f'cuda ({torch.cuda.get_device_name()})' if torch.cuda.is_available()
                 else f'cpu, {torch.get_num_threads()} threads')
        torch_part = f'torch {torch.__version__} ({where})'
    return (f'device: {device.device_kind} ({device.platform}); CPU: '
            f'{step_timing.cpu_name()}; jax {jax.__version__}; {torch_part}')


def peak_line(device_kind: str) -> str:
    """The peaks assumed for MFU, and whether this device has one."""
    known = ', '.join(f"{name} dense bf16 {p['bfloat16']:g}, TF32 {p['tf32']:g}, "
                      f"FP32 {p['float32']:g} TFLOP/s"
                      for name, p in step_timing.PEAK_TFLOPS.items())
    here = ('MFU below against this device\'s' if step_timing.peaks(device_kind)
            else f'no peak known for {device_kind!r}: no MFU column')
    return (f'Peaks assumed for MFU: {known}; bfloat16 steps against bf16, '
            'float32 steps against TF32 (XLA computes float32 convolutions and '
            f'matrix products in TF32 on GPUs by default) and FP32. {here}.')


def _fmt(value, spec='.1f', missing='–'):
    return missing if value is None else format(value, spec)


def _ms(value, spread):
    return '–' if value is None else f'{value:.1f} ± {spread:.1f}'


def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The markdown table of run_benchmark's rows, with its notes."""
    mfu = any('share_of_tf32_peak' in r or 'share_of_bfloat16_peak' in r
              for r in rows)
    lines = ['| model | batch | dtype | jax ms/step | jax latency ms '
             '| torch eager ms/step | torch eager latency ms | best torch ms/step '
             '| jax/eager | jax/best | GFLOP/step | achieved GFLOP/s '
             + ('| MFU ' if mfu else '') + '| compile s |',
             '|---' * (14 if mfu else 13) + '|']
    notes = []
    for r in rows:
        eager = (r['torch_variants'] or {}).get('eager', {})
        best = (r['torch_variants'] or {}).get(r['torch_best'] or '', {})
        best_cell = ('–' if not best else
                     f"{_ms(best['ms'], best['spread_ms'])} ({r['torch_best']})")
        cells = [r['model'], r['batch'], r['dtype'],
                 _ms(r['jax_ms'], r['jax_ms_spread']),
                 _ms(r['jax_latency_ms'], r['jax_latency_spread_ms']),
                 _ms(eager.get('ms'), eager.get('spread_ms')),
                 _ms(eager.get('latency_ms'), eager.get('latency_spread_ms')),
                 best_cell, _fmt(r['ratio'], '.2f'), _fmt(r['ratio_best'], '.2f'),
                 _fmt(r['gflops'], '.2f'), _fmt(r['achieved_gflops_per_s'])]
        if mfu:
            cells.append(' / '.join(
                f"{100 * r[f'share_of_{k}_peak']:.1f}% {k}"
                for k in ('bfloat16', 'tf32', 'float32')
                if f'share_of_{k}_peak' in r) or '–')
        cells.append(_fmt(r['compile_s']))
        lines.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
        if r['torch_status'] != 'ok':
            notes.append(f"{r['model']}: torch {r['torch_status']}.")
        for variant, v in (r['torch_variants'] or {}).items():
            if v['status'] != 'ok':
                notes.append(f"{r['model']}: torch {variant} unavailable: "
                             f"{v['error']}")
            else:
                notes.append(
                    f"{r['model']}: torch {variant} {_ms(v['ms'], v['spread_ms'])} "
                    'ms/step, latency '
                    f"{_ms(v['latency_ms'], v['latency_spread_ms'])} ms "
                    f"(Adam {v['adam']}).")
    critics = ', '.join(f"{r['model']} {r['n_critic']}" for r in rows)
    resnet = any(r['model'] == 'resnet32' and r['n_critic'] == 1 for r in rows)
    lines += [
        '',
        f'A step = n_critic D updates + 1 G update + EMA; n_critic: {critics}'
        + (' (resnet32\'s config trains with 5; 1 here for comparability, '
           '--n_critic 0 for the config\'s own)' if resnet else '')
        + '. ms/step: throughput (a block of steps dispatched, one wait at the '
        'end); latency: each step waited for; both median ± half the '
        'interquartile range. best torch: the fastest of the torch variants '
        'that ran. GFLOP/step: XLA\'s cost analysis of our compiled step; '
        'achieved GFLOP/s from our throughput. compile s: first call.']
    lines += [''] + notes if notes else []
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated, from {", ".join(MODELS)}')
    parser.add_argument('--batch', type=int, default=0,
                        help="every model's batch size (default 0 = each model's own)")
    parser.add_argument('--dtype', default='float32', choices=DTYPES,
                        help='model.compute_dtype; torch: bfloat16 autocast')
    parser.add_argument('--steps', type=int, default=20,
                        help='timed steps per side, for each of the two measures')
    parser.add_argument('--rounds', type=int, default=5,
                        help='interleaved rounds the steps are split into')
    parser.add_argument('--n_critic', type=int, default=1,
                        help='D updates per step for every model; 0 = each '
                             "config's own (resnet32: 5)")
    parser.add_argument('--torch_variants', default='eager,tuned',
                        help='comma-separated, from eager, tuned, compiled '
                             '(scripts/torch_reference.py VARIANTS)')
    parser.add_argument('--no-torch', dest='torch', action='store_false')
    # On a CPU shared with other jobs, torch's OpenMP threads wait on each
    # other at every op: one thread can then be many times faster than all.
    parser.add_argument('--torch_threads', type=int, default=0,
                        help='torch CPU threads (default 0 = all cores)')
    parser.add_argument('--json', default='')
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error('--steps must be positive')
    if args.batch < 0:
        parser.error('--batch must be positive (or 0: each model\'s own)')
    models = [m for m in args.models.split(',') if m]

    rows = run_benchmark(models, args.steps, args.torch, args.n_critic,
                         args.torch_threads, args.rounds, batch=args.batch or None,
                         dtype=args.dtype,
                         torch_variants=[v for v in args.torch_variants.split(',')
                                         if v])
    import jax
    print(environment(args.torch))
    print(peak_line(jax.devices()[0].device_kind))
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
