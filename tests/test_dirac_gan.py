"""The Dirac-GAN of Mescheder et al. (2018) built from gan_jax's losses,
penalties and train.game_step (scripts/figure_dirac_gan.py): the Jacobian at
the equilibrium against the paper's closed forms, and which methods converge."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import figure_dirac_gan as dirac  # noqa: E402

WITH_CLOSED_FORM = [n for n, m in dirac.METHODS.items() if m.closed_form is not None]


@pytest.mark.parametrize('name', WITH_CLOSED_FORM)
def test_jacobian_eigenvalues_equal_the_papers_closed_forms(name):
    method = dirac.METHODS[name]
    got = dirac.jacobian_eigenvalues(method)
    expected = np.array(sorted(method.closed_form, key=lambda z: z.imag))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def test_closed_forms_are_the_papers_numbers():
    # f'(0) = 1/2 and f''(0) = -1/4 for f(t) = -log(1 + exp(-t)).
    forms = {n: sorted(m.closed_form, key=lambda z: z.imag)[1]
             for n, m in dirac.METHODS.items() if m.closed_form}
    assert forms['gan'] == forms['nsgan'] == 0.5j and forms['wgan'] == 1j
    assert forms['consensus'] == pytest.approx(-0.25 + 0.5j)
    r1 = -0.15 + np.sqrt(0.25 - 0.0225) * 1j
    assert forms['r1'] == forms['r2'] == pytest.approx(r1)
    assert forms['instance_noise'] == pytest.approx(
        -0.25 * 0.49 + np.sqrt(0.25 - 0.0625 * 0.49 ** 2) * 1j)


@pytest.mark.parametrize('name', ['wgan_gp', 'dragan'])
def test_non_zero_centered_penalties_make_the_field_jump_at_psi_zero(name):
    # λ(|ψ| - 1)² pushes |ψ| towards 1 on both sides of ψ = 0: the field has
    # no Jacobian there, and v_ψ jumps by 4λ(1 - eps).
    lam, eps = dirac.GAMMA_GP / 2, 1e-3
    assert dirac.wgan_gp_jump(dirac.METHODS[name], eps) == pytest.approx(
        4 * lam * (1 - eps), rel=1e-4)


def test_unregularized_gan_does_not_converge():
    gan = dirac.METHODS['gan']
    start = np.hypot(*dirac.START)
    sim = np.linalg.norm(dirac.trajectory(gan, simultaneous=True,
                                          steps=dirac.STEPS, lr=dirac.LR), axis=1)
    # The field is orthogonal to (θ, ψ): every simultaneous step moves away.
    assert sim[0] == pytest.approx(start)
    assert np.all(sim >= start - 1e-6) and np.all(np.diff(sim) >= -1e-6)
    assert sim[-1] > 2 * start
    alt = np.linalg.norm(dirac.trajectory(gan, simultaneous=False,
                                          steps=dirac.STEPS, lr=dirac.LR), axis=1)
    # Alternating steps circle the equilibrium without approaching it.
    assert alt.min() > 0.5 * start


@pytest.mark.parametrize('name', ['r1', 'consensus', 'instance_noise'])
def test_regularized_gans_converge_within_the_papers_budget(name):
    method = dirac.METHODS[name]
    for simultaneous in (True, False):
        path = dirac.trajectory(method, simultaneous=simultaneous, steps=dirac.STEPS,
                                lr=dirac.LR)
        assert len(path) == dirac.STEPS + 1
        assert np.linalg.norm(path[-1]) < 1e-3


def test_wgan_clip_keeps_psi_in_the_box():
    path = dirac.trajectory(dirac.METHODS['wgan'], simultaneous=False, steps=100,
                            lr=dirac.LR, start=(1.0, 1.5))
    assert path[0, 1] == 1.0  # the start is clipped too
    assert np.abs(path[:, 1]).max() <= 1.0
    assert np.abs(path[:, 1]).max() == 1.0  # and the clip is reached


def test_noise_nodes_have_the_moments_of_a_standard_normal():
    nodes = dirac.noise_nodes(dirac.NOISE_NODES)
    assert abs(nodes.mean()) < 1e-15
    assert np.mean(nodes ** 2) == pytest.approx(1.0, abs=1e-14)
    # Quantile nodes thin the tails a little: E ε⁴ = 3 only roughly.
    assert np.mean(nodes ** 4) == pytest.approx(3.0, rel=0.05)
