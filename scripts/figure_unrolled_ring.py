r"""The unrolled GAN of Metz, Poole, Pfau and Sohl-Dickstein (2017), Fig. 1 /
Fig. 2: generator samples on the ring of 8 Gaussians at several training
steps, 0 against 10 unrolling steps, with the mode counts of every panel.

  python scripts/figure_unrolled_ring.py [--out docs/img/unrolled_ring.png] \
      [--steps 5000] [--snapshots 5] [--unroll 0,10] [--batch_size 256] \
      [--workdir_root DIR] [--quick]

Every run is experiments/configs/toy_ring.py with the networks and optimizer
of the paper's reference notebook (github.com/poolio/unrolled_gan): G and D
two hidden layers of 128 (ReLU G without batch norm, leaky-ReLU D where the
notebook has tanh in both), 256-d latents, batch 512 (--batch_size; the
default is 256, see below), Adam (β1 0.5) at
1e-3 for G and 1e-4 for D, the minimax loss (the notebook's G ascends the
saddle objective), no EMA; unroll_steps = k makes G's loss look k
differentiable D updates ahead (train.unrolled_d_params). It is trained by
gan_jax.loop.run with a checkpoint at each of --snapshots evenly spaced
steps; each panel shows 2,500 samples of the raw generator of that
checkpoint (the same latents in every panel) over the 8 centers, with
gan_jax.metrics.modes' PacGAN metrics (modes captured of 8, share of high
quality samples within 3σ).

Deviations: the paper trains 25,000 steps (radius 2, σ 0.02: the same ring
at twice our scale); the defaults here are --steps 5000 and batch 256, so
that both rows fit in 10 CPU minutes (an unrolled step costs about 15 plain
steps; at batch 512 the two rows took 14 min on the 2-core CPU under load). The two
rows cannot share one vmapped sweep (unroll_steps changes the program), so
they are two runs. --quick: narrow networks and 8 steps, for tests.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

NUM_SAMPLES = 2500


def run_config(unroll: int, *, steps: int, snapshots: int, seed: int, quick: bool,
               batch_size: int = 256):
    """The toy_ring config of a run with `unroll` unrolling steps and a
    checkpoint every steps // snapshots steps (all kept)."""
    import ml_collections

    from experiments.configs import toy_ring
    config = toy_ring.get_config()
    config.seed = seed
    config.num_steps = steps
    every = steps // snapshots
    config.checkpoint_every = every
    config.keep_checkpoints = snapshots
    # Dense networks: many steps per compiled call (a lax.scan); every
    # interval must be a multiple of it.
    config.steps_per_call = int(np.gcd(every, 50))
    config.log_every = every
    config.sample_every = 0
    config.eval_every = 0
    config.evals = ml_collections.ConfigDict()  # this script scores the panels
    config.progress = False
    config.batch_size = 64 if quick else batch_size
    config.model.z_dim = 256
    config.model.g.hidden = (16, 16) if quick else (128, 128)
    config.model.g.batch_norm = False
    config.model.d.hidden = (16, 16) if quick else (128, 128)
    config.model.d.maxout_pieces = 1
    config.loss.name = 'minimax'
    for net, lr in (('g', 1e-3), ('d', 1e-4)):
        config.opt[net].lr = lr
        config.opt[net].b1 = 0.5
        config.opt[net].b2 = 0.999
        config.opt[net].schedule = 'constant'
    config.ema.decay = 0.0
    config.unroll_steps = unroll
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/img/unrolled_ring.png', help='PNG path.')
    parser.add_argument('--steps', type=int, default=5000, help='G updates per run.')
    parser.add_argument('--snapshots', type=int, default=5,
                        help='Evenly spaced checkpoints drawn (must divide --steps).')
    parser.add_argument('--unroll', default='0,10',
                        help='Comma-separated unrolling steps, one row each.')
    parser.add_argument('--batch_size', type=int, default=256,
                        help="Batch per update (the paper's notebook: 512).")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workdir_root', default='',
                        help='Keep the runs here (default: a temporary directory).')
    parser.add_argument('--quick', action='store_true',
                        help='Narrow networks, 8 steps, unroll 0 and 2: for tests.')
    args = parser.parse_args(argv)
    steps = 8 if args.quick else args.steps
    snapshots = 2 if args.quick else args.snapshots
    try:
        text = '0,2' if args.quick else args.unroll
        unrolls = [int(u) for u in text.split(',') if u]
    except ValueError:
        raise SystemExit(f'error: --unroll must be comma-separated integers, got '
                         f'{args.unroll!r}') from None
    if not unrolls or min(unrolls) < 0:
        raise SystemExit(f'error: --unroll needs integers >= 0, got {args.unroll!r}')
    if args.batch_size < 1:
        raise SystemExit(f'error: --batch_size must be >= 1, got {args.batch_size}')
    if snapshots < 1 or steps < snapshots or steps % snapshots:
        raise SystemExit(f'error: --snapshots ({snapshots}) must be >= 1 and divide '
                         f'--steps ({steps})')

    start = time.perf_counter()
    import logging
    logging.getLogger('absl').setLevel(logging.WARNING)  # Orbax's INFO lines

    from gan_jax import data, loop, sampling
    from scripts.figure_mode_collapse import restore_steps

    root = args.workdir_root or tempfile.mkdtemp(prefix='unrolled_ring_')
    rows = []  # (label, {step: samples}, seconds)
    try:
        for unroll in unrolls:
            config = run_config(unroll, steps=steps, snapshots=snapshots,
                                seed=args.seed, quick=args.quick,
                                batch_size=args.batch_size)
            workdir = os.path.join(root, f'unroll{unroll}_seed{args.seed}')
            t = time.perf_counter()
            loop.run(config, workdir)
            seconds = time.perf_counter() - t
            G, states = restore_steps(config, workdir)
            z = sampling.latents(args.seed + 1, NUM_SAMPLES, config.model.z_dim)
            panels = {0: sampling.sample(G, _initial_g(config), {}, z)}
            for step, state in states.items():
                panels[step] = sampling.sample(G, state.g_params, state.g_state, z)
            label = (f'{unroll} unrolling steps' if unroll
                     else 'standard GAN (0 unrolling)')
            rows.append((label, panels, seconds))
            print(f'{label}: {steps} steps in {seconds:.0f} s', flush=True)
    finally:
        if not args.workdir_root:
            shutil.rmtree(root, ignore_errors=True)

    info = data.get_info(config)
    counts = draw(rows, info.extras['centers'], info.extras['std'], args.out,
                  title=f'Unrolled GAN (Metz et al. 2017) on the ring of 8 Gaussians: '
                        f'raw generator, {NUM_SAMPLES} samples, '
                        f'batch {config.batch_size}, '
                        f'seed {args.seed}')
    for label, per_step in counts.items():
        print(f'{label}: modes ' + ', '.join(f'step {s}: {m["modes"]}/8 '
                                             f'({100 * m["high_quality"]:.0f}% hq)'
                                             for s, m in per_step.items()))
    print(f'wrote {args.out}; wall time {time.perf_counter() - start:.0f} s')


