r"""Wall time of K toy_ring trials as one sweep (jax.vmap over the update step)
against K sequential single runs, in one script run; or, with --scaling, the
compiled sweep step's time per member as K grows, vmapped against unrolled.

  python scripts/bench_sweep.py [--members 10] [--steps 2000] [--json FILE]
  python scripts/bench_sweep.py --scaling stacked_mnist_dcgan --counts 1,3,6

Both sides run the full drivers (gan_jax.sweep.run and gan_jax.loop.run) on the
toy_ring config with num_steps = --steps: data, logging, checkpoints and the
final mode evaluation of every trial included; compile time included. Each
side gets a fresh temporary workdir. Prints the times and the speed-up.

--scaling CONFIG (an experiments/configs name, optionally CONFIG:ARG): for
each K in --counts and each member mode (gan_jax.sweep.make_sweep_step's
'vmap' and 'unroll'), the median of 5 calls of the compiled step on one batch
per member, after one warm-up call, divided by K.
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


def member_step_ms(config, count: int, members: str, calls: int = 5) -> float:
    """Median milliseconds per member of the compiled sweep step for K = count."""
    import statistics

    import jax
    import jax.numpy as jnp

    from gan_jax import experiment, sweep as sweep_lib
    sweep = sweep_lib.Sweep.build(seeds=count)
    _, _, _, spec, state = experiment.initial_state(config, sweep)
    state = sweep_lib.as_step_state(state, members)
    step = sweep_lib.make_sweep_step(spec, shared_data=False, members=members)
    hparams = {k: jnp.asarray(v)
               for k, v in sweep_lib.member_hparams(config, sweep).items()}
    batch = next(sweep_lib.member_batches(config, sweep, 0, count, 0))
    state, _ = step(state, batch, hparams)
    jax.block_until_ready(state)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        state, _ = step(state, batch, hparams)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / count


def scaling(name: str, counts, json_path=None) -> None:
    """Prints ms per member-step, vmapped and unrolled, for each K in counts."""
    import importlib
    module, _, arg = name.partition(':')
    config = importlib.import_module(f'experiments.configs.{module}').get_config(
        arg or None)
    rows = []
    for count in counts:
        row = {'config': name, 'members': count}
        for members in ('vmap', 'unroll'):
            row[f'{members}_ms_per_member'] = round(member_step_ms(config, count, members), 1)
        rows.append(row)
        print(f'| {name} | {count} | {row["vmap_ms_per_member"]} | '
              f'{row["unroll_ms_per_member"]} |', flush=True)
    if json_path:
        with open(json_path, 'w') as f:
            json.dump(rows, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--members', type=int, default=10)
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--json', default=None, help='also write the results here')
    parser.add_argument('--scaling', default='',
                        help='an experiments config: time the sweep step per member '
                             'instead, vmapped and unrolled')
    parser.add_argument('--counts', default='1,3,6', help='K values for --scaling')
    args = parser.parse_args()
    logging.getLogger('absl').setLevel(logging.WARNING)
    if args.scaling:
        print('| config | K | vmap ms per member-step | unroll ms per member-step |')
        print('|---|---|---|---|')
        scaling(args.scaling, [int(k) for k in args.counts.split(',')], args.json)
        return
    import jax

    from gan_jax import loop, sweep as sweep_lib
    base = config_for(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep = sweep_lib.Sweep.build(seeds=args.members)
        loop.run(base, os.path.join(tmp, 'sweep'), sweep=sweep)
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
