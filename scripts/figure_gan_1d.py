r"""The 1-D picture of Goodfellow et al. (2014), Figure 1, from a GAN trained
here, and the generator gradients of the minimax and non-saturating losses.

  python scripts/figure_gan_1d.py [--out docs/img/gan_1d.png] [--steps 3000] \
      [--seed 0]

A tiny GAN learns p_data = N(4, 0.5²) from a 1-D standard normal latent: G an
affine map x = shift + scale * z starting at the identity (p_g = N(0, 1)), D a
small MLP (1 -> 32 -> 32 -> 1, leaky ReLU) whose sigmoid is D(x). It trains
with the library's losses (gan_jax.losses: logistic D loss, non-saturating G
loss), Adam (0.5, 0.999) with rates 5e-3 for G and 1e-3 for D, batch 256, one
D update per G update: about ten seconds on a CPU, a fixed function of --seed.

Panels at four steps (0, 5%, 20% and 100% of --steps): the data density
(black dotted), the generator density (green, a Gaussian KDE of 20,000 G
samples), D(x) (blue dashed) and the optimal discriminator for that generator,
D*(x) = p_data(x) / (p_data(x) + p_g(x)) (thin blue), which tends to 1/2 where
the densities come to overlap. The last panel is |d loss_G / d logit| as a
function of D(G(z)), computed with jax.grad of gan_jax.losses'
g_loss_minimax and g_loss_non_saturating: D(G(z)) for the minimax loss,
1 - D(G(z)) for the non-saturating one. The gradient reaching G's parameters
is this times d logit / d params, the same factor for both losses, so when D
confidently rejects the fakes (D(G(z)) -> 0) the minimax gradient vanishes.
"""
import argparse
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DATA_MEAN, DATA_STD = 4.0, 0.5
D_HIDDEN = (32, 32)
# G starts as the identity, p_g = N(0, 1), well away from the data.
G_INIT = {'shift': 0.0, 'scale': 1.0}
BATCH = 256
# G's steps are larger: Adam moves an affine G by about lr per step, and it
# starts 4 units away from the data.
LR_G, LR_D, B1, B2 = 5e-3, 1e-3, 0.5, 0.999
# Fractions of --steps at which the panels are drawn (step 0 = initialisation).
SNAPSHOT_FRACTIONS = (0.0, 0.05, 0.2, 1.0)
KDE_SAMPLES = 20_000
# Where both densities are below this (2.5% of p_data's peak), D* = p_data /
# (p_data + p_g) is a ratio of KDE noise: it is left undrawn there.
DENSITY_FLOOR = 0.02


def normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """N(mean, std²) density at x (any shape), float64."""
    x = np.asarray(x, np.float64)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray, *,
                          floor: float = DENSITY_FLOOR) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1).

    Args:
      p_data, p_g: densities >= 0 at the same points (any equal shapes).
      floor: where both densities are below it the ratio is noise or 0/0, and
        NaN is returned, so that plots leave a gap.
    Returns:
      float64 array of the same shape, values in [0, 1] or NaN.
    """
    p_data = np.asarray(p_data, np.float64)
    p_g = np.asarray(p_g, np.float64)
    total = p_data + p_g
    defined = np.maximum(p_data, p_g) >= floor
    return np.where(defined, p_data / np.where(defined, total, 1.0), np.nan)


def gaussian_kde(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Density at x [M] of a Gaussian KDE of 1-D samples [N] with Silverman's
    bandwidth; float64 [M]."""
    samples = np.asarray(samples, np.float64).ravel()
    n = samples.size
    spread = min(np.std(samples), (np.percentile(samples, 75)
                                   - np.percentile(samples, 25)) / 1.34)
    # A collapsed generator has zero spread; a tiny bandwidth still plots.
    bandwidth = max(0.9 * spread * n ** -0.2, 1e-3)
    density = np.zeros(len(x))
    for chunk in np.array_split(samples, max(1, n // 2000)):
        density += normal_pdf(x[:, None], chunk[None, :], bandwidth).sum(axis=1)
    return density / n


def _mlp_init(key, sizes: Sequence[int]) -> List[Dict[str, object]]:
    """[{'w': [in, out], 'b': [out]}] per layer for sizes (in, hidden..., out):
    LeCun-normal weights, zero biases."""
    import jax
    import jax.numpy as jnp
    params = []
    for k, (fan_in, fan_out) in zip(jax.random.split(key, len(sizes) - 1),
                                    zip(sizes[:-1], sizes[1:])):
        params.append({'w': jax.random.normal(k, (fan_in, fan_out)) / np.sqrt(fan_in),
                       'b': jnp.zeros(fan_out)})
    return params


def generator(params, z):
    """z [N, 1] standard normal -> x = shift + scale * z [N, 1]."""
    return params['shift'] + params['scale'] * z


def discriminator(params, x):
    """x [N, 1] -> logits [N]; D(x) = sigmoid(logit)."""
    import jax
    # A fixed standardisation of the input, so that the initial D is not
    # saturated by inputs around 4 (its layers expect unit-scale inputs).
    h = (x - 2.0) / 2.0
    for layer in params[:-1]:
        h = jax.nn.leaky_relu(h @ layer['w'] + layer['b'], 0.2)
    return (h @ params[-1]['w'] + params[-1]['b'])[:, 0]


def snapshot_steps(steps: int) -> List[int]:
    """The distinct steps of SNAPSHOT_FRACTIONS of `steps`, ascending."""
    return sorted({int(round(f * steps)) for f in SNAPSHOT_FRACTIONS})


def train(steps: int, seed: int) -> Dict[int, Tuple]:
    """Trains the 1-D GAN; {step: (G params, D params)} at snapshot_steps."""
    import jax
    import jax.numpy as jnp
    import optax

    from gan_jax import losses

    d_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    g_params = {k: jnp.float32(v) for k, v in G_INIT.items()}
    d_params = _mlp_init(d_key, (1,) + D_HIDDEN + (1,))
    g_tx, d_tx = optax.adam(LR_G, B1, B2), optax.adam(LR_D, B1, B2)
    g_opt, d_opt = g_tx.init(g_params), d_tx.init(d_params)

    def d_loss(d_p, g_p, real, z):
        fake = jax.lax.stop_gradient(generator(g_p, z))
        return losses.d_loss_logistic(real_logits=discriminator(d_p, real),
                                      fake_logits=discriminator(d_p, fake))

    def g_loss(g_p, d_p, z):
        return losses.g_loss_non_saturating(
            fake_logits=discriminator(d_p, generator(g_p, z)))

    def step(carry, key):
        g_p, d_p, g_o, d_o = carry
        real_key, zd_key, zg_key = jax.random.split(key, 3)
        real = DATA_MEAN + DATA_STD * jax.random.normal(real_key, (BATCH, 1))
        grads = jax.grad(d_loss)(d_p, g_p, real, jax.random.normal(zd_key, (BATCH, 1)))
        updates, d_o = d_tx.update(grads, d_o, d_p)
        d_p = optax.apply_updates(d_p, updates)
        grads = jax.grad(g_loss)(g_p, d_p, jax.random.normal(zg_key, (BATCH, 1)))
        updates, g_o = g_tx.update(grads, g_o, g_p)
        g_p = optax.apply_updates(g_p, updates)
        return (g_p, d_p, g_o, d_o)

    def chunk(carry, keys):
        return jax.lax.scan(lambda c, k: (step(c, k), None), carry, keys)[0]

    # Steps run in jitted scans of `every` steps, every snapshot step being a
    # multiple of it: one compilation, no per-step dispatch.
    wanted = snapshot_steps(steps)
    every = int(np.gcd.reduce([s for s in wanted if s] or [steps]))
    chunk = jax.jit(chunk)
    keys = jax.vmap(lambda i: jax.random.fold_in(data_key, i))(
        jnp.arange(1, steps + 1))
    carry = (g_params, d_params, g_opt, d_opt)
    snapshots = {0: jax.device_get((g_params, d_params))} if 0 in wanted else {}
    for done in range(0, steps, every):
        carry = chunk(carry, keys[done:done + every])
        if done + every in wanted:
            snapshots[done + every] = jax.device_get(carry[:2])
    return snapshots


def loss_gradients(d_of_gz: np.ndarray) -> Dict[str, np.ndarray]:
    """|d loss_G / d logit| of the minimax and non-saturating generator losses
    (gan_jax.losses, by jax.grad) at D(G(z)) values in (0, 1) [N]; {name: [N]}."""
    import jax
    import jax.numpy as jnp

    from gan_jax import losses

    logits = jnp.log(d_of_gz) - jnp.log1p(-d_of_gz)
    out = {}
    for name, fn in (('minimax', losses.g_loss_minimax),
                     ('non_saturating', losses.g_loss_non_saturating)):
        # One fake per call: the batch mean is then the loss of that sample.
        grad = jax.vmap(jax.grad(lambda l, fn=fn: fn(fake_logits=l[None])))(logits)
        out[name] = np.abs(np.asarray(grad, np.float64))
    return out


def draw(snapshots: Dict[int, Tuple], path: str, *, steps: int, seed: int) -> None:
    """Writes the figure (one panel per snapshot, then the gradient panel)."""
    import jax
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    z = jax.random.normal(jax.random.PRNGKey(seed + 1), (KDE_SAMPLES, 1))
    fakes = {s: np.asarray(generator(g, z))[:, 0] for s, (g, _) in snapshots.items()}
    # One x range for every panel: the data and every generator's bulk.
    lo = min([DATA_MEAN - 4 * DATA_STD]
             + [np.percentile(f, 0.5) for f in fakes.values()])
    hi = max([DATA_MEAN + 4 * DATA_STD]
             + [np.percentile(f, 99.5) for f in fakes.values()])
    pad = 0.1 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, 600)
    p_data = normal_pdf(x, DATA_MEAN, DATA_STD)
    # A generator that narrows on its way to the data has a tall, thin density:
    # it is clipped (its peak is written in the panel) so D stays readable.
    ymax = max(2.2 * p_data.max(), 1.05)

    n = len(snapshots)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.4 * (n + 1), 3.3), dpi=110,
                             gridspec_kw={'width_ratios': [1] * n + [1.15]})
    mean_d_fake = {}
    for ax, (s, (_, d)) in zip(axes, sorted(snapshots.items())):
        p_g = gaussian_kde(fakes[s], x)
        d_x = np.asarray(jax.nn.sigmoid(discriminator(d, x[:, None])))
        mean_d_fake[s] = float(np.mean(jax.nn.sigmoid(
            discriminator(d, fakes[s][:, None]))))
        ax.plot(x, p_data, 'k:', lw=1.8, label='$p_{data}$')
        ax.plot(x, p_g, 'g-', lw=1.8, label='$p_g$ (KDE of G samples)')
        ax.plot(x, d_x, 'b--', lw=1.6, label='$D(x)$')
        ax.plot(x, optimal_discriminator(p_data, p_g), '-', color='tab:blue',
                lw=0.8, alpha=0.8, label='$D^*(x)=p_{data}/(p_{data}+p_g)$')
        ax.axhline(0.5, color='0.75', lw=0.6, zorder=0)
        ax.set_ylim(0, ymax)
        if p_g.max() > ymax:
            ax.text(x[np.argmax(p_g)], 0.97 * ymax, f' $p_g$ peak {p_g.max():.1f}',
                    fontsize=7, color='g', va='top')
        ax.set_xlim(x[0], x[-1])
        ax.set_title(f'step {s}: mean D(G(z)) = {mean_d_fake[s]:.2f}', fontsize=9)
        ax.set_xlabel('x')
    axes[0].legend(fontsize=7, loc='upper left')

    ax = axes[-1]
    s_grid = np.linspace(1e-3, 1 - 1e-3, 500)
    grads = loss_gradients(s_grid)
    ax.plot(s_grid, grads['minimax'], color='tab:red', lw=1.8,
            label='minimax: log(1 - D(G(z)))')
    ax.plot(s_grid, grads['non_saturating'], color='tab:green', lw=1.8,
            label='non-saturating: -log D(G(z))')
    for s, value in sorted(mean_d_fake.items()):
        ax.axvline(value, color='0.6', lw=0.6, ls=':')
        ax.text(value, 0.02, f'step {s} ', fontsize=6, ha='left', va='bottom',
                rotation=90,
                color='0.4', transform=ax.get_xaxis_transform())
    ax.annotate('D rejects fakes:\nminimax grad. → 0', xy=(0.015, 0.02),
                xytext=(0.04, 0.44), fontsize=8, color='tab:red',
                arrowprops=dict(arrowstyle='->', color='tab:red'))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel('D(G(z))   (dotted: the mean at the steps shown)', fontsize=8)
    ax.set_ylabel('|d loss_G / d logit|', fontsize=8)
    ax.set_title('generator gradient (gan_jax.losses, jax.grad)', fontsize=9)
    ax.legend(fontsize=7, loc='upper center')

    fig.suptitle(f'1-D GAN, non-saturating generator loss: p_data = '
                 f'N({DATA_MEAN:g}, {DATA_STD:g}²), {steps} steps, seed {seed}',
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/img/gan_1d.png', help='PNG path.')
    parser.add_argument('--steps', type=int, default=3000,
                        help='G updates (each after one D update).')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1:
        raise SystemExit(f'error: --steps must be positive, got {args.steps}')
    start = time.perf_counter()
    snapshots = train(args.steps, args.seed)
    print(f'trained in {time.perf_counter() - start:.1f} s')
    draw(snapshots, args.out, steps=args.steps, seed=args.seed)
    print(f'wrote {args.out} ({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
