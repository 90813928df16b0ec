r"""WGAN critics trained to optimality against a fixed generator, weight
clipping against gradient penalty: Gulrajani et al. (2017), "Improved Training
of Wasserstein GANs", Fig. 1(a), on 8 Gaussians, 25 Gaussians and the Swiss
roll.

  python scripts/figure_wgan_critics.py [--out docs/img/wgan_critics.png] \
      [--steps 1000] [--d_hidden 256,256,256] [--seed 0] [--quick]

As in the paper's toy code (github.com/igul222/improved_wgan_training,
gan_toy.py with FIXED_GENERATOR): the "generator" is held at the data plus
Gaussian noise, x̃ = x + N(0, I), and only the critic trains, five updates per
iteration as n_critic, on batches of 256. The critic is
experiments/configs/toy_ring_wgan_clip.py's D (leaky ReLU 0.2 where the
paper's code has ReLU) at three layers of 256 by default instead of the
config's (and the paper's) 512, so that the six critics train in 10 minutes
on a 2-core CPU (--d_hidden 512,512,512 for the paper's), trained by
train.d_update (the library's D update, given the fakes) with

  weight clipping   the config: clip 0.01, RMSProp 5e-5 (Arjovsky et al.)
  gradient penalty  the same D, reg.gp_weight 0.1 (gan_toy.py's λ for the
                    toys), no clipping, Adam 1e-4 (0.5, 0.9)

for --steps iterations of 5 critic updates each (the paper's code runs up to
100,000; the surfaces settle in far fewer). Data: gan_jax's ring (8
Gaussians at radius 1, σ 0.01; the paper's sit at radius √2, σ 0.014), grid
(25 Gaussians at {-4,...,4}², σ 0.05; the paper's at {-0.71,...,0.71}²,
σ 0.018) and Swiss roll (the paper's exactly; gan_jax.data.mixtures).

Each panel: the critic's value surface D(x) (filled contours, each panel on
its own colour scale: a clipped critic's values are ~100x smaller) over the
real samples (white), with the critic's estimate E D(x) - E D(x̃) of the
Wasserstein distance. The paper's finding: the clipped critic is a simple,
nearly linear function that ignores the modes, while the penalised one
follows the data. --quick: a narrow critic and 20 iterations, for tests.
"""
import argparse
import os
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DATASETS = {'ring': '8 Gaussians (ring)', 'grid': '25 Gaussians (grid)',
            'swissroll': 'Swiss roll'}
METHODS = {'clip': 'weight clipping (c 0.01, RMSProp 5e-5)',
           'gp': 'gradient penalty (λ 0.1, Adam 1e-4)'}
BATCH = 256
FAKE_NOISE = 1.0  # gan_toy.py: fake = real + 1. * N(0, I)
CHUNK = 100       # iterations per compiled call


def critic_config(method: str, *, d_hidden: Tuple[int, ...]):
    """The config whose D (and D update) `method` trains."""
    from experiments.configs import toy_ring_wgan_clip
    config = toy_ring_wgan_clip.get_config()
    config.batch_size = BATCH
    config.model.d.hidden = tuple(d_hidden)
    if method == 'gp':
        config.reg.weight_clip = 0.0
        config.reg.gp_weight = 0.1
        config.opt.d.name = 'adam'
        config.opt.d.lr, config.opt.d.b1, config.opt.d.b2 = 1e-4, 0.5, 0.9
    elif method != 'clip':
        raise ValueError(f'unknown method {method!r}; valid: {", ".join(METHODS)}')
    return config


def train_critic(method: str, dataset: str, *, steps: int, seed: int,
                 d_hidden: Tuple[int, ...] = (256, 256, 256)):
    """Trains the critic of `method` on `dataset` against x + N(0, I).

    Returns:
      (D module, final GANState, metrics of the last D update as floats).
    """
    import jax

    from gan_jax import experiment, train
    from gan_jax.data import mixtures
    config = critic_config(method, d_hidden=d_hidden)
    config.seed = seed
    _, _, D, spec, state = experiment.build(config)
    n_critic = config.n_critic
    stream = mixtures.batches(dataset, seed=seed, batch_shape=(CHUNK, n_critic, BATCH),
                              num_train=config.data.num_train)

    def iteration(state, inputs):
        real_batches, key = inputs
        metrics = None
        for i in range(n_critic):
            noise_key, reg_key = jax.random.split(jax.random.fold_in(key, i))
            real = real_batches[i]
            fake = real + FAKE_NOISE * jax.random.normal(noise_key, real.shape)
            state, metrics = train.d_update(state, real, fake, None, reg_key,
                                            spec=spec)
        return state, metrics

    @jax.jit
    def chunk(state, reals, keys):
        state, metrics = jax.lax.scan(iteration, state, (reals, keys))
        return state, jax.tree.map(lambda m: m[-1], metrics)

    base = jax.random.PRNGKey(seed + 1)
    metrics = {}
    for start in range(0, steps, CHUNK):
        count = min(CHUNK, steps - start)
        reals = next(stream)[:count]
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(
            np.arange(start, start + count))
        state, metrics = chunk(state, reals, keys)
    return D, state, {k: float(v) for k, v in metrics.items()}


