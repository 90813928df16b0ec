"""FID, KID, IS and precision/recall against direct numpy/scipy references."""
import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics import fid, inception_score, precision_recall

RNG = np.random.default_rng(0)
A = RNG.normal(size=(500, 16))
B = RNG.normal(size=(400, 16)) * 1.3 + 0.5


def reference_fid(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * root)


def test_fid_matches_scipy_reference_and_is_zero_against_itself():
    np.testing.assert_allclose(fid.fid_from_features(A, B), reference_fid(A, B),
                               rtol=1e-6)
    assert abs(fid.fid_from_features(A, A)) < 1e-6


@pytest.mark.parametrize('sizes', [[500], [100] * 5, [128, 128, 128, 116], [499, 1],
                                   [7] * 71 + [3]])
def test_streaming_statistics_equal_one_shot_for_any_split(sizes):
    stats = fid.StreamingStats(16)
    start = 0
    for size in sizes:
        stats.update(A[start:start + size])
        start += size
    assert stats.count == 500
    np.testing.assert_allclose(stats.mean(), A.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.cov(), np.cov(A, rowvar=False), rtol=1e-10,
                               atol=1e-12)


def test_kid_equals_a_direct_unbiased_mmd():
    x, y = A[:50], B[:60]
    got = fid.kernel_inception_distance(x, y, num_subsets=1, subset_size=50)
    d = x.shape[1]
    rng = np.random.default_rng(0)
    xs = x[rng.choice(50, 50, replace=False)]
    ys = y[rng.choice(60, 50, replace=False)]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    m = 50
    xx = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(xs[i], ys[j]) for i in range(m) for j in range(m))
    expected = xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)
    np.testing.assert_allclose(got['kid'], expected, rtol=1e-10)
    same = fid.kernel_inception_distance(A, A.copy(), num_subsets=5, subset_size=100)
    assert abs(same['kid']) < 0.05 and same['kid_std'] >= 0


def test_inception_score_of_confident_uniform_predictions_is_the_class_count():
    probs = np.eye(10)[np.arange(1000) % 10]
    mean, std = inception_score.inception_score(probs)
    np.testing.assert_allclose(mean, 10.0, rtol=1e-12)
    assert std < 1e-12
    mean, _ = inception_score.inception_score(np.full((100, 10), 0.1), splits=2)
    np.testing.assert_allclose(mean, 1.0)


def test_precision_recall_on_sets_with_known_overlap():
    real = RNG.normal(size=(300, 2))
    same = precision_recall.precision_recall(real, real + 1e-9)
    assert same == {'precision': 1.0, 'recall': 1.0}
    far = precision_recall.precision_recall(real, real + 100.0)
    assert far == {'precision': 0.0, 'recall': 0.0}
    # Fakes collapsed onto one real point: precise, but recall only covers
    # the reals within that tiny fake manifold.
    collapsed = np.repeat(real[:1], 300, axis=0) + RNG.normal(size=(300, 2)) * 1e-3
    pr = precision_recall.precision_recall(real, collapsed)
    assert pr['precision'] == 1.0 and pr['recall'] < 0.05
