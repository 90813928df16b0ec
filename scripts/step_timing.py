r"""Timing of update steps, shared by the benchmark scripts (bench_step,
bench_loop, accelerator_check): throughput and latency of a step, several
steps interleaved, XLA's FLOP count, the CPU's name and the accelerator peaks
that model-FLOP utilisation (MFU) is quoted against.

Two measures of one step:
  throughput  N steps dispatched back to back, one block at the end, divided
              by N: what a training loop that does not wait on every step
              gets (JAX dispatches asynchronously; so does torch on CUDA).
  latency     one step dispatched and waited for: what a loop that blocks on
              every step gets (dispatch, launch and the device's idle gap
              included).
On a CPU the two are close (XLA:CPU and torch's CPU ops mostly run on the
calling thread); on a GPU throughput is the number that matters.
"""
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Dense peaks in TFLOP/s (no sparsity), by a substring of the device kind
# (jax's device_kind, torch.cuda.get_device_name()). 'tf32' is the rate of
# float32 convolutions and matrix products computed in TF32, which XLA uses
# for float32 on these GPUs by default (jax_default_matmul_precision unset);
# 'float32' is the plain FP32 rate. H100 SXM has the same dense peaks.
PEAK_TFLOPS = {
    'H200': {'bfloat16': 989.0, 'tf32': 495.0, 'float32': 67.0},
    'H100': {'bfloat16': 989.0, 'tf32': 495.0, 'float32': 67.0},
}


class Stepper:
    """One benchmarked step, split in what the host does and the wait.

    Args:
      dispatch: queues one step and returns without waiting for its result
        (a donating JAX step rebinds its state inside).
      wait: blocks until everything dispatched so far has finished.
    """

    def __init__(self, dispatch: Callable[[], None], wait: Callable[[], None]):
        self.dispatch = dispatch
        self.wait = wait

    def latency_ms(self) -> float:
        """Milliseconds of one step dispatched and waited for."""
        start = time.perf_counter()
        self.dispatch()
        self.wait()
        return 1e3 * (time.perf_counter() - start)

    def throughput_ms(self, steps: int) -> float:
        """Milliseconds per step of `steps` steps dispatched back to back and
        one wait at the end. The queue is drained first, so that earlier work
        does not count."""
        self.wait()
        start = time.perf_counter()
        for _ in range(steps):
            self.dispatch()
        self.wait()
        return 1e3 * (time.perf_counter() - start) / steps


def median_spread(times_ms: Sequence[float]) -> Tuple[float, float]:
    """(median, half the interquartile range) of times in ms."""
    q25, q50, q75 = np.percentile(np.asarray(times_ms, dtype=np.float64),
                                  [25, 50, 75])
    return float(q50), float(q75 - q25) / 2


def round_sizes(steps: int, rounds: int) -> List[int]:
    """`steps` split into min(rounds, steps) blocks as equal as can be."""
    rounds = max(1, min(rounds, steps))
    return [steps * (r + 1) // rounds - steps * r // rounds for r in range(rounds)]


def interleaved(timers: Sequence[Callable[[], float]], steps: int, rounds: int
                ) -> List[List[float]]:
    """Times `steps` calls of each timer in `rounds` alternating blocks (A's
    block, B's block, A's, ...), so that a slow stretch of a shared machine
    falls on both sides alike. Returns one list of milliseconds per timer."""
    times: List[List[float]] = [[] for _ in timers]
    for block in round_sizes(steps, rounds):
        for timer, out in zip(timers, times):
            out.extend(timer() for _ in range(block))
    return times


def measure(steppers: Sequence[Stepper], steps: int, rounds: int,
            latency_steps: Optional[int] = None) -> List[Dict[str, float]]:
    """Throughput and latency of each stepper, interleaved.

    Each of `rounds` rounds runs, for every stepper in turn, one throughput
    block (its share of `steps`, dispatched back to back, one wait), then,
    for every stepper in turn, its share of `latency_steps` (default: as
    many as `steps`) steps each waited for, so that a busy stretch of a
    shared machine hits every stepper and both measures alike.

    Returns:
      per stepper {'ms': median over the rounds of the throughput blocks'
      ms/step, 'spread_ms': half their interquartile range, 'latency_ms':
      median of the latency steps, 'latency_spread_ms', 'latency_min_ms'}.
    """
    latency_steps = steps if latency_steps is None else latency_steps
    rounds = max(1, min(rounds, steps))
    blocks = round_sizes(steps, rounds)
    latency_blocks = round_sizes(latency_steps, rounds) if latency_steps else []
    latency_blocks += [0] * (len(blocks) - len(latency_blocks))
    throughput = [[] for _ in steppers]
    latency = [[] for _ in steppers]
    for block, latency_block in zip(blocks, latency_blocks):
        for stepper, out in zip(steppers, throughput):
            out.append(stepper.throughput_ms(block))
        for stepper, out in zip(steppers, latency):
            out.extend(stepper.latency_ms() for _ in range(latency_block))
    results = []
    for through, lat in zip(throughput, latency):
        ms, spread = median_spread(through)
        result = {'ms': ms, 'spread_ms': spread}
        if lat:
            result['latency_ms'], result['latency_spread_ms'] = median_spread(lat)
            result['latency_min_ms'] = float(np.min(lat))
        results.append(result)
    return results


def program_flops(compiled) -> Optional[float]:
    """FLOPs of a compiled XLA program by its cost analysis (a dict, or a
    list with one dict per program in some jax versions), or None where the
    backend has no cost model."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # some backends have none
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get('flops')
    return float(flops) if flops else None


def cpu_name() -> str:
    """The 'model name' of /proc/cpuinfo with its family and model numbers
    and vector extensions (the same name covers several generations), e.g.
    'AMD EPYC (family 25, model 17; avx2, avx512f, avx512_bf16; 2 cores)'."""
    try:
        with open('/proc/cpuinfo') as f:
            lines = f.read().splitlines()
    except OSError:
        import platform
        return f'{platform.processor() or platform.machine()} ({os.cpu_count()} cores)'

    def field(name, default='?'):
        return next((line.split(':', 1)[1].strip() for line in lines
                     if line.split(':', 1)[0].strip() == name), default)
    flags = field('flags', '').split()
    wanted = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    return (f"{field('model name', 'unknown CPU')} (family {field('cpu family')}, "
            f"model {field('model')}; {', '.join(wanted) or 'no AVX2'}; "
            f'{os.cpu_count()} cores)')


def peaks(device_kind: str) -> Optional[Dict[str, float]]:
    """The dense peaks (TFLOP/s by 'bfloat16', 'tf32', 'float32') of a device
    kind, or None for a device not in PEAK_TFLOPS (CPUs among them)."""
    for name, values in PEAK_TFLOPS.items():
        if name.lower() in device_kind.lower():
            return dict(values)
    return None


def peak_shares(tflops: float, dtype: str, peak: Optional[Dict[str, float]]
                ) -> Dict[str, float]:
    """{'share_of_<peak>_peak': achieved / peak}: bfloat16 steps against the
    bf16 peak, float32 steps against both TF32 (XLA's default for float32 on
    GPUs) and FP32. Empty without a known peak."""
    if peak is None:
        return {}
    names = ('bfloat16',) if dtype == 'bfloat16' else ('tf32', 'float32')
    return {f'share_of_{name}_peak': tflops / peak[name] for name in names}