def _initial_g(config):
    """G's parameters at step 0 (the state loop.run starts from)."""
    from gan_jax import experiment
    return experiment.build(config)[4].g_params


def draw(rows: List, centers: np.ndarray, std: float, path: str, *, title: str
         ) -> Dict[str, Dict[int, Dict]]:
    """rows [(label, {step: points [N, 2]}, seconds)] as a grid of scatter
    panels; returns {label: {step: mode metrics}}."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from gan_jax.metrics import modes
    steps = sorted(rows[0][1])
    fig, axes = plt.subplots(len(rows), len(steps), squeeze=False, dpi=100,
                             figsize=(2.5 * len(steps) + 0.6, 2.6 * len(rows) + 0.5))
    span = 1.6 * np.abs(centers).max()
    counts = {}
    for r, (label, panels, seconds) in enumerate(rows):
        counts[label] = {}
        for c, step in enumerate(steps):
            ax = axes[r, c]
            points = panels[step]
            m = modes.mode_metrics(points, centers, std)
            counts[label][step] = m
            ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.3, lw=0)
            ax.scatter(centers[:, 0], centers[:, 1], s=20, marker='x', c='red', lw=1)
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect('equal')
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.03, 0.03, f'{m["modes"]}/{len(centers)} modes, '
                    f'{100 * m["high_quality"]:.0f}% hq', transform=ax.transAxes,
                    fontsize=7, va='bottom')
            if r == 0:
                ax.set_title(f'step {step}', fontsize=9)
            if c == 0:
                ax.set_ylabel(f'{label}\n({seconds:.0f} s)', fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return counts


if __name__ == '__main__':
    main()
