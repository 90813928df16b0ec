r"""Wall time of K toy_ring trials as one sweep (jax.vmap over the update step)
against K sequential single runs, in one script run.

  python scripts/bench_sweep.py [--members 10] [--steps 2000] [--json FILE]

Both sides run the full drivers (gan_jax.sweep.run and gan_jax.loop.run) on the
toy_ring config with num_steps = --steps: data, logging, checkpoints and the
final mode evaluation of every trial included; compile time included. Each
side gets a fresh temporary workdir. Prints the times and the speed-up.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_for(steps: int):
    from experiments.configs import toy_ring
    config = toy_ring.get_config()
    config.num_steps = steps
    config.progress = False
    config.checkpoint_every = steps
    config.sample_every = steps
    config.eval_every = steps
    config.log_every = max(1, steps // 10)
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--members', type=int, default=10)
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--json', default=None, help='also write the results here')
    args = parser.parse_args()
    logging.getLogger('absl').setLevel(logging.WARNING)
    import jax

    from gan_jax import loop, sweep as sweep_lib
    base = config_for(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep = sweep_lib.Sweep.build(seeds=args.members)
        sweep_lib.run(base, sweep, os.path.join(tmp, 'sweep'))
        sweep_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(args.members):
            config = config_for(args.steps)
            config.seed = base.seed + i
            loop.run(config, os.path.join(tmp, f'single_{i}'))
        sequential_s = time.perf_counter() - start
    result = {'members': args.members, 'steps': args.steps,
              'sweep_s': round(sweep_s, 1), 'sequential_s': round(sequential_s, 1),
              'speedup': round(sequential_s / sweep_s, 2),
              'device': jax.devices()[0].device_kind, 'cores': os.cpu_count()}
    print(f'{args.members} toy_ring trials x {args.steps} steps on '
          f'{result["device"]} ({result["cores"]} cores)')
    print(f'  one sweep (vmap):   {sweep_s:8.1f} s')
    print(f'  sequential runs:    {sequential_s:8.1f} s')
    print(f'  speed-up:           {result["speedup"]:8.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
