r"""Milliseconds per update step: our jitted step next to the same networks and
the same step written in PyTorch eager.

  python scripts/bench_step.py [--models mlp,dcgan32,resnet32,dcgan64]
      [--steps 20] [--rounds 5] [--n_critic 1] [--no-torch] [--torch_threads N]
      [--json FILE]

Models, each built from its real config through `gan_jax.experiment.build` and
compiled by `gan_jax.train.make_train_step` (state replicated on a one-device
mesh, as `loop.run` places it):
  mlp       toy_ring: PacGAN's toy MLPs (G 4x400 ReLU+BN, D 2 maxout layers),
            batch 256.
  dcgan32   cifar10_dcgan: DCGAN-32, base width 64, batch 64.
  resnet32  cifar10_sngan: SNGAN's ResNets, spectral norm in D, hinge loss,
            batch 64.
  dcgan64   celeba64_dcgan: DCGAN-64, base width 64, batch 64.
Batches are synthetic (uniform in [-1, 1]); no dataset is read.

One step is what `gan_jax.train.train_step` does: n_critic D updates (D sees
real and fresh fakes concatenated in one call), one G update against the
updated D (D in training mode, its statistics dropped), the generator EMA.
The PyTorch reference (scripts/torch_reference.py) repeats it in the same
order with the same layer shapes, losses, BN momentum/eps, spectral norm (one
power iteration per training forward) and Adam hyperparameters; torch runs
NCHW, its own layout, and on CUDA with TF32 and cuDNN autotuning, as XLA does
by default. Times: median over `--steps` steps after warm-up, taken in
`--rounds` alternating blocks of JAX and torch steps so that a slow stretch of
a shared machine hits both, "± spread" = half the interquartile range (the
middle half of the steps lies within median ± spread when the spread is
symmetric). JAX's first call (tracing and compiling) is reported as
"compile s"; FLOPs come from XLA's cost analysis of the compiled step. torch
is optional: without it (or with --no-torch) its columns are empty / null.
On a CPU shared with other jobs, try --torch_threads 1 (see main).
"""
import argparse
import importlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (config module in experiments/configs, batch size, description).
MODELS = {
    'mlp': ('toy_ring', 256, 'toy MLP'),
    'dcgan32': ('cifar10_dcgan', 64, 'DCGAN 32x32'),
    'resnet32': ('cifar10_sngan', 64, 'SNGAN ResNet 32x32'),
    'dcgan64': ('celeba64_dcgan', 64, 'DCGAN 64x64'),
}
# Steps run before timing starts. JAX: the first call compiles, the second is
# timed apart to show that it does not compile again. torch: allocator and
# oneDNN/cuDNN set-up happen in the first steps.
TORCH_WARMUP_STEPS = 2


def model_config(name: str, n_critic: int = 1):
    """The config of benchmark model `name` (no evaluations), at its benchmark
    batch size and, when n_critic > 0, with n_critic D updates per step."""
    module_name, batch_size, _ = MODELS[name]
    config = importlib.import_module(
        f'experiments.configs.{module_name}').get_config('noeval')
    config.batch_size = batch_size
    if n_critic > 0:
        config.n_critic = n_critic
    return config


def _median_spread(times_ms: Sequence[float]):
    """(median, half the interquartile range) of per-step times in ms."""
    q25, q50, q75 = np.percentile(np.asarray(times_ms), [25, 50, 75])
    return float(q50), float(q75 - q25) / 2


