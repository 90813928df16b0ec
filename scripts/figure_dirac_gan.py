r"""The Dirac-GAN of Mescheder, Geiger and Nowozin (2018), "Which Training
Methods for GANs do actually Converge?", Sec. 2-4 and Fig. 3: gradient vector
fields, trajectories of simultaneous and alternating gradient descent, the
eigenvalues of the Jacobian at the equilibrium against the paper's closed
forms, and the distance to the equilibrium after N steps.

  python scripts/figure_dirac_gan.py [--out docs/img/dirac_gan.png] \
      [--steps 500] [--lr 0.2] [--table docs/dirac_gan_table.md] [--quick]

The game: data p_D = δ₀, generator G = δ_θ (one parameter: G(z) = θ), a
linear discriminator D(x) = ψ·x (one parameter). Nothing of the game is
written by hand: both players' losses are gan_jax.losses and
gan_jax.regularizers through train.d_loss_fn / g_loss_fn on these two
one-parameter flax modules, their gradients come from train.game_gradients
and each step from train.game_step (plain gradient descent, optax.sgd,
rate --lr). The only derivative taken here is the Jacobian of that field at
(0, 0) (jax.jacfwd of train.game_gradients), for the eigenvalue table.

gan_jax's discriminators score data high (sigmoid(D) = P(real)); the paper's
D scores fakes high. Our ψ is the paper's -ψ: every panel is the paper's
mirrored in ψ, and the eigenvalues (invariant under the reflection) are the
paper's. Settings are those of the paper's reference code
(github.com/LMescheder/GAN_stability, notebooks/DiracGAN.ipynb): start
(θ, ψ) = (1, 1), rate 0.2, 500 steps, WGAN clipped to |ψ| <= 1, WGAN-GP
γ = 0.7 (our λ = γ/2) with target 1, instance noise σ = 0.7, R1 / R2
γ = 0.3, consensus γ = 1; alternating steps update G, then D (5 times for
WGAN and WGAN-GP, once otherwise, as the paper's Fig. 3).

Instance noise is the exact expectation over ε ~ N(0, σ²) by an equal-weight
quadrature: the data become σ·n and G(z) = θ + σ·n for fixed nodes n with
mean 0 and second moment exactly 1, so the field is deterministic and the
Jacobian at (0, 0) equals the closed form (it depends on the noise only
through E[ε²]).

Writes the figure (one panel per method, both trajectories, and a panel of
the eigenvalues in the complex plane) and prints (and with --table writes)
the markdown table of eigenvalues and distances. --quick: 40 steps on a
coarse grid, for tests.
"""
import argparse
import dataclasses
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

START = (1.0, 1.0)
LR = 0.2
STEPS = 500
# Equal-weight nodes standing in for E over N(0, 1) (instance noise).
NOISE_NODES = 256


@dataclasses.dataclass(frozen=True)
class Method:
    """One training method of the paper's Fig. 3 on the Dirac-GAN.

    Attributes:
      label: the panel title.
      loss: a gan_jax.losses name.
      penalties: ((regularizers.PENALTIES key, weight), ...).
      weight_clip: WGAN's clip of D's parameter (0 = none).
      n_critic: D steps per G step in alternating descent.
      consensus: consensus optimization's γ (0 = none).
      noise_std: instance noise σ (0 = none).
      closed_form: the paper's eigenvalues at (0, 0) as a function of nothing
        (f'(0) = 1/2, f''(0) = -1/4 for the logistic loss, f'(0) = 1 for
        WGAN), or None where the Jacobian does not exist.
      paper: what the paper says of the method (for the table).
    """
    label: str
    loss: str
    penalties: Tuple[Tuple[str, float], ...] = ()
    weight_clip: float = 0.0
    n_critic: int = 1
    consensus: float = 0.0
    noise_std: float = 0.0
    closed_form: Optional[Tuple[complex, complex]] = None
    paper: str = ''


def _pair(z: complex) -> Tuple[complex, complex]:
    return (z, z.conjugate())