def critic_surface(D, state, lim: float, resolution: int
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs [R], ys [R], D values [R, R] with rows along y) on [-lim, lim]²."""
    import jax.numpy as jnp
    xs = np.linspace(-lim, lim, resolution)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)
    values = D.apply({'params': state.d_params, **state.d_state},
                     jnp.asarray(grid, jnp.float32), None, train=False)
    return xs, xs, np.asarray(values).reshape(resolution, resolution)


LIMITS = {'ring': 2.0, 'grid': 6.0, 'swissroll': 2.5}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/img/wgan_critics.png', help='PNG path.')
    parser.add_argument('--steps', type=int, default=1000,
                        help='Critic iterations (each n_critic = 5 D updates).')
    parser.add_argument('--d_hidden', default='256,256,256',
                        help="The critic's widths (the paper's: 512,512,512).")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--datasets', default=','.join(DATASETS),
                        help=f'Comma-separated, from {", ".join(DATASETS)}.')
    parser.add_argument('--quick', action='store_true',
                        help='A narrow critic, 20 iterations: seconds, for tests.')
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(',') if d]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets:
        raise SystemExit(f'error: unknown dataset {(unknown or ["(none)"])[0]!r}; '
                         f'valid: {", ".join(DATASETS)}')
    if args.steps < 1:
        raise SystemExit(f'error: --steps must be >= 1, got {args.steps}')
    steps = 20 if args.quick else args.steps
    try:
        d_hidden = (32, 32) if args.quick else tuple(
            int(w) for w in args.d_hidden.split(',') if w)
    except ValueError:
        raise SystemExit(f'error: --d_hidden must be comma-separated widths, got '
                         f'{args.d_hidden!r}') from None
    start = time.perf_counter()
    from gan_jax.data import mixtures
    panels: Dict[Tuple[str, str], Dict] = {}
    for method in METHODS:
        for dataset in datasets:
            t = time.perf_counter()
            D, state, metrics = train_critic(method, dataset, steps=steps,
                                             seed=args.seed, d_hidden=d_hidden)
            resolution = 60 if args.quick else 200
            surface = critic_surface(D, state, LIMITS[dataset], resolution)
            panels[method, dataset] = {'surface': surface, 'metrics': metrics}
            print(f'{method} {dataset}: {steps} iterations in '
                  f'{time.perf_counter() - t:.0f} s; E D(x) - E D(x~) = '
                  f'{-metrics["loss/d_adv"]:.4g}', flush=True)
    real = {d: mixtures.swissroll(np.random.default_rng(args.seed), 1000)
            if d == 'swissroll' else mixtures.sample(
                np.random.default_rng(args.seed), 1000, *mixtures.centers_and_std(d))
            for d in datasets}
    draw(panels, real, datasets, args.out,
         title=f'WGAN critics against a fixed generator x + N(0, I) (Gulrajani et al. '
               f'2017, Fig. 1a): critic {"x".join(map(str, d_hidden))}, {steps} '
               f'iterations of 5 critic updates, batch {BATCH}')
    print(f'wrote {args.out}; wall time {time.perf_counter() - start:.0f} s')


def draw(panels: Dict, real: Dict[str, np.ndarray], datasets: List[str], path: str,
         *, title: str) -> None:
    """Rows: methods; columns: datasets; value surfaces over the data."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(METHODS), len(datasets), squeeze=False, dpi=100,
                             figsize=(3.6 * len(datasets), 3.5 * len(METHODS) + 0.4))
    for r, method in enumerate(METHODS):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            xs, ys, values = panels[method, dataset]['surface']
            ax.contourf(xs, ys, values, levels=20, cmap='viridis')
            ax.contour(xs, ys, values, levels=20, colors='k', linewidths=0.3)
            points = real[dataset]
            ax.scatter(points[:, 0], points[:, 1], s=1, c='white', alpha=0.6, lw=0)
            ax.set_aspect('equal')
            ax.set_xticks([])
            ax.set_yticks([])
            metrics = panels[method, dataset]['metrics']
            ax.text(0.02, 0.02, f'E D(x) - E D(x̃) = {-metrics["loss/d_adv"]:.3g}\n'
                    f'D in [{values.min():.3g}, {values.max():.3g}]',
                    transform=ax.transAxes, fontsize=7, color='white', va='bottom')
            if r == 0:
                ax.set_title(DATASETS[dataset], fontsize=9)
            if c == 0:
                ax.set_ylabel(METHODS[method], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == '__main__':
    main()
