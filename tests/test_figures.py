"""The figure scripts: scripts/figure_gan_1d.py, figure_losses.py,
figure_samples.py, figure_dirac_gan.py, figure_wgan_critics.py and
figure_unrolled_ring.py, run in-process on small settings."""
import os
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from experiments.configs import toy_ring
from gan_jax import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import figure_dirac_gan  # noqa: E402
import figure_gan_1d  # noqa: E402
import figure_losses  # noqa: E402
import figure_samples  # noqa: E402
import figure_unrolled_ring  # noqa: E402
import figure_wgan_critics  # noqa: E402


def assert_nontrivial_png(path, min_colors=50):
    assert os.path.exists(path)
    with Image.open(path) as im:
        pixels = np.asarray(im.convert('RGB'))
    assert min(pixels.shape[:2]) > 100
    colors = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colors) >= min_colors, f'{path} has only {len(colors)} colors'


@pytest.fixture(scope='module')
def ring_workdir(tmp_path_factory):
    """A finished 6-step toy_ring smoke run (narrow networks, as test_loop's tiny)."""
    config = toy_ring.get_config('smoke')
    config.model.g.hidden = (32, 32)
    config.model.d.hidden = (32,)
    config.batch_size = 20
    config.progress = False
    workdir = str(tmp_path_factory.mktemp('figures') / 'ring')
    loop.run(config, workdir)
    return workdir


def test_gan_1d_figure_is_written(tmp_path):
    out = str(tmp_path / 'gan_1d.png')
    figure_gan_1d.main(['--out', out, '--steps', '300', '--seed', '1'])
    assert_nontrivial_png(out)


def test_gan_1d_training_is_deterministic_and_moves_g_towards_the_data():
    a = figure_gan_1d.train(100, seed=3)
    b = figure_gan_1d.train(100, seed=3)
    assert sorted(a) == figure_gan_1d.snapshot_steps(100) == [0, 5, 20, 100]
    for step in a:
        for x, y in zip(jax.tree.leaves(a[step]), jax.tree.leaves(b[step])):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    g_start, g_end = a[0][0], a[100][0]
    assert float(g_start['shift']) == 0.0
    # G starts at N(0, 1) and the data sit at 4: the non-saturating loss moves it.
    assert float(g_end['shift']) > 0.3


def test_optimal_discriminator_matches_the_closed_form_for_two_gaussians():
    m1, s1, m2, s2 = 4.0, 0.5, 2.5, 1.2
    x = np.linspace(-1.0, 7.0, 401)
    got = figure_gan_1d.optimal_discriminator(
        figure_gan_1d.normal_pdf(x, m1, s1), figure_gan_1d.normal_pdf(x, m2, s2),
        floor=0.0)
    # p1 / (p1 + p2) = 1 / (1 + p2 / p1), the log-ratio written out.
    log_ratio = (np.log(s1 / s2) - (x - m2) ** 2 / (2 * s2 ** 2)
                 + (x - m1) ** 2 / (2 * s1 ** 2))
    np.testing.assert_allclose(got, 1.0 / (1.0 + np.exp(log_ratio)), rtol=1e-12)
    # Equal widths: D* = 1/2 exactly half way between the means.
    pdf = figure_gan_1d.normal_pdf
    half = figure_gan_1d.optimal_discriminator(pdf(3.0, 2.0, 1.0), pdf(3.0, 4.0, 1.0))
    assert half == pytest.approx(0.5, abs=1e-15)
    # Far from both densities the ratio is undefined and left out.
    assert np.isnan(figure_gan_1d.optimal_discriminator(
        figure_gan_1d.normal_pdf(40.0, m1, s1), figure_gan_1d.normal_pdf(40.0, m2, s2)))


def test_generator_gradients_vanish_for_minimax_when_d_rejects_fakes():
    d = np.array([1e-4, 0.1, 0.5, 0.9])
    grads = figure_gan_1d.loss_gradients(d)
    np.testing.assert_allclose(grads['minimax'], d, rtol=1e-5)
    np.testing.assert_allclose(grads['non_saturating'], 1.0 - d, rtol=1e-5)


def test_losses_figure_of_a_workdir(ring_workdir, tmp_path):
    out = str(tmp_path / 'losses.png')
    figure_losses.main(['--workdirs', ring_workdir, '--labels', 'tiny',
                        '--metrics', 'loss/d,loss/g,eval/modes/modes', '--out', out])
    assert_nontrivial_png(out)


