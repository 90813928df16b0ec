"""FID, KID, IS and precision/recall against direct numpy/scipy references."""
import warnings

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


def reference_inception_score(probs, splits):
    """The original implementation's loop (and torch-fidelity's), verbatim in
    numpy: part i is rows i*N//splits .. (i+1)*N//splits."""
    n, scores = len(probs), []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        py = np.mean(part, axis=0)
        kl = [np.sum(row * (np.log(row) - np.log(py))) for row in part]
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores), np.std(scores)


def test_inception_score_uses_the_reference_split_boundaries_when_n_is_not_divisible():
    probs = np.random.default_rng(1).dirichlet(np.full(10, 0.3), size=1003)
    mean, std = inception_score.inception_score(probs, splits=10)
    ref_mean, ref_std = reference_inception_score(probs, 10)
    np.testing.assert_allclose([mean, std], [ref_mean, ref_std], rtol=1e-12)
    # np.array_split's boundaries (three parts of 101 first) give another
    # score, so the test above would catch a return to them.
    parts = np.array_split(probs, 10)
    assert [len(p) for p in parts] != [b - a for a, b in
                                       inception_score.split_bounds(1003, 10)]
    other = [np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), 1)))
             for p in parts]
    assert abs(np.mean(other) - ref_mean) > 1e-5 * ref_mean
    assert abs(np.std(other) - ref_std) > 1e-3 * ref_std
    assert inception_score.split_bounds(1003, 10)[:3] == [(0, 100), (100, 200),
                                                          (200, 300)]
    assert inception_score.split_bounds(1003, 10)[-1] == (902, 1003)


def test_inception_score_refuses_fewer_samples_than_splits():
    probs = np.full((9, 10), 0.1)
    with pytest.raises(ValueError, match='9 samples cannot use 10 splits'):
        inception_score.inception_score(probs, splits=10)
    with pytest.raises(ValueError, match='splits >= 1'):
        inception_score.inception_score(probs, splits=0)
    mean, _ = inception_score.inception_score(probs, splits=9)  # one row each
    np.testing.assert_allclose(mean, 1.0)


def nuclear_norm_fid(x, y):
    """FID in closed form without any matrix square root: with centred X, Y,
    Σ₁Σ₂ = XᵀX YᵀY / c has the nonzero eigenvalues of (XYᵀ)(XYᵀ)ᵀ / c, so
    Tr (Σ₁Σ₂)^½ is the sum of singular values of XYᵀ / √c, c = (n₁-1)(n₂-1)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    trace_root = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt(
        (len(x) - 1) * (len(y) - 1))
    diff = x.mean(0) - y.mean(0)
    return (diff @ diff + np.trace(np.cov(x, rowvar=False))
            + np.trace(np.cov(y, rowvar=False)) - 2 * trace_root)


@pytest.mark.parametrize('n,d', [(200, 512), (50, 2048), (300, 300), (1000, 64)])
def test_fid_is_exact_at_any_scale_and_with_fewer_samples_than_dimensions(n, d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n + 7, d)) * 1.2 + 0.3
    unscaled = fid.fid_from_features(x, y)
    np.testing.assert_allclose(unscaled, nuclear_norm_fid(x, y), rtol=1e-10)
    # At n = 200, d = 512, features x 1000, sqrtm left an imaginary part of
    # 1.7 and the old absolute 1e-3 check raised.
    scaled = fid.fid_from_features(x * 1000, y * 1000)
    np.testing.assert_allclose(scaled, 1e6 * unscaled, rtol=1e-10)
    assert abs(fid.fid_from_features(x * 1000, x * 1000)) < 1e-9 * scaled


def test_fid_refuses_matrices_that_are_not_covariances():
    c = np.cov(A, rowvar=False)
    mu = A.mean(0)
    indefinite = c - 2 * np.eye(16) * np.linalg.eigvalsh(c)[-1]
    with pytest.raises(ValueError, match='positive semi-definite'):
        fid.frechet_distance(mu, c, mu, indefinite)
    with pytest.raises(ValueError, match='positive semi-definite'):
        fid.frechet_distance(mu, indefinite, mu, c)
    asymmetric = c + np.triu(np.ones((16, 16)), 1)
    with pytest.raises(ValueError, match='not symmetric'):
        fid.frechet_distance(mu, asymmetric, mu, c)


def test_streaming_statistics_refuse_too_few_rows():
    stats = fid.StreamingStats(16)
    with pytest.raises(ValueError, match='no features'):
        stats.mean()
    stats.update(A[:1])
    np.testing.assert_array_equal(stats.mean(), A[0])
    with pytest.raises(ValueError, match='at least 2 feature rows, got 1'):
        stats.cov()
    with pytest.raises(ValueError, match='at least 2 feature rows'):
        fid.fid_from_features(A[:1], B)


def test_kid_says_when_the_subsets_are_smaller_than_asked():
    x, y = A[:300], B[:300]
    with pytest.warns(UserWarning, match='every subset is the whole of both sets'):
        whole = fid.kernel_inception_distance(x, y, num_subsets=10, subset_size=1000)
    # The degenerate case the issue describes: all ten subsets are the same
    # set (in another order), hence kid_std = 0 up to summation rounding, and
    # the record now says subset_size = 300.
    assert whole['subset_size'] == 300 and whole['num_subsets'] == 10
    assert whole['kid_std'] < 1e-12 * abs(whole['kid'])
    with pytest.warns(UserWarning, match='using subsets of 300') as record:
        capped = fid.kernel_inception_distance(x, B, num_subsets=10,
                                               subset_size=1000)
    assert 'whole of both' not in str(record[0].message)
    assert capped['subset_size'] == 300 and capped['kid_std'] > 0
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warning when the size is available
        exact = fid.kernel_inception_distance(x, y, num_subsets=10, subset_size=300)
    assert exact == whole


def test_kid_refuses_subsets_of_one_row():
    with pytest.raises(ValueError, match='subset_size >= 2, got 1'):
        fid.kernel_inception_distance(A, B, subset_size=1)
    with pytest.raises(ValueError, match='at least 2 rows in each set, got 1'):
        fid.kernel_inception_distance(A[:1], B)
    with pytest.raises(ValueError, match='num_subsets >= 1'):
        fid.kernel_inception_distance(A, B, num_subsets=0)
