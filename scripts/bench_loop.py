r"""Overhead of the full training loop (data, logging, sample grids,
checkpoints) over the bare compiled update step, in one script run.

  python scripts/bench_loop.py [--configs toy_ring,digits_dcgan] [--steps 600]

For each config: the bare step is timed on one fixed batch (median of 50 after
warm-up); then `gan_jax.loop.run` trains --steps steps with the config's own
log, sample and checkpoint cadence scaled so that each happens several times
(--log_every, --checkpoint_every, --sample_every), evaluations off. The loop
time is taken between two logged steps (`perf/wall_s` in metrics.jsonl), so
start-up and compilation are excluded:

  overhead = loop seconds per step / bare seconds per step - 1
"""
import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bare_step_seconds(config, repeats: int = 50) -> float:
    """Median seconds of the jitted update step on one fixed batch."""
    import jax

    from gan_jax import data, loop, parallel, train
    mesh = parallel.make_mesh()
    _, _, _, spec, state = loop.build(config)
    state = jax.device_put(state, parallel.replicated(mesh))
    step = train.make_train_step(spec, state_sharding=parallel.replicated(mesh),
                                 batch_sharding=parallel.batch_sharding(mesh))
    batch = jax.device_put(next(data.host_batches(config)),
                           parallel.batch_sharding(mesh))
    for _ in range(3):
        state, _ = step(state, batch)
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, _ = step(state, batch)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loop_step_seconds(config, workdir: str) -> float:
    """Seconds per step of loop.run between its first and last log records."""
    from gan_jax import loop
    loop.run(config, workdir)
    records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
    first, last = records[0], records[-1]
    return (last['perf/wall_s'] - first['perf/wall_s']) / (last['step'] - first['step'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', default='toy_ring,digits_dcgan')
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--log_every', type=int, default=50)
    parser.add_argument('--checkpoint_every', type=int, default=200)
    parser.add_argument('--sample_every', type=int, default=200)
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    rows = []
    for name in args.configs.split(','):
        config = importlib.import_module(f'experiments.configs.{name}').get_config()
        config.num_steps = args.steps
        config.progress = False
        config.log_every = args.log_every
        config.checkpoint_every = args.checkpoint_every
        config.sample_every = args.sample_every
        config.eval_every = 0
        config.evals = {}
        config.best_metric = ''
        bare = bare_step_seconds(config)
        with tempfile.TemporaryDirectory() as tmp:
            looped = loop_step_seconds(config, os.path.join(tmp, name))
        rows.append({'config': name, 'batch': config.batch_size,
                     'bare_ms': round(bare * 1e3, 2), 'loop_ms': round(looped * 1e3, 2),
                     'overhead_pct': round(100 * (looped / bare - 1), 1)})
    print('| config | batch | bare step ms | loop ms/step | overhead |')
    print('|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["config"]} | {r["batch"]} | {r["bare_ms"]} | {r["loop_ms"]} | '
              f'{r["overhead_pct"]}% |')
    print(f'(log every {args.log_every}, checkpoint every {args.checkpoint_every}, '
          f'sample grid every {args.sample_every} steps; {args.steps} steps)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