def _flops(compiled) -> Optional[float]:
    """FLOPs of a compiled XLA program; cost_analysis() is a dict or, in some
    jax versions, a list with one dict per program."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get('flops')
    return float(flops) if flops is not None else None


# --------------------------------------------------------------------------- #
# JAX: the library's own step.                                                #
# --------------------------------------------------------------------------- #
def prepare_jax(config) -> Tuple[Callable[[], float], Dict[str, Any]]:
    """Compiles gan_jax's update step on synthetic batches and warms it up.

    Returns:
      (timed_step, info): timed_step() runs one update and returns its wall
      milliseconds (after block_until_ready); info has 'compile_s',
      'jax_second_call_ms', 'gflops', 'data_shape' and 'check', a callable
      that raises RuntimeError if the step compiled again since warm-up.
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
    x = np.random.default_rng(0).uniform(
        -1.0, 1.0, (config.n_critic, config.batch_size) + tuple(info.shape))
    batch = jax.device_put({'x': x.astype(np.float32)}, batch_sharding)
    step = train.make_train_step(spec, state_sharding=state_sharding,
                                 batch_sharding=batch_sharding)
    holder = {'state': state}

    def timed_step() -> float:
        start = time.perf_counter()
        # The step donates the state: always rebind.
        holder['state'], _ = step(holder['state'], batch)
        jax.block_until_ready(holder['state'])
        return 1e3 * (time.perf_counter() - start)

    compile_s = timed_step() / 1e3
    # Served from the cache of the call above, so it does not compile again.
    flops = _flops(step.lower(holder['state'], batch).compile())
    # A private jax API: skip the check where it is missing.
    cache_size = getattr(step, '_cache_size', lambda: None)()
    second_ms = timed_step()

    def check():
        if cache_size is not None and step._cache_size() != cache_size:
            raise RuntimeError('the update step compiled again after its first call '
                               '(a shape, dtype or sharding of the state changed)')
    return timed_step, dict(compile_s=compile_s, jax_second_call_ms=second_ms,
                            gflops=None if flops is None else flops / 1e9,
                            data_shape=tuple(info.shape), check=check)


# --------------------------------------------------------------------------- #
# PyTorch eager: the same networks and step (scripts/torch_reference.py).     #
# --------------------------------------------------------------------------- #
def prepare_torch(config, data_shape) -> Tuple[Callable[[], float], str]:
    """Builds and warms up the PyTorch reference step (CUDA when available,
    else CPU). Returns (timed_step() -> wall ms of one step, device name)."""
    import torch
    import torch_reference

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    if device.type == 'cuda':
        # As XLA on GPU by default: TF32 in float32 matmuls and convolutions,
        # and convolution algorithms autotuned (here in the warm-up steps).
        torch.set_float32_matmul_precision('high')
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    step, _, _ = torch_reference.make_step(config, data_shape, device)
    shape = (config.n_critic, config.batch_size)
    if len(data_shape) == 3:  # HWC -> CHW
        shape += (data_shape[2], data_shape[0], data_shape[1])
    else:
        shape += tuple(data_shape)
    reals = torch.rand(shape, device=device) * 2.0 - 1.0
    for _ in range(TORCH_WARMUP_STEPS):
        step(reals)
    sync()

    def timed_step() -> float:
        start = time.perf_counter()
        step(reals)
        sync()  # CPU ops are synchronous; CUDA ones are not
        return 1e3 * (time.perf_counter() - start)
    return timed_step, str(device)


