r"""Trains K members of one GAN together in one compiled program (jax.vmap over
the update step, or the K updates unrolled side by side: --members).

  python experiments/sweep.py --config experiments/configs/toy_ring.py \
      --workdir workdirs/ring_sweep --seeds 10
  python experiments/sweep.py --config experiments/configs/toy_ring.py \
      --workdir workdirs/ring_lr --sweep.opt.d.lr=1e-4,2e-4,4e-4 --repeats 5

Member i trains with seed config.seed + i (and the i // repeats-th swept
values). Run again with the same workdir and options to resume. Prints the
summary table (mean ± standard error over members) at the end; it is also in
WORKDIR/summary.md. `experiments/sample.py --workdir DIR --member i` samples a
member.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from experiments import launch  # noqa: E402

flags.DEFINE_integer('seeds', 0, 'Number of members K (seeds config.seed .. +K-1); '
                     'with swept values, 0 = one member per value x repeats.')
flags.DEFINE_integer('repeats', 1, 'Members (seeds) per swept value.')
flags.DEFINE_bool('shared_data', False, 'All members see the base seed\'s batches.')
flags.DEFINE_integer('chunk_size', 0, 'Members per compiled call (0 = all).')
flags.DEFINE_enum('members', 'auto', ['auto', 'vmap', 'unroll'],
                  'How members share the program: vmap (one batched program), '
                  'unroll (K updates side by side; faster for convolutional '
                  'networks on CPU), auto (unroll on CPU when the update '
                  'convolves, else vmap).')


def _sweepable():
    from gan_jax import train
    return train.SWEEPABLE


# One --sweep.KEY flag per sweepable key (gan_jax.train.SWEEPABLE).
for _key, _entry in _sweepable().items():
    flags.DEFINE_list(f'sweep.{_key}', None, f'Values of {_entry.doc} to sweep.')


def _swept_values(argv):
    """{config key: [float]} from the --sweep.* flags; unknown ones fail."""
    FLAGS = flags.FLAGS
    for arg in argv[1:]:
        name = arg.lstrip('-').split('=')[0]
        if name.startswith('sweep.') and name not in FLAGS:
            launch.fail(f'cannot sweep {name[len("sweep."):]!r}; sweepable keys: '
                        f'{", ".join(_sweepable())}')
    values = {}
    for key in _sweepable():
        given = FLAGS[f'sweep.{key}'].value
        if given:
            try:
                values[key] = [float(v) for v in given]
            except ValueError:
                launch.fail(f'--sweep.{key} takes numbers, got {",".join(given)}')
    return values


def main(config, workdir):
    from gan_jax import loop, sweep as sweep_lib
    FLAGS = flags.FLAGS
    try:
        sweep = sweep_lib.Sweep.build(
            seeds=FLAGS.seeds, values=_swept_values(sys.argv), repeats=FLAGS.repeats,
            shared_data=FLAGS.shared_data, chunk_size=FLAGS.chunk_size)
    except ValueError as e:
        launch.fail(str(e))
    loop.run(config, workdir, sweep=sweep, members=FLAGS.members)
    summary = os.path.join(workdir, 'summary.md')
    if os.path.exists(summary):
        print(open(summary).read(), end='')


if __name__ == '__main__':
    launch.main(main, needs_config=True)
