r"""Images per second the input pipeline delivers, next to what the update step
consumes.

  python scripts/bench_input_pipeline.py [--batches 300] [--steps 10] [--json FILE]

cifar10 runs on tfds.testing.mock_data (random 32x32x3 images through the same
TFDS path: it measures the pipeline, not the disk); digits on the real offline
dataset. "pipeline" is the host stream (gather, flip, scale to [-1, 1]);
"to device" adds the background prefetch thread and the transfer onto the
mesh. The consumer is the jitted update step of the matching DCGAN at batch 64.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def images_per_second(stream, batches: int, batch_size: int) -> float:
    import jax
    next(stream)  # warm-up: loading and caching the split
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(stream)
    jax.block_until_ready(batch)
    return batches * batch_size / (time.perf_counter() - start)


def step_images_per_second(config, steps: int) -> float:
    import jax
    from gan_jax import data, experiment, parallel, train
    _, _, _, spec, state = experiment.build(config)
    mesh = parallel.make_mesh()
    step = train.make_train_step(spec, state_sharding=parallel.replicated(mesh),
                                 batch_sharding=parallel.batch_sharding(mesh))
    stream = data.make_train_iter(config, sharding=parallel.batch_sharding(mesh))
    state, _ = step(jax.device_put(state, parallel.replicated(mesh)), next(stream))
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(steps):
        state, _ = step(state, next(stream))
    jax.block_until_ready(state)
    return steps * config.batch_size * config.n_critic / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--batches', type=int, default=300)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--mock_examples', type=int, default=10000)
    parser.add_argument('--json', default='')
    args = parser.parse_args(argv)

    import tempfile

    import jax
    import tensorflow_datasets as tfds

    from experiments.configs import digits_dcgan
    from gan_jax import data, parallel

    rows = []
    for name in ('cifar10', 'digits'):
        config = digits_dcgan.get_config()
        config.dataset = name
        config.data.random_flip = name == 'cifar10'
        if name == 'cifar10':  # DCGAN-32 at full width
            config.model.g.base_channels = config.model.d.base_channels = 64
        config.data.data_dir = tempfile.mkdtemp() if name == 'cifar10' else ''
        mock = tfds.testing.mock_data(num_examples=args.mock_examples) \
            if name == 'cifar10' else None
        if mock:
            mock.__enter__()
        try:
            sharding = parallel.batch_sharding(parallel.make_mesh())
            host = images_per_second(data.host_batches(config), args.batches,
                                     config.batch_size)
            device = images_per_second(data.make_train_iter(config, sharding=sharding),
                                       args.batches, config.batch_size)
            consumed = step_images_per_second(config, args.steps)
        finally:
            if mock:
                mock.__exit__(None, None, None)
        rows.append(dict(dataset=name, batch=config.batch_size,
                         pipeline_images_per_s=round(host),
                         to_device_images_per_s=round(device),
                         step_images_per_s=round(consumed, 1),
                         headroom=round(device / consumed, 1)))
    print(f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
          f'{os.cpu_count()} CPU cores')
    print('| dataset | batch | pipeline img/s | to device img/s | DCGAN step img/s '
          '| headroom |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['dataset']} | {r['batch']} | {r['pipeline_images_per_s']:,} | "
              f"{r['to_device_images_per_s']:,} | {r['step_images_per_s']:,} | "
              f"{r['headroom']}x |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