def interleaved(timers: Sequence[Callable[[], float]], steps: int, rounds: int
                ) -> List[List[float]]:
    """Times `steps` calls of each timer in `rounds` alternating blocks (A's
    block, B's block, A's, ...), so that a slow stretch of a shared machine
    falls on both sides alike. Returns one list of milliseconds per timer."""
    times: List[List[float]] = [[] for _ in timers]
    rounds = max(1, min(rounds, steps))
    for r in range(rounds):
        block = steps * (r + 1) // rounds - steps * r // rounds
        for timer, out in zip(timers, times):
            out.extend(timer() for _ in range(block))
    return times


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Driver.                                                                     #
# --------------------------------------------------------------------------- #
def run_benchmark(models: Sequence[str], steps: int = 20, use_torch: bool = True,
                  n_critic: int = 1, torch_threads: int = 0, rounds: int = 5
                  ) -> List[Dict[str, Any]]:
    """One row per model: JAX and (if use_torch and importable) torch timings.

    Args:
      models: names from MODELS.
      steps: timed steps per framework (after warm-up), taken in `rounds`
        alternating blocks of JAX and torch steps (see `interleaved`).
      use_torch: run the PyTorch reference when torch imports.
      n_critic: D updates per step for every model; 0 = each config's own.
      torch_threads: torch's CPU threads; 0 = os.cpu_count().
    Returns:
      rows with keys model, batch, n_critic, jax_ms, jax_ms_spread,
      jax_second_call_ms, compile_s, gflops (per step), achieved_gflops_per_s,
      torch_ms, torch_ms_spread, ratio (jax/torch), torch_device; the torch
      entries are None when torch did not run.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f'unknown model {unknown[0]!r}; valid: {", ".join(MODELS)}')
    use_torch = use_torch and torch_available()
    if use_torch:
        import torch
        torch.set_num_threads(torch_threads or os.cpu_count())
    rows = []
    for name in models:
        config = model_config(name, n_critic)
        jax_step, info = prepare_jax(config)
        timers = [jax_step]
        device = None
        if use_torch:
            torch_step, device = prepare_torch(config, info['data_shape'])
            timers.append(torch_step)
        times = interleaved(timers, steps, rounds)
        info['check']()
        jax_ms, jax_spread = _median_spread(times[0])
        row = dict(model=name, batch=config.batch_size, n_critic=config.n_critic,
                   jax_ms=jax_ms, jax_ms_spread=jax_spread,
                   jax_second_call_ms=info['jax_second_call_ms'],
                   compile_s=info['compile_s'], gflops=info['gflops'],
                   achieved_gflops_per_s=None, torch_ms=None, torch_ms_spread=None,
                   ratio=None, torch_device=device)
        if row['gflops'] is not None:
            row['achieved_gflops_per_s'] = row['gflops'] / (row['jax_ms'] / 1e3)
        if use_torch:
            row['torch_ms'], row['torch_ms_spread'] = _median_spread(times[1])
            row['ratio'] = row['jax_ms'] / row['torch_ms']
        rows.append(row)
    return rows


def environment(use_torch: bool = True) -> str:
    """One line: device kind, cores, jax and torch versions."""
    import jax
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    torch_part = 'torch not installed' if use_torch else 'torch not run (--no-torch)'
    if use_torch and torch_available():
        import torch
        where = (f'cuda ({torch.cuda.get_device_name()})' if torch.cuda.is_available()
                 else f'cpu, {torch.get_num_threads()} threads')
        torch_part = f'torch {torch.__version__} ({where})'
    return (f'device: {device.device_kind} ({device.platform}); CPU: {cpu}, '
            f'{os.cpu_count()} cores; jax {jax.__version__}; {torch_part}')


def _fmt(value, spec='.1f', missing='–'):
    return missing if value is None else format(value, spec)


def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The markdown table of run_benchmark's rows, with its notes."""
    lines = ['| model | batch | jax ms | torch ms | jax/torch | GFLOP/step '
             '| achieved GFLOP/s | compile s |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        torch_ms = ('–' if r['torch_ms'] is None
                    else f"{r['torch_ms']:.1f} ± {r['torch_ms_spread']:.1f}")
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['jax_ms']:.1f} ± "
            f"{r['jax_ms_spread']:.1f} | {torch_ms} | {_fmt(r['ratio'], '.2f')} | "
            f"{_fmt(r['gflops'], '.2f')} | {_fmt(r['achieved_gflops_per_s'])} | "
            f"{r['compile_s']:.1f} |")
    critics = ', '.join(f"{r['model']} {r['n_critic']}" for r in rows)
    resnet = any(r['model'] == 'resnet32' and r['n_critic'] == 1 for r in rows)
    lines += [
        '',
        f'A step = n_critic D updates + 1 G update + EMA; n_critic: {critics}'
        + (' (resnet32\'s config trains with 5; 1 here for comparability, '
           '--n_critic 0 for the config\'s own)' if resnet else '')
        + '. ms: median ± half the interquartile range. '
        'GFLOP/step: XLA\'s cost analysis of our compiled step. '
        'compile s: first call.']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated, from {", ".join(MODELS)}')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternating JAX / torch blocks the steps are split into')
    parser.add_argument('--n_critic', type=int, default=1,
                        help='D updates per step for every model; 0 = each '
                             "config's own (resnet32: 5)")
    parser.add_argument('--no-torch', dest='torch', action='store_false')
    # On a CPU shared with other jobs, torch's OpenMP threads wait on each
    # other at every op: one thread can then be many times faster than all.
    parser.add_argument('--torch_threads', type=int, default=0,
                        help='torch CPU threads (default 0 = all cores)')
    parser.add_argument('--json', default='')
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error('--steps must be positive')
    models = [m for m in args.models.split(',') if m]

    rows = run_benchmark(models, args.steps, args.torch, args.n_critic,
                         args.torch_threads, args.rounds)
    print(environment(args.torch))
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
