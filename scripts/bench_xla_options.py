"""Times our update step compiled with XLA's default options and with
gan_jax.ops.xla_options (on CPU: YNNPACK for matrix products and reductions,
Eigen for convolutions), interleaved in one process, so that the machine's
drift affects both alike.

    python scripts/bench_xla_options.py --models dcgan32 --rounds 8
    python scripts/bench_xla_options.py --models resnet32 --rounds 2 --steps_per_round 1

Prints one row per model: median ms per step of each, and ours / default.
"""
import argparse
import os
import sys
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compare(model: str, rounds: int, steps_per_round: int) -> Dict[str, float]:
    """Median ms per update step of `model` (a bench_step model name) under
    XLA's default options and under gan_jax.ops.xla_options."""
    import jax

    import bench_step
    from gan_jax import experiment, train
    from gan_jax.ops import xla_options

    config = bench_step.model_config(model, 1)
    info, _, _, spec, state = experiment.build(config)
    x = np.random.default_rng(0).uniform(
        -1.0, 1.0, (config.n_critic, config.batch_size) + tuple(info.shape))
    batch = {'x': jax.device_put(x.astype(np.float32))}
    variants = {'default': None, 'ours': xla_options.compiler_options()}
    holders = {}

    def timer(name, step):
        def timed_step() -> float:
            start = time.perf_counter()
            holders[name], _ = step(holders[name], batch)  # donated: rebind
            jax.block_until_ready(holders[name])
            return 1e3 * (time.perf_counter() - start)
        return timed_step

    timers = []
    for name, options in variants.items():
        step = jax.jit(lambda s, b: train.train_step(s, b, spec=spec),
                       donate_argnums=0, compiler_options=options)
        # Each variant its own copy: the step donates its state.
        holders[name] = jax.tree.map(lambda a: jax.numpy.array(a, copy=True), state)
        timers.append(timer(name, step))
        timers[-1]()  # compile, warm up
    times = bench_step.interleaved(timers, rounds * steps_per_round, rounds)
    return {name: float(np.median(t)) for name, t in zip(variants, times)}


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default='dcgan32',
                        help='comma-separated bench_step models (mlp, dcgan32, resnet32, dcgan64)')
    parser.add_argument('--rounds', type=int, default=8)
    parser.add_argument('--steps_per_round', type=int, default=5)
    args = parser.parse_args(argv)
    import bench_step
    from gan_jax.ops import xla_options
    models = args.models.split(',')
    unknown = [m for m in models if m not in bench_step.MODELS]
    if unknown:
        raise ValueError(f'unknown model(s) {unknown}: choose from {sorted(bench_step.MODELS)}')
    print(f'gan_jax.ops.xla_options: {xla_options.compiler_options()}')
    print('| model | default ms | ours ms | ours / default |')
    print('|---|---|---|---|')
    for model in models:
        ms = compare(model, args.rounds, args.steps_per_round)
        print(f"| {model} | {ms['default']:.2f} | {ms['ours']:.2f} | "
              f"{ms['ours'] / ms['default']:.3f} |", flush=True)


if __name__ == '__main__':
    main()