F1, F2 = 0.5, -0.25  # f'(0), f''(0) of f(t) = -log(1 + exp(-t))
GAMMA_R, GAMMA_CO, SIGMA, GAMMA_GP = 0.3, 1.0, 0.7, 0.7
METHODS: Dict[str, Method] = {
    'gan': Method('GAN', 'minimax', closed_form=_pair(1j * F1),
                  paper='±i f\'(0): no convergence'),
    'nsgan': Method('non-saturating GAN', 'non_saturating',
                    closed_form=_pair(1j * F1),
                    paper='±i f\'(0): no convergence'),
    'wgan': Method('WGAN (|ψ| ≤ 1)', 'wasserstein', weight_clip=1.0, n_critic=5,
                   closed_form=_pair(1j), paper='±i: no convergence'),
    'wgan_gp': Method('WGAN-GP (γ 0.7, target 1)', 'wasserstein',
                      penalties=(('gp_weight', GAMMA_GP / 2),), n_critic=5,
                      paper='field discontinuous at ψ = 0: no convergence'),
    'consensus': Method('consensus optimization (γ 1)', 'minimax',
                        consensus=GAMMA_CO,
                        closed_form=_pair(-GAMMA_CO * F1 ** 2 + 1j * F1),
                        paper='-γ f\'(0)² ± i f\'(0): converges'),
    'instance_noise': Method('instance noise (σ 0.7)', 'minimax', noise_std=SIGMA,
                             closed_form=_pair(complex(F2 * SIGMA ** 2) + np.sqrt(
                                 complex(F2 ** 2 * SIGMA ** 4 - F1 ** 2))),
                             paper='f\'\'(0)σ² ± √(f\'\'(0)²σ⁴ - f\'(0)²): '
                                   'converges'),
    'r1': Method('R1 (γ 0.3)', 'minimax', penalties=(('r1_gamma', GAMMA_R),),
                 closed_form=_pair(-GAMMA_R / 2 + np.sqrt(
                     complex(GAMMA_R ** 2 / 4 - F1 ** 2))),
                 paper='-γ/2 ± √(γ²/4 - f\'(0)²): converges'),
    'r2': Method('R2 (γ 0.3)', 'minimax', penalties=(('r2_gamma', GAMMA_R),),
                 closed_form=_pair(-GAMMA_R / 2 + np.sqrt(
                     complex(GAMMA_R ** 2 / 4 - F1 ** 2))),
                 paper='as R1: converges'),
    'dragan': Method('DRAGAN (λ 0.35)', 'minimax',
                     penalties=(('dragan_weight', GAMMA_GP / 2),),
                     paper='(not in the paper) as WGAN-GP: a non-zero-centered '
                           'penalty, discontinuous at ψ = 0'),
}


def noise_nodes(num: int = NOISE_NODES) -> np.ndarray:
    """[num] float64 nodes n_i = Φ⁻¹((i + ½)/num), rescaled to mean 0 and
    mean square exactly 1: mean(h(σ n)) stands in for E h(ε), ε ~ N(0, σ²)."""
    from statistics import NormalDist
    nodes = np.array([NormalDist().inv_cdf((i + 0.5) / num) for i in range(num)])
    nodes = 0.5 * (nodes - nodes[::-1])  # exactly antisymmetric: mean 0
    return nodes / np.sqrt(np.mean(nodes ** 2))


def make_game(method: Method, lr: float):
    """(spec, real [B, 1], z [B, 1]) of the Dirac-GAN trained with `method`.

    G is DiracGenerator (θ + σ z), D is LinearDiscriminator (ψ x); without
    instance noise B = 1, real = 0 and z = 0.
    """
    import flax.linen as nn
    import jax.numpy as jnp
    import optax

    from gan_jax import losses, train

    class DiracGenerator(nn.Module):
        """z [B, 1] -> θ + noise_std · z [B, 1] (G = δ_θ, plus instance noise)."""
        noise_std: float = 0.0

        @nn.compact
        def __call__(self, z, labels=None, *, train):
            del labels, train
            theta = self.param('theta', nn.initializers.zeros, (1,))
            return theta + self.noise_std * z

    class LinearDiscriminator(nn.Module):
        """x [B, 1] -> ψ · x [B] (the Dirac-GAN's discriminator)."""

        @nn.compact
        def __call__(self, x, labels=None, *, train):
            del labels, train
            psi = self.param('psi', nn.initializers.zeros, (1,))
            return psi[0] * x[:, 0]

    spec = train.UpdateSpec(
        G=DiracGenerator(method.noise_std), D=LinearDiscriminator(),
        g_tx=optax.sgd(lr), d_tx=optax.sgd(lr), loss=losses.get(method.loss),
        z_dim=1, n_critic=method.n_critic, penalties=method.penalties,
        d_weight_clip=method.weight_clip)
    if method.noise_std > 0:
        nodes = jnp.asarray(noise_nodes(), jnp.float32)[:, None]
        return spec, method.noise_std * nodes, nodes
    return spec, jnp.zeros((1, 1)), jnp.zeros((1, 1))


def _params(theta, psi):
    import jax.numpy as jnp
    return ({'theta': jnp.reshape(theta, (1,))}, {'psi': jnp.reshape(psi, (1,))})


