r"""Writes samples of a trained run to an .npz file.

  python experiments/sample.py --workdir /tmp/toy_ring --num 2500 \
      --out samples.npz [--seed 0] [--raw] [--member i (of a sweep)]
  python experiments/sample.py --workdir DIR --seeds 0-999 --out samples.npz

The file holds `samples`: float32, images NHWC in [-1, 1] or 2-D points, a
deterministic function of (latest checkpoint, --seed, --num). By default they
come from the EMA generator; --raw uses the trained weights themselves.
With --seeds A-B, sample i has its own seed A + i (the latents and classes of
experiments/generate.py, whose PNGs are these samples quantised to uint8).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from experiments import launch  # noqa: E402

flags.DEFINE_integer('num', 2500, 'Number of samples.')
flags.DEFINE_string('out', None, 'Output .npz path.')
flags.DEFINE_integer('seed', 0, 'Latent seed.')
flags.DEFINE_bool('raw', False, 'Sample the raw generator instead of its EMA.')
flags.DEFINE_integer('member', None, 'Member of a sweep workdir (experiments/sweep.py).')
flags.DEFINE_float('truncation', 1.0, 'Truncation psi (generators with a w_avg: '
                   'stylegan2); 1 = none.')
flags.DEFINE_string('seeds', None, 'Seed range A-B (inclusive): one latent per seed, '
                    'normal(PRNGKey(s)), class s mod K, as experiments/generate.py '
                    '(replaces --num and --seed).')
flags.mark_flags_as_required(['out'])


def main(workdir):
    import numpy as np
    from gan_jax import experiment, sampling
    FLAGS = flags.FLAGS
    if FLAGS.num <= 0:
        launch.fail(f'--num must be positive, got {FLAGS.num}')
    is_sweep = experiment.load_sweep(workdir) is not None
    if is_sweep and FLAGS.member is None:
        launch.fail(f'{workdir} is a sweep: choose a member with --member i')
    if FLAGS.member is not None:
        if not is_sweep:
            launch.fail(f'--member needs a sweep workdir; {workdir} is a single run')
        try:
            config, _, G, _, state = experiment.load_member(workdir, FLAGS.member)
        except ValueError as e:
            launch.fail(str(e))
    else:
        config, _, G, _, state = experiment.load_run(workdir)
    params = state.g_params if FLAGS.raw else state.ema_params
    if FLAGS.seeds is not None:
        try:
            seeds = sampling.parse_seed_range(FLAGS.seeds)
        except ValueError as e:
            launch.fail(f'--seeds: {e}')
        z = sampling.seed_latents(seeds, config.model.z_dim)
        labels = sampling.seed_labels(G, seeds)
    else:
        z = sampling.latents(FLAGS.seed, FLAGS.num, config.model.z_dim)
        labels = sampling.class_labels(G, FLAGS.num)  # None if unconditional
    samples = sampling.sample(G, params, state.g_state, z, labels,
                              truncation_psi=FLAGS.truncation)
    extra = {} if labels is None else {'labels': np.asarray(labels)}
    if FLAGS.seeds is not None:
        extra['seeds'] = np.asarray(seeds)
    np.savez(FLAGS.out, samples=samples, **extra, step=int(state.step), seed=FLAGS.seed,
             ema=not FLAGS.raw)
    print(f'wrote {samples.shape[0]} samples of shape {samples.shape[1:]} '
          f'(step {int(state.step)}, {"raw" if FLAGS.raw else "EMA"} generator) '
          f'to {FLAGS.out}')


if __name__ == '__main__':
    launch.main(main, needs_config=False)
