"""2-D mixtures and their mode metrics."""
import numpy as np
import pytest

from gan_jax.data import mixtures
from gan_jax.metrics.modes import mode_metrics


def test_ring_has_eight_distinct_modes_on_the_unit_circle():
    centers = mixtures.ring_centers()
    assert centers.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0)
    gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    # Neighbours sit 2 sin(π/8) apart: no mode repeated.
    np.testing.assert_allclose(gaps.min(), 2 * np.sin(np.pi / 8))
    np.testing.assert_allclose(centers[2], [0.0, 1.0], atol=1e-12)


def test_grid_has_25_modes_two_apart():
    centers = mixtures.grid_centers()
    assert centers.shape == (25, 2)
    assert sorted(set(centers[:, 0])) == [-4, -2, 0, 2, 4]
    assert len({tuple(c) for c in centers}) == 25


def test_samples_have_the_stated_spread():
    centers, std = mixtures.centers_and_std('ring')
    points = mixtures.sample(np.random.default_rng(0), 20000, centers, std)
    nearest = np.argmin(np.linalg.norm(points[:, None] - centers[None], axis=-1), 1)
    residual = points - centers[nearest]
    np.testing.assert_allclose(residual.std(axis=0), std, rtol=0.03)
    counts = np.bincount(nearest, minlength=8)
    assert counts.min() > 2200  # uniform over modes: 2500 each
    metrics = mode_metrics(points[:2500], centers, std)
    assert metrics['modes'] == 8
    assert metrics['high_quality'] > 0.98  # P(‖N(0, σ²I₂)‖ ≤ 3σ) = 98.9%


def test_batches_are_deterministic_and_resume_at_any_position():
    kwargs = dict(seed=3, batch_shape=(2, 50), num_train=1000)
    a = mixtures.batches('ring', **kwargs)
    first = [next(a) for _ in range(30)]  # 3 epochs of 1000 points
    assert first[0].shape == (2, 50, 2)
    b = mixtures.batches('ring', start_batch=17, **kwargs)
    for k in range(17, 30):
        np.testing.assert_array_equal(next(b), first[k])
    # Each epoch is a permutation of the same fixed 1000 points.
    epoch0 = np.concatenate([x.reshape(-1, 2) for x in first[:10]])
    epoch1 = np.concatenate([x.reshape(-1, 2) for x in first[10:20]])
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(np.sort(epoch0, axis=0), np.sort(epoch1, axis=0))
    other = next(mixtures.batches('ring', seed=4, batch_shape=(2, 50), num_train=1000))
    assert not np.array_equal(other, first[0])


def test_mode_metrics_closed_form():
    centers = mixtures.ring_centers()
    std = 0.01
    # 3 samples on mode 0, 1 on mode 1, 1 far away (not high quality).
    samples = np.array([centers[0], centers[0] + 0.02, centers[0], centers[1],
                        [0.0, 0.0]])
    m = mode_metrics(samples, centers, std)
    assert m['modes'] == 2
    np.testing.assert_allclose(m['high_quality'], 4 / 5)
    p = np.array([3 / 4, 1 / 4])
    np.testing.assert_allclose(m['reverse_kl'], np.sum(p * np.log(p * 8)))
    all_modes = mode_metrics(np.repeat(centers, 3, axis=0), centers, std)
    assert all_modes['modes'] == 8 and all_modes['reverse_kl'] == 0.0
    assert np.isnan(mode_metrics(np.array([[0.0, 0.0]]), centers, std)['reverse_kl'])


def test_swissroll_matches_its_definition():
    # Gulrajani et al.'s gan_toy.py: make_swiss_roll(noise=0.25)[0][:, [0, 2]] / 7.5,
    # i.e. t = 1.5π(1 + 2u), (t cos t, t sin t) + 0.25 N(0, I), over 7.5; the
    # same draws in the same order as the sampler.
    rng = np.random.default_rng(5)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=1000))
    noise = rng.standard_normal((1000, 2))
    expected = (np.stack([t * np.cos(t), t * np.sin(t)], 1) + 0.25 * noise) / 7.5
    points = mixtures.swissroll(np.random.default_rng(5), 1000)
    assert points.dtype == np.float32 and points.shape == (1000, 2)
    np.testing.assert_allclose(points, expected, rtol=1e-6, atol=1e-6)
    # Without the noise the points lie on the spiral r = t / 7.5 at angle t.
    curve = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 7.5
    np.testing.assert_allclose(np.linalg.norm(curve, axis=1), t / 7.5, rtol=1e-12)
    residual = points - curve
    np.testing.assert_allclose(residual.std(axis=0), 0.25 / 7.5, rtol=0.1)


def test_swissroll_has_sklearns_distribution():
    datasets = pytest.importorskip('sklearn.datasets')
    ours = mixtures.swissroll(np.random.default_rng(0), 20000)
    theirs = datasets.make_swiss_roll(20000, noise=0.25, random_state=0)[0][:, [0, 2]]
    theirs = theirs / 7.5
    for axis in range(2):  # the quantiles of both coordinates agree
        q = np.linspace(0.05, 0.95, 19)
        np.testing.assert_allclose(np.quantile(ours[:, axis], q),
                                   np.quantile(theirs[:, axis], q), atol=0.05)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1).mean(),
                               np.linalg.norm(theirs, axis=1).mean(), rtol=0.01)


def test_swissroll_batches_and_extras():
    a = mixtures.batches('swissroll', seed=1, batch_shape=(2, 50), num_train=1000)
    first = [next(a) for _ in range(12)]
    assert first[0].shape == (2, 50, 2) and first[0].dtype == np.float32
    b = mixtures.batches('swissroll', seed=1, batch_shape=(2, 50), num_train=1000,
                         start_batch=11)
    np.testing.assert_array_equal(next(b), first[11])
    assert mixtures.extras('swissroll') == {}  # no modes to count
    assert set(mixtures.extras('grid')) == {'centers', 'std'}
    assert mixtures.NAMES == ('ring', 'grid', 'swissroll')
    with pytest.raises(ValueError, match="'swissroll' is not a Gaussian "
                                                       'mixture with modes'):
        mixtures.centers_and_std('swissroll')


def test_swissroll_is_a_dataset_that_trains(tmp_path):
    from experiments.configs import toy_ring
    from gan_jax import config as config_lib
    from gan_jax import data, loop
    config = toy_ring.get_config('smoke')
    config.dataset = 'swissroll'
    config.evals = {}
    config.model.g.hidden = (16,)
    config.model.d.hidden = (16,)
    config.progress = False
    config_lib.validate(config)
    assert data.get_info(config).extras == {}
    loop.run(config, str(tmp_path / 'roll'))  # samples are drawn without centers
    assert (tmp_path / 'roll' / 'metrics.jsonl').exists()
    config.evals = {'modes': {'num_samples': 100}}
    with pytest.raises(Exception, match='the modes evaluator needs a 2-D mixture'):
        loop.run(config, str(tmp_path / 'roll_modes'))
