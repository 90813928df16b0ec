"""Images per second of the host's part of the image input pipeline, with
and without flips, for docs/performance.md ("Accelerator paths"):

  python tests/scripts/input_rate.py [--batches 300] [--batch_sizes 64,256]

cifar10 on tfds.testing.mock_data (10,000 random 32x32x3 images). Rows:
  host float, flips   data.host_batches: gather, flip on the host, scale to
                      float32 (what crossed to the device before)
  host float, no flip the same without data.random_flip
  host uint8, flips   data.host_batches(raw=True): gather and draw the flips;
                      flipping and scaling happen on the device
  to device, flips    data.make_train_iter: the uint8 stream placed on the
                      mesh and finished there (images.finish_on_device),
                      prefetch thread included
"""
import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batches', type=int, default=300)
    parser.add_argument('--batch_sizes', default='64,256')
    args = parser.parse_args(argv)

    import jax
    import tensorflow_datasets as tfds
    from bench_input_pipeline import images_per_second

    from gan_jax import data, parallel
    from gan_jax.config import default_config

    print(f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
          f'{os.cpu_count()} CPU cores')
    print('| stream | ' + ' | '.join(f'batch {b} img/s' for b in
                                      args.batch_sizes.split(',')) + ' |')
    print('|---|' + '---|' * len(args.batch_sizes.split(',')))
    rows = {}
    with tfds.testing.mock_data(num_examples=10_000):
        for batch_size in (int(b) for b in args.batch_sizes.split(',')):
            config = default_config()
            config.dataset = 'cifar10'
            config.batch_size = batch_size
            config.data.data_dir = tempfile.mkdtemp()
            sharding = parallel.batch_sharding(parallel.make_mesh())
            for name, flip, make in (
                    ('host float, flips', True, lambda c: data.host_batches(c)),
                    ('host float, no flip', False, lambda c: data.host_batches(c)),
                    ('host uint8, flips', True,
                     lambda c: data.host_batches(c, raw=True)),
                    ('to device, flips', True,
                     lambda c: data.make_train_iter(c, sharding=sharding))):
                config.data.random_flip = flip
                rate = images_per_second(make(config), args.batches, batch_size)
                rows.setdefault(name, []).append(rate)
    for name, rates in rows.items():
        print(f'| {name} | ' + ' | '.join(f'{r:,.0f}' for r in rates) + ' |')


if __name__ == '__main__':
    main()