def vector_field(method: Method, theta, psi):
    """The field v = -(∇_θ L_G, ∇_ψ L_D) at arrays theta, psi (same shape);
    (v_θ, v_ψ) of that shape (train.game_gradients, consensus included)."""
    import jax
    import jax.numpy as jnp

    from gan_jax import train
    spec, real, z = make_game(method, LR)

    def at(t, p):
        g, d = train.game_gradients(*_params(t, p), real, z, jax.random.PRNGKey(0),
                                    spec=spec, consensus=method.consensus)
        return -g['theta'][0], -d['psi'][0]

    flat = jax.jit(jax.vmap(at))(jnp.ravel(theta), jnp.ravel(psi))
    return tuple(np.asarray(v).reshape(np.shape(theta)) for v in flat)


def jacobian_eigenvalues(method: Method) -> np.ndarray:
    """Eigenvalues [2] complex128 of the Jacobian of the field at (0, 0),
    sorted by imaginary part (jax.jacfwd of train.game_gradients)."""
    import jax
    import jax.numpy as jnp

    from gan_jax import train
    spec, real, z = make_game(method, LR)

    def field(x):
        g, d = train.game_gradients(*_params(x[0], x[1]), real, z,
                                    jax.random.PRNGKey(0), spec=spec,
                                    consensus=method.consensus)
        return -jnp.concatenate([g['theta'], d['psi']])

    jac = np.asarray(jax.jacfwd(field)(jnp.zeros(2)), np.float64)
    eig = np.linalg.eigvals(jac).astype(np.complex128)
    return eig[np.lexsort((eig.real, eig.imag))]


def trajectory(method: Method, *, simultaneous: bool, steps: int, lr: float,
               start: Tuple[float, float] = START) -> np.ndarray:
    """[(steps + 1), 2] float64 (θ, ψ) of gradient descent from `start`
    (train.game_step, one jitted lax.scan)."""
    import jax

    from gan_jax import train
    spec, real, z = make_game(method, lr)
    params = _params(*start)
    params = (params[0], train.clip_d_params(params[1], spec))
    opt_states = (spec.g_tx.init(params[0]), spec.d_tx.init(params[1]))

    def step(carry, i):
        params, opt_states = train.game_step(
            *carry, real, z, jax.random.fold_in(jax.random.PRNGKey(1), i),
            spec=spec, simultaneous=simultaneous, consensus=method.consensus)
        point = (params[0]['theta'][0], params[1]['psi'][0])
        return (params, opt_states), point

    run = jax.jit(lambda c: jax.lax.scan(step, c, jax.numpy.arange(steps))[1])
    thetas, psis = run((params, opt_states))
    points = np.stack([np.asarray(thetas), np.asarray(psis)], axis=1)
    first = np.array([[float(params[0]['theta'][0]), float(params[1]['psi'][0])]])
    return np.concatenate([first, points.astype(np.float64)])


def wgan_gp_jump(method: Method, eps: float = 1e-3) -> float:
    """v_ψ(0, +eps) - v_ψ(0, -eps): the jump of a non-zero-centered penalty's
    field across ψ = 0 (4λ · target - 2λ·2eps for the penalty λ(|ψ| - target)²,
    which pushes |ψ| up towards the target on both sides)."""
    _, v_psi = vector_field(method, np.zeros(2), np.array([-eps, eps]))
    return float(v_psi[1] - v_psi[0])


def _fmt(z: complex) -> str:
    return f'{z.real:+.4f} {z.imag:+.4f}i'


def results(steps: int, lr: float, methods: List[str]) -> Dict[str, Dict]:
    """Per method: eigenvalues, closed form, both trajectories and their final
    distances to (0, 0)."""
    out = {}
    for name in methods:
        method = METHODS[name]
        row = {'eig': jacobian_eigenvalues(method)}
        for mode, simultaneous in (('sim', True), ('alt', False)):
            path = trajectory(method, simultaneous=simultaneous, steps=steps, lr=lr)
            row[mode] = path
            row[f'{mode}_dist'] = float(np.linalg.norm(path[-1]))
        out[name] = row
    return out


def table(res: Dict[str, Dict], steps: int, lr: float) -> str:
    """The markdown table of eigenvalues and final distances."""
    lines = [f'| method | eigenvalues at (0, 0), ours | the paper\'s closed form | '
             f'distance to (0, 0) after {steps} steps, simultaneous | alternating |',
             '|---|---|---|---|---|']
    for name, row in res.items():
        method = METHODS[name]
        ours = ', '.join(_fmt(z) for z in row['eig'])
        if method.closed_form is None:
            jump = wgan_gp_jump(method)
            ours = f'not defined (v_ψ jumps by {jump:.3f} across ψ = 0)'
            closed = method.paper
        else:
            closed = (', '.join(_fmt(z) for z in sorted(
                method.closed_form, key=lambda z: z.imag)) + f': {method.paper}')
        label = method.label.replace('|', '\\|')  # a markdown cell
        lines.append(f'| {label} | {ours} | {closed} | {row["sim_dist"]:.3g} | '
                     f'{row["alt_dist"]:.3g} |')
    return '\n'.join(lines) + (f'\n\nStart (θ, ψ) = {START}, distance '
                               f'{np.hypot(*START):.3f}; gradient descent, rate {lr}.')


