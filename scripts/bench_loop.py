r"""Overhead of the full training loop (data, logging, sample grids,
checkpoints) over the bare compiled update step, in one script run.

  python scripts/bench_loop.py [--configs toy_ring,digits_dcgan] [--steps 600]
      [--steps_per_call 1,10]

For each config: the bare step is timed on one fixed batch, once right before
and once right after the loop, averaged, in both measures of
scripts/step_timing.py: throughput (blocks of steps dispatched back to back,
one wait at the end of each: what the loop, which does not wait on every
step, can reach) and latency (each step waited for; median of 50); then
`gan_jax.loop.run` trains --steps steps with the config's own
log, sample and checkpoint cadence scaled so that each happens several times
(--log_every, --checkpoint_every, --sample_every), evaluations off. The loop
time is taken between two logged steps (`perf/wall_s` in metrics.jsonl), so
start-up and compilation are excluded:

  overhead = loop seconds per step / bare seconds per step - 1

against the throughput (the honest baseline) and against the latency.

A config may carry its argument (`toy_ring:smoke`: batch 8, a step of a few
milliseconds). With several --steps_per_call values the loop runs once
per value (config.steps_per_call: updates per compiled call); a negative
overhead then means the loop beat one call per step.
"""
import argparse
import importlib
import json
import os
import sys
import tempfile
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import step_timing  # noqa: E402  (a sibling script module)


def bare_step_ms(config, steps: int = 50, rounds: int = 5) -> Dict[str, float]:
    """{'ms': throughput ms/step, 'latency_ms': median ms of a step waited
    for} of the jitted update step on one fixed batch (step_timing.measure:
    `steps` of each, in `rounds` rounds)."""
    import jax

    from gan_jax import data, experiment, parallel, train
    mesh = parallel.make_mesh()
    _, _, _, spec, state = experiment.build(config)
    holder = {'state': jax.device_put(state, parallel.replicated(mesh))}
    step = train.make_train_step(spec, state_sharding=parallel.replicated(mesh),
                                 batch_sharding=parallel.batch_sharding(mesh))
    batch = jax.device_put(next(data.host_batches(config)),
                           parallel.batch_sharding(mesh))

    def dispatch():
        holder['state'], _ = step(holder['state'], batch)  # donated: rebind
    stepper = step_timing.Stepper(
        dispatch, lambda: jax.block_until_ready(holder['state']))
    for _ in range(3):  # compile, then warm
        stepper.dispatch()
    stepper.wait()
    return step_timing.measure([stepper], steps, rounds)[0]


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
    parser.add_argument('--steps_per_call', default='1',
                        help='comma-separated config.steps_per_call values')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    rows = []
    for spec in args.configs.split(','):
        name, _, arg = spec.partition(':')
        config = importlib.import_module(f'experiments.configs.{name}').get_config(
            arg or None)
        config.num_steps = args.steps
        config.progress = False
        config.log_every = args.log_every
        config.checkpoint_every = args.checkpoint_every
        config.sample_every = args.sample_every
        config.eval_every = 0
        config.evals = {}
        config.best_metric = ''
        for per_call in (int(k) for k in args.steps_per_call.split(',')):
            config.steps_per_call = per_call
            # The bare step is timed right before and right after the loop,
            # and their mean taken: this shared machine drifts by 10-15% within
            # minutes, enough to fake an overhead of that size.
            before = bare_step_ms(config)
            with tempfile.TemporaryDirectory() as tmp:
                looped = 1e3 * loop_step_seconds(config, os.path.join(tmp, name))
            after = bare_step_ms(config)
            bare = (before['ms'] + after['ms']) / 2
            latency = (before['latency_ms'] + after['latency_ms']) / 2
            rows.append({'config': spec, 'batch': config.batch_size,
                         'steps_per_call': per_call,
                         'bare_ms': round(bare, 3),
                         'bare_latency_ms': round(latency, 3),
                         'loop_ms': round(looped, 3),
                         'overhead_pct': round(100 * (looped / bare - 1), 1),
                         'overhead_vs_latency_pct': round(
                             100 * (looped / latency - 1), 1)})
    print(f'CPU: {step_timing.cpu_name()}')
    print('| config | batch | steps per call | bare ms/step | bare latency ms '
          '| loop ms/step | overhead | vs latency |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["config"]} | {r["batch"]} | {r["steps_per_call"]} | '
              f'{r["bare_ms"]} | {r["bare_latency_ms"]} | {r["loop_ms"]} | '
              f'{r["overhead_pct"]}% | {r["overhead_vs_latency_pct"]}% |')
    print(f'(log every {args.log_every}, checkpoint every {args.checkpoint_every}, '
          f'sample grid every {args.sample_every} steps; {args.steps} steps; bare '
          'ms/step: throughput, blocks of steps dispatched with one wait each; '
          'overhead against it)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