def test_losses_figure_errors_name_the_problem(ring_workdir, tmp_path):
    out = str(tmp_path / 'losses.png')
    with pytest.raises(SystemExit) as e:
        figure_losses.main(['--workdirs', ring_workdir, '--metrics', 'loss/d,loss/q',
                            '--out', out])
    message = str(e.value.code)
    assert message.startswith("error: unknown metric 'loss/q'; available metrics: ")
    for name in ('loss/d', 'loss/g', 'grad_norm/d', 'eval/modes/modes'):
        assert name in message
    assert '\n' not in message and 'step' not in message.split(': ', 2)[-1].split(', ')
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(SystemExit, match=f'error: workdir {missing} does not exist'):
        figure_losses.main(['--workdirs', missing, '--out', out])
    assert not os.path.exists(out)


def test_mean_and_standard_error_over_members():
    steps, mean, sem = figure_losses.mean_and_sem(
        [{1: 1.0, 2: 2.0}, {1: 3.0, 2: float('nan')}, {1: 5.0}])
    np.testing.assert_array_equal(steps, [1, 2])
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(sem, [2.0 / np.sqrt(3.0), 0.0])


def test_samples_figure_of_a_2d_run(ring_workdir, tmp_path):
    out = str(tmp_path / 'samples.png')
    figure_samples.main(['--workdir', ring_workdir, '--out', out])
    assert_nontrivial_png(out, min_colors=10)
    assert not os.path.exists(str(tmp_path / 'samples_interp.png'))  # points: none
    with pytest.raises(SystemExit, match='--member needs a sweep workdir'):
        figure_samples.main(['--workdir', ring_workdir, '--member', '0', '--out', out])


def test_dirac_gan_quick_figure_is_written(tmp_path, capsys):
    out, table = str(tmp_path / 'dirac.png'), str(tmp_path / 'dirac.md')
    figure_dirac_gan.main(['--quick', '--methods', 'gan,r1,wgan_gp', '--out', out,
                           '--table', table])
    assert_nontrivial_png(out)
    text = open(table).read()
    assert 'R1 (γ 0.3) | -0.1500 -0.4770i, -0.1500 +0.4770i |' in text
    assert 'not defined (v_ψ jumps by 1.399 across ψ = 0)' in text
    with pytest.raises(SystemExit, match="unknown method 'r3'; valid: gan, nsgan"):
        figure_dirac_gan.main(['--quick', '--methods', 'r3', '--out', out])


def test_wgan_critics_quick_figure_is_written(tmp_path):
    out = str(tmp_path / 'critics.png')
    figure_wgan_critics.main(['--quick', '--datasets', 'swissroll', '--out', out])
    assert_nontrivial_png(out)
    with pytest.raises(SystemExit, match="unknown dataset 'moons'; valid: ring, grid"):
        figure_wgan_critics.main(['--quick', '--datasets', 'moons', '--out', out])


def test_clipped_critic_stays_in_the_box_and_penalised_one_is_not_clipped():
    _, clipped, _ = figure_wgan_critics.train_critic(
        'clip', 'swissroll', steps=3, seed=0, d_hidden=(16,))
    leaves = jax.tree.leaves(clipped.d_params)
    assert max(float(np.abs(p).max()) for p in leaves) <= 0.01
    _, penalised, metrics = figure_wgan_critics.train_critic(
        'gp', 'swissroll', steps=3, seed=0, d_hidden=(16,))
    leaves = jax.tree.leaves(penalised.d_params)
    assert max(float(np.abs(p).max()) for p in leaves) > 0.1
    assert metrics['reg/gp'] > 0


@pytest.mark.slow
def test_unrolled_ring_quick_figure_is_written(tmp_path):
    out = str(tmp_path / 'unrolled.png')
    figure_unrolled_ring.main(['--quick', '--out', out])
    assert_nontrivial_png(out, min_colors=10)


def test_unrolled_ring_configs_and_errors(tmp_path):
    config = figure_unrolled_ring.run_config(10, steps=5000, snapshots=5, seed=0,
                                             quick=False, batch_size=512)
    assert (config.unroll_steps, config.batch_size, config.model.z_dim) == (
        10, 512, 256)
    assert config.checkpoint_every == 1000 and 1000 % config.steps_per_call == 0
    from gan_jax import config as config_lib
    config_lib.validate(config)
    with pytest.raises(SystemExit, match='--unroll needs integers >= 0'):
        figure_unrolled_ring.main(['--unroll', '-1', '--out', str(tmp_path / 'x.png')])
    with pytest.raises(SystemExit, match=r'--snapshots \(3\) must be >= 1 and divide'):
        figure_unrolled_ring.main(['--snapshots', '3', '--steps', '100',
                                   '--out', str(tmp_path / 'x.png')])
