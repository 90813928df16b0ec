r"""Samples of a trained run as PNGs: a sample grid (images) or a scatter over
the mixture centers (2-D points) and, for images, rows of latent
interpolations.

  python scripts/figure_samples.py --workdir DIR [--member i] [--best] \
      [--out docs/img/samples.png] [--num 64] [--seed 0] [--raw] \
      [--interpolations 8 --interp_steps 10] [--interp_out FILE.png]

The latest checkpoint (or, with --best, the best one by config.best_metric)
is loaded with gan_jax.experiment.load_run, or member i of a sweep workdir with
gan_jax.experiment.load_member. Samples come from the EMA generator in inference
mode (--raw: the trained weights), latents sampling.latents(--seed, ...), so
the PNGs are a fixed function of (checkpoint, seed).

Images: --num samples (default 64) tiled 8 per row (sampling.save_image_grid,
pixel for pixel). Interpolations go to --interp_out (default
`<out stem>_interp.png`): row r runs in --interp_steps steps from the latent
of grid sample 2r to that of grid sample 2r + 1 (spherical, by
sampling.interpolate_latents), so every row's ends are in the sample grid;
a conditional model keeps class r mod K along row r.
2-D points: a scatter of --num samples (default 2,500, PacGAN's count) with
the mixture centers; no interpolations.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def load(workdir: str, member, best: bool):
    """(config, info, G, state) of a run or a sweep member.

    Raises:
      SystemExit: one line, for a missing workdir or checkpoint, a sweep
        without --member, --member of a single run, or --best of a sweep.
    """
    from gan_jax import checkpoint, experiment
    if not os.path.isdir(workdir):
        raise SystemExit(f'error: workdir {workdir} does not exist')
    is_sweep = experiment.load_sweep(workdir) is not None
    try:
        if is_sweep:
            if member is None:
                raise SystemExit(f'error: {workdir} is a sweep: choose a member with '
                                 '--member i')
            if best:
                raise SystemExit('error: sweeps keep no best checkpoint; drop --best')
            config, info, G, _, state = experiment.load_member(workdir, member)
        else:
            if member is not None:
                raise SystemExit(f'error: --member needs a sweep workdir; {workdir} '
                                 'is a single run')
            config, info, G, _, state = experiment.load_run(workdir, best=best)
    except (FileNotFoundError, ValueError, checkpoint.CheckpointError) as e:
        # Orbax's structure mismatches span many lines; the first names them.
        raise SystemExit(f'error: {str(e).splitlines()[0]}') from None
    return config, info, G, state


def interpolation_latents(z: np.ndarray, rows: int, steps: int):
    """Latents [rows * steps, z_dim]: row r from z[2r] to z[2r + 1] (slerp)."""
    import jax.numpy as jnp

    from gan_jax import sampling
    return jnp.concatenate([sampling.interpolate_latents(z[2 * r], z[2 * r + 1], steps)
                            for r in range(rows)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workdir', required=True)
    parser.add_argument('--member', type=int, default=None,
                        help='Member of a sweep workdir (experiments/sweep.py).')
    parser.add_argument('--best', action='store_true',
                        help='The best checkpoint (config.best_metric) instead of '
                        'the latest.')
    parser.add_argument('--out', default='docs/img/samples.png', help='PNG path.')
    parser.add_argument('--num', type=int, default=None,
                        help='Samples (default 64 images, 2500 points).')
    parser.add_argument('--seed', type=int, default=0, help='Latent seed.')
    parser.add_argument('--raw', action='store_true',
                        help='Sample the raw generator instead of its EMA.')
    parser.add_argument('--interpolations', type=int, default=8,
                        help='Rows of latent interpolations (images; 0 = none).')
    parser.add_argument('--interp_steps', type=int, default=10,
                        help='Images per interpolation row, ends included.')
    parser.add_argument('--interp_out', default='',
                        help='Interpolation PNG (default <out stem>_interp.png).')
    args = parser.parse_args(argv)
    if args.num is not None and args.num <= 0:
        raise SystemExit(f'error: --num must be positive, got {args.num}')
    if args.interpolations < 0 or (args.interpolations and args.interp_steps < 2):
        raise SystemExit('error: --interpolations must be >= 0 and --interp_steps '
                         '>= 2')

    start = time.perf_counter()
    config, info, G, state = load(args.workdir, args.member, args.best)

    import jax.numpy as jnp

    from gan_jax import models, sampling
    params = state.g_params if args.raw else state.ema_params
    which = 'raw' if args.raw else 'EMA'
    step = int(state.step)
    images = info.kind == 'images'
    num = args.num or (64 if images else 2500)
    rows = args.interpolations if images else 0
    # One latent draw for the grid and the interpolation ends: row r joins
    # grid samples 2r and 2r + 1.
    z = sampling.latents(args.seed, max(num, 2 * rows), config.model.z_dim)
    samples = sampling.sample(G, params, state.g_state, z[:num],
                              sampling.class_labels(G, num))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if images:
        sampling.save_image_grid(samples, args.out, columns=8)
    else:
        name = config.dataset + (f', member {args.member}' if args.member is not None
                                 else '')
        sampling.save_scatter(samples, args.out, centers=info.extras.get('centers'),
                              title=f'{name}, {which} generator, step {step}, '
                              f'{num} samples')
    print(f'wrote {args.out}: {num} samples, {which} generator, step {step}')

    if rows:
        path = args.interp_out or os.path.splitext(args.out)[0] + '_interp.png'
        z_path = interpolation_latents(np.asarray(z), rows, args.interp_steps)
        k = models.num_classes_of(G)
        labels = jnp.repeat(jnp.arange(rows, dtype=jnp.int32) % k,
                            args.interp_steps) if k else None
        frames = sampling.sample(G, params, state.g_state, z_path, labels)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        sampling.save_image_grid(frames, path, columns=args.interp_steps)
        print(f'wrote {path}: {rows} interpolations of {args.interp_steps} steps')
    print(f'{time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
