r"""Generator samples on PacGAN's 2-D ring of 8 Gaussians at several steps of
training, for GAN, WGAN-GP and PacGAN2 side by side (one row per method).

  python scripts/figure_mode_collapse.py [--out docs/img/mode_collapse.png] \
      [--steps 3000] [--snapshots 4] [--trials 1] [--workdir_root DIR] \
      [--methods gan,wgan_gp,pacgan2] [--ema]

Every run is experiments/configs/toy_ring.py trained by gan_jax.loop.run, with
the same networks for all methods, --steps steps (learning rates decaying
linearly to 0 over them, as toy_ring does over its 24,000) and a checkpoint at
each of the --snapshots evenly spaced steps:

  gan      toy_ring as is: non-saturating loss, Adam 1e-4 (0.8, 0.999)
  wgan_gp  loss 'wasserstein', reg.gp_weight 10, n_critic 5, Adam 1e-4
           (0.5, 0.9), as Gulrajani et al. (2017) for their toy data
  pacgan2  toy_ring with model.d.pack=2 (D judges pairs: 50 packs per batch
           of 100)

Networks: toy_ring's (G 4x400 ReLU+BN, D 2 maxout layers of 200 x 5) train at
about 25 GAN steps/s and 5 WGAN-GP steps/s on a 2-core CPU, too slow for a
figure of a few minutes; the default is G 4x128, D 2x64 (maxout x 5), and
--g_hidden 400,400,400,400 --d_hidden 200,200 gives toy_ring's.

Each panel: 2,500 samples (the same latents in every panel) from the raw
generator of that checkpoint, over the 8 centers (red), with PacGAN's mode
metrics (gan_jax.metrics.modes: modes captured, share of high-quality
samples). The raw generator, not the EMA one the library samples by default
(--ema for that): an average of the weights over the last ~1,000 steps can
smooth over the mode hopping this figure is meant to show. With --trials K,
each method gets K rows (seeds 0..K-1). Runs go to --workdir_root (default a
temporary directory, removed afterwards); with a given root a second call
resumes or reuses the runs. Prints the wall time.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

METHODS = {'gan': 'GAN', 'wgan_gp': 'WGAN-GP (λ 10, n_critic 5)',
           'pacgan2': 'PacGAN2'}
NUM_SAMPLES = 2500


def _ints(text: str) -> tuple:
    return tuple(int(v) for v in text.split(',') if v)


def method_config(method: str, *, steps: int, snapshots: int, seed: int,
                  g_hidden: tuple, d_hidden: tuple):
    """The toy_ring config of `method` for a run of `steps` steps with a
    checkpoint every steps // snapshots steps (all of them kept)."""
    import ml_collections

    from experiments.configs import toy_ring
    config = toy_ring.get_config()
    config.seed = seed
    config.num_steps = steps
    config.checkpoint_every = steps // snapshots
    config.keep_checkpoints = snapshots
    config.log_every = max(1, steps // 20)
    config.sample_every = 0  # the library's own scatter, at the end only
    config.eval_every = 0
    config.evals = ml_collections.ConfigDict()  # this script scores the panels
    config.progress = False
    config.model.g.hidden = g_hidden
    config.model.d.hidden = d_hidden
    for net in ('g', 'd'):
        config.opt[net].decay_steps = steps
    if method == 'wgan_gp':
        config.loss.name = 'wasserstein'
        config.reg.gp_weight = 10.0
        config.n_critic = 5
        for net in ('g', 'd'):
            config.opt[net].lr = 1e-4
            config.opt[net].b1 = 0.5
            config.opt[net].b2 = 0.9
    elif method == 'pacgan2':
        config.model.d.pack = 2
    elif method != 'gan':
        raise ValueError(method)
    return config


def restore_steps(config, workdir: str) -> Tuple[object, Dict[int, object]]:
    """(G, {step: GANState}) for every checkpoint of a finished run, each
    restored into the template of experiment.build(config) (as
    Checkpointer.restore_or_init does for the latest one)."""
    import flax.serialization
    import jax
    import orbax.checkpoint as ocp

    from gan_jax import checkpoint, experiment
    _, G, _, _, template = experiment.build(config)
    target = flax.serialization.to_state_dict(template)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                   max_to_keep=config.keep_checkpoints)
    try:
        return G, {step: flax.serialization.from_state_dict(
                       template, ckpt.manager.restore(
                           step, args=ocp.args.StandardRestore(abstract)))
                   for step in sorted(ckpt.manager.all_steps())}
    finally:
        ckpt.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/img/mode_collapse.png', help='PNG path.')
    parser.add_argument('--steps', type=int, default=3000,
                        help='Generator updates per run.')
    parser.add_argument('--snapshots', type=int, default=4,
                        help='Evenly spaced checkpoints drawn (must divide --steps).')
    parser.add_argument('--trials', type=int, default=1, help='Seeds per method.')
    parser.add_argument('--methods', default=','.join(METHODS),
                        help=f'Comma-separated, from {", ".join(METHODS)}.')
    parser.add_argument('--g_hidden', default='128,128,128,128',
                        help="G's hidden widths (toy_ring: 400,400,400,400).")
    parser.add_argument('--d_hidden', default='64,64',
                        help="D's maxout layer widths (toy_ring: 200,200).")
    parser.add_argument('--ema', action='store_true',
                        help='Sample the EMA generator instead of the raw one.')
    parser.add_argument('--workdir_root', default='',
                        help='Keep the runs here (default: a temporary directory).')
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(',') if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        name = unknown[0] if unknown else '(none)'
        raise SystemExit(f'error: unknown method {name!r}; valid: '
                         f'{", ".join(METHODS)}')
    if args.snapshots < 1 or args.steps < args.snapshots or args.steps % args.snapshots:
        raise SystemExit(f'error: --snapshots ({args.snapshots}) must be >= 1 and '
                         f'divide --steps ({args.steps})')
    if args.trials < 1:
        raise SystemExit(f'error: --trials must be >= 1, got {args.trials}')

    start = time.perf_counter()
    import logging
    # Orbax logs every save and restore at INFO.
    logging.getLogger('absl').setLevel(logging.WARNING)

    from gan_jax import data, loop, sampling

    root = args.workdir_root or tempfile.mkdtemp(prefix='mode_collapse_')
    rows = []  # (label, {step: samples})
    try:
        for method in methods:
            for trial in range(args.trials):
                config = method_config(method, steps=args.steps,
                                       snapshots=args.snapshots, seed=trial,
                                       g_hidden=_ints(args.g_hidden),
                                       d_hidden=_ints(args.d_hidden))
                workdir = os.path.join(root, f'{method}_seed{trial}')
                t = time.perf_counter()
                loop.run(config, workdir)
                G, states = restore_steps(config, workdir)
                z = sampling.latents(config.seed + 1, NUM_SAMPLES, config.model.z_dim)
                panels = {}
                for step, state in states.items():
                    params = state.ema_params if args.ema else state.g_params
                    panels[step] = sampling.sample(G, params, state.g_state, z)
                label = METHODS[method] + (f', seed {trial}' if args.trials > 1 else '')
                rows.append((label, panels))
                print(f'{label}: {args.steps} steps in {time.perf_counter() - t:.0f} s',
                      flush=True)
    finally:
        if not args.workdir_root:
            shutil.rmtree(root, ignore_errors=True)

    info = data.get_info(config)
    centers, std = info.extras['centers'], info.extras['std']
    draw(rows, centers, std, args.out,
         title=f'2-D ring of 8 Gaussians: {"EMA" if args.ema else "raw"} generator, '
               f'{NUM_SAMPLES} samples; G {args.g_hidden}, D maxout {args.d_hidden}')
    print(f'wrote {args.out}; wall time {time.perf_counter() - start:.0f} s')


def draw(rows: List, centers: np.ndarray, std: float, path: str, *, title: str
         ) -> None:
    """rows [(label, {step: points [N, 2]})] as a grid of scatter panels."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from gan_jax.metrics import modes
    steps = sorted(rows[0][1])
    fig, axes = plt.subplots(len(rows), len(steps), squeeze=False, dpi=100,
                             figsize=(2.6 * len(steps) + 0.6, 2.6 * len(rows) + 0.5))
    span = 1.6 * np.abs(centers).max()
    for r, (label, panels) in enumerate(rows):
        for c, step in enumerate(steps):
            ax = axes[r, c]
            points = panels[step]
            m = modes.mode_metrics(points, centers, std)
            ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.3, lw=0)
            ax.scatter(centers[:, 0], centers[:, 1], s=25, marker='x', c='red', lw=1)
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect('equal')
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.03, 0.03, f'{m["modes"]}/{len(centers)} modes, '
                    f'{100 * m["high_quality"]:.0f}% high quality',
                    transform=ax.transAxes, fontsize=7, va='bottom')
            if r == 0:
                ax.set_title(f'step {step}', fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == '__main__':
    main()