def draw(res: Dict[str, Dict], path: str, *, grid: int, title: str) -> None:
    """One panel per method (field, simultaneous and alternating trajectories)
    and an eigenvalue panel; writes the PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(res)
    cols = 5
    rows = -(-(len(names) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), dpi=100,
                             squeeze=False)
    axis = np.linspace(-2, 2, grid)
    theta, psi = np.meshgrid(axis, axis)
    for ax, name in zip(axes.flat, names):
        method, row = METHODS[name], res[name]
        v_theta, v_psi = vector_field(method, theta, psi)
        ax.quiver(theta, psi, v_theta, v_psi, color='0.35', width=0.004)
        if method.weight_clip:
            for sign in (-1, 1):
                ax.axhspan(sign * method.weight_clip, sign * 2.2, color='0.85',
                           zorder=0)
        ax.plot(row['sim'][:, 0], row['sim'][:, 1], '-', color='tab:blue', lw=1,
                label=f'simultaneous: {row["sim_dist"]:.2g}')
        ax.plot(row['alt'][:, 0], row['alt'][:, 1], '-', color='tab:orange', lw=1,
                label=f'alternating: {row["alt_dist"]:.2g}')
        ax.plot(*START, 'o', color='red', ms=4)
        ax.plot(0, 0, '*', color='k', ms=7)
        ax.set_xlim(-2, 2)
        ax.set_ylim(-2, 2)
        ax.set_aspect('equal')
        ax.set_title(method.label, fontsize=9)
        ax.set_xlabel('θ', fontsize=8)
        ax.set_ylabel('ψ', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc='lower left', title='distance at the end',
                  title_fontsize=6.5)
    ax = axes.flat[len(names)]
    for i, name in enumerate(names):
        method, color = METHODS[name], f'C{i}'
        eig = res[name]['eig']
        if method.closed_form is None:
            continue
        ax.plot(eig.real, eig.imag, 'o', color=color, mfc='none', ms=8,
                label=method.label)
        closed = np.array(method.closed_form)
        ax.plot(closed.real, closed.imag, 'x', color=color, ms=6)
    ax.axvline(0, color='0.6', lw=0.8)
    ax.axhline(0, color='0.6', lw=0.8)
    ax.set_title('Jacobian eigenvalues at (0, 0)\n○ ours, × closed form', fontsize=9)
    ax.set_xlabel('real part', fontsize=8)
    ax.set_ylabel('imaginary part', fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc='center left')
    for extra in axes.flat[len(names) + 1:]:
        extra.axis('off')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='docs/img/dirac_gan.png', help='PNG path.')
    parser.add_argument('--steps', type=int, default=STEPS)
    parser.add_argument('--lr', type=float, default=LR)
    parser.add_argument('--methods', default=','.join(METHODS),
                        help=f'Comma-separated, from {", ".join(METHODS)}.')
    parser.add_argument('--table', default='', help='Also write the table here.')
    parser.add_argument('--quick', action='store_true',
                        help='40 steps, a coarse field: a few seconds, for tests.')
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(',') if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise SystemExit(f'error: unknown method {(unknown or ["(none)"])[0]!r}; '
                         f'valid: {", ".join(METHODS)}')
    if args.steps < 1 or args.lr <= 0:
        raise SystemExit(f'error: --steps must be >= 1 and --lr > 0, got '
                         f'{args.steps}, {args.lr}')
    steps = 40 if args.quick else args.steps
    start = time.perf_counter()
    res = results(steps, args.lr, methods)
    text = table(res, steps, args.lr)
    print(text)
    if args.table:
        with open(args.table, 'w') as f:
            f.write(text + '\n')
    draw(res, args.out, grid=7 if args.quick else 13,
         title=f'Dirac-GAN (Mescheder et al. 2018): p_data = δ₀, G = δ_θ, '
               f'D(x) = ψx; gradient descent, rate {args.lr}, {steps} steps from '
               f'(1, 1); blue simultaneous, orange alternating (ψ mirrored: '
               f'gan_jax scores data high)')
    print(f'wrote {args.out}; wall time {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
