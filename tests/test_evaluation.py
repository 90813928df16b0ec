"""Evaluation: the digit classifier, reference statistics, the feature-metric
evaluators, best-checkpoint keeping and experiments/evaluate.py."""
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from gan_jax import config as config_lib, data, experiment, loop, metrics
from gan_jax.metrics import classifier, evaluators, features, inception_score
from test_loop import tiny
import helpers


def digits_config(**overrides):
    config = config_lib.default_config()
    config.dataset = 'digits'
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.fixture(scope='module')
def digit_features():
    """The cached classifier (trained once per test session)."""
    return features.get_extractor('digits')


@pytest.mark.slow
def test_digit_classifier_accuracy_on_the_test_split(digit_features):
    images, labels = classifier.digits_split('test')
    assert len(images) == 1000
    assert classifier.accuracy(digit_features.variables, images, labels) >= 0.97


def test_digit_classifier_training_is_deterministic_given_the_seed():
    images, labels = classifier.digits_split('train')
    images, labels = images[:256], labels[:256]
    runs = [classifier.train(images, labels, seed=s, epochs=1) for s in (3, 3, 4)]
    same = jax.tree.leaves(jax.tree.map(np.array_equal, runs[0], runs[1]))
    assert all(same)
    differ = jax.tree.leaves(jax.tree.map(np.array_equal, runs[0], runs[2]))
    assert not all(differ)


@pytest.mark.slow
def test_classifier_reads_padded_digits_and_stacked_channels(digit_features):
    images, labels = classifier.digits_split('test')
    x = images[:64]
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    np.testing.assert_array_equal(digit_features.classify(padded),
                                  digit_features.classify(x))
    stacked = np.concatenate([x, x[::-1], x[::2].repeat(2, 0)], axis=-1)
    digits = digit_features.classify(stacked)
    assert digits.shape == (64, 3)
    np.testing.assert_array_equal(digits[:, 1], digit_features.classify(x)[::-1])
    modes = classifier.stacked_modes(digits)
    np.testing.assert_array_equal(modes, digits[:, 0] * 100 + digits[:, 1] * 10
                                  + digits[:, 2])


def test_stacked_mode_metrics_closed_form():
    one = evaluators.stacked_mode_metrics(np.zeros((50, 3), int))
    assert one['modes'] == 1 and one['kl'] == pytest.approx(np.log(1000))
    every = np.stack([np.arange(1000) // 100, np.arange(1000) // 10 % 10,
                      np.arange(1000) % 10], 1)
    uniform = evaluators.stacked_mode_metrics(np.concatenate([every, every]))
    assert uniform['modes'] == 1000 and uniform['kl'] == pytest.approx(0, abs=1e-12)


@pytest.mark.slow  # needs the trained digit classifier
def test_reference_statistics_are_cached_and_recomputed_when_corrupt(
        digit_features, monkeypatch):
    config = digits_config()
    first = features.reference_stats(config.data, 'digits', 'test', digit_features)
    assert int(first['count']) == 1000 and first['features'].shape == (1000, 128)
    images, _ = classifier.digits_split('test')
    direct = digit_features(images)['pool'].astype(np.float64)
    np.testing.assert_allclose(first['mean'], direct.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(first['cov'], np.cov(direct, rowvar=False), atol=1e-6)
    path = features.cache_path('digits', 'test', (28, 28, 1), 0, 'digits_lenet')
    assert os.path.exists(path)
    from gan_jax.data import images as images_lib

    def no_reading(*args, **kwargs):
        raise AssertionError('the cached statistics should have been used')
    with monkeypatch.context() as m:
        m.setattr(images_lib, 'load_split', no_reading)
        again = features.reference_stats(config.data, 'digits', 'test', digit_features)
    np.testing.assert_array_equal(again['cov'], first['cov'])
    with open(path, 'wb') as f:
        f.write(b'not an npz')
    rebuilt = features.reference_stats(config.data, 'digits', 'test', digit_features)
    np.testing.assert_array_equal(rebuilt['mean'], first['mean'])


@pytest.mark.slow
def test_feature_evaluators_separate_real_digits_from_noise(digit_features):
    config = digits_config()
    info = data.get_info(config)
    args = dict(features='digits', num_samples=1000, split='train')
    evals = metrics.from_config({'fid': args, 'kid': args, 'pr': args, 'is': args},
                                info, config)
    real, _ = classifier.digits_split('test')
    calls = []

    def real_fn(num, seed):
        calls.append(num)
        return real[:num]

    def noise_fn(num, seed):
        return np.random.default_rng(seed).uniform(-1, 1, (num, 28, 28, 1))

    scores = {}
    for name, fn in (('real', real_fn), ('noise', noise_fn)):
        scores[name] = {k: v for e in evals.values() for k, v in e.run(fn)}
    assert calls == [1000]  # one sampling shared by the four evaluators
    assert scores['real']['fid'] < 0.1 * scores['noise']['fid']
    assert scores['real']['kid'] < scores['noise']['kid']
    assert scores['real']['precision'] > 0.8 and scores['noise']['precision'] < 0.2
    assert scores['real']['is'] > 8 > scores['noise']['is']


def test_unknown_evaluator_and_bad_arguments_are_named():
    config = digits_config()
    info = data.get_info(config)
    with pytest.raises(ValueError, match='unknown evaluator .fidd.'):
        metrics.from_config({'fidd': {}}, info, config)
    with pytest.raises(ValueError, match='unknown features'):
        metrics.from_config({'fid': {'features': 'vgg'}}, info, config)
    with pytest.raises(ValueError, match='bad arguments for evaluator'):
        metrics.from_config({'fid': {'num_sample': 3}}, info, config)


class _MeanPoolFeatures:
    """A stand-in extractor (no classifier to train): 'pool' is 8 column means
    of each image, 'logits' 10 of them."""
    name = 'test_mean_pool'

    def __call__(self, images):
        rows = np.asarray(images, np.float64).reshape(len(images), 28, -1)
        means = rows.mean(-1) * 10
        return {'pool': means[:, :8], 'logits': means[:, 8:18]}


def test_feature_records_name_the_subset_size_and_splits_they_used(monkeypatch):
    extractor = _MeanPoolFeatures()
    real = np.random.default_rng(0).uniform(-1, 1, (400, 28, 28, 1))
    real_out = extractor(real)
    monkeypatch.setattr(features, 'get_extractor', lambda name: extractor)
    monkeypatch.setattr(features, 'reference_stats', lambda *a: {
        'mean': real_out['pool'].mean(0), 'cov': np.cov(real_out['pool'], rowvar=False),
        'features': real_out['pool'], 'logits': real_out['logits']})
    config = digits_config()
    evals = metrics.from_config(
        {'kid': dict(features='digits', num_samples=300, subset_size=1000),
         'is': dict(features='digits', num_samples=1003, splits=10)},
        data.get_info(config), config)

    def sample_fn(num, seed):
        return np.random.default_rng(seed + 1).uniform(-1, 1, (num, 28, 28, 1))

    record = {}
    with pytest.warns(UserWarning, match='using subsets of 300'):
        for name, evaluator in evals.items():
            for key, value in evaluator.run(sample_fn):
                record[f'eval/{name}/{key}'] = value
    # 300 samples cannot give subsets of 1,000: the record says what was used.
    assert record['eval/kid/subset_size'] == 300
    assert record['eval/kid/num_subsets'] == 100
    assert record['eval/is/splits'] == 10 and record['eval/is/num_samples'] == 1003
    logits = extractor(sample_fn(1003, 0))['logits']
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = inception_score.inception_score(probs, splits=10)
    np.testing.assert_allclose([record['eval/is/is'], record['eval/is/is_std']],
                               expected, rtol=1e-12)
    # Every value is a plain number: eval.jsonl writes it, TensorBoard plots it.
    assert all(type(v) in (int, float) for v in record.values())
    assert json.loads(json.dumps(record)) == record


def test_feature_evaluators_refuse_impossible_protocols_when_configured():
    config = digits_config()
    info = data.get_info(config)
    with pytest.raises(ValueError, match='splits = 10 for 5 samples'):
        metrics.from_config({'is': dict(features='digits', num_samples=5)}, info,
                            config)
    with pytest.raises(ValueError, match='subset_size >= 2'):
        metrics.from_config({'kid': dict(features='digits', subset_size=1)}, info,
                            config)


def test_best_checkpoint_follows_the_best_evaluation(tmp_path):
    workdir = str(tmp_path / 'run')
    config = tiny(num_steps=8, eval_every=2, best_metric='modes/reverse_kl')
    config.evals.modes.num_samples = 200
    loop.run(config, workdir)
    evals = [json.loads(line) for line in open(os.path.join(workdir, 'eval.jsonl'))]
    values = [(r['eval/modes/reverse_kl'], r['step']) for r in evals
              if np.isfinite(r['eval/modes/reverse_kl'])]
    best_value, best_step = min(values, key=lambda v: (v[0], v[1]))
    # Ties keep the earlier checkpoint.
    best_step = min(s for v, s in values if v == best_value)
    saved = json.load(open(os.path.join(workdir, 'best.json')))
    assert saved == {'metric': 'modes/reverse_kl', 'value': best_value,
                     'step': best_step}
    _, _, _, _, state = experiment.load_run(workdir, best=True)
    assert int(state.step) == best_step


def test_best_metric_must_name_a_configured_evaluator():
    with pytest.raises(config_lib.ConfigError, match='best_metric'):
        config_lib.validate(tiny(best_metric='fid/fid'))


def evaluate(*args):
    return helpers.launch('evaluate.py', *args)


@pytest.mark.slow
def test_evaluate_png_folder_equals_the_same_real_split(tmp_path, digit_features):
    real, _ = classifier.digits_split('test')
    uint8 = np.round((real[:300, ..., 0] + 1) * 127.5).astype(np.uint8)
    folder = tmp_path / 'pngs'
    folder.mkdir()
    for i, image in enumerate(uint8):
        Image.fromarray(image).save(folder / f'{i:04d}.png')
    # The folder holds the first 300 test digits, losslessly: the same scores
    # as those 300 digits scored directly.
    out = evaluate('--images', str(folder), '--dataset', 'digits')
    assert out.returncode == 0, out.stderr
    from_pngs = json.loads(out.stdout.strip().splitlines()[-1])
    assert from_pngs['n_fake'] == 300 and from_pngs['features'] == 'digits_lenet'
    config = digits_config()
    evals = metrics.from_config({'fid': dict(features='digits', num_samples=300)},
                                data.get_info(config), config)
    direct = dict(evals['fid'].run(lambda n, s: real[:n]))
    assert from_pngs['eval/fid/fid'] == pytest.approx(direct['fid'], rel=1e-9)
    assert {'eval/kid/kid', 'eval/pr/precision', 'eval/pr/recall'} <= set(from_pngs)


@pytest.mark.slow
def test_evaluate_a_workdir_appends_to_eval_jsonl(tmp_path, digit_features):
    from experiments.configs import digits_dcgan
    config = digits_dcgan.get_config('smoke')
    config.progress = False
    workdir = str(tmp_path / 'run')
    loop.run(config, workdir)
    out = evaluate('--workdir', workdir, '--num_samples', '200', '--metrics', 'fid,pr')
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record['step'] == config.num_steps and record['n_fake'] == 200
    assert record['n_real'] == 4000 and record['reference_split'] == 'train'
    assert np.isfinite(record['eval/fid/fid']) and 0 <= record['eval/pr/recall'] <= 1
    lines = open(os.path.join(workdir, 'eval.jsonl')).read().splitlines()
    assert json.loads(lines[-1]) == record


def test_evaluate_without_inception_weights_says_how_to_get_them(tmp_path):
    out = evaluate('--real_split', 'test', '--dataset', 'digits',
                   '--features', 'inception')
    env_missing = 'GAN_JAX_INCEPTION' not in os.environ
    if env_missing and os.path.exists(
            os.path.join(classifier.cache_dir(), 'inception_fid.npz')):
        pytest.skip('converted Inception weights are present in the test cache')
    assert out.returncode == 2
    assert 'convert_inception_weights.py' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_statistics_of_parts_merge_into_those_of_the_whole():
    from gan_jax.metrics.fid import StreamingStats
    rng = np.random.default_rng(0)
    # Parts far from each other and from 0: the re-centring onto one shift
    # must carry the offsets.
    parts = [rng.normal(loc, 1.0, (n, 6)) for loc, n in ((50.0, 7), (-3.0, 1),
                                                         (0.5, 12))]
    whole = np.concatenate(parts)
    merged = StreamingStats(6)
    merged.merge(StreamingStats(6))  # an empty part changes nothing
    for part in parts:
        stats = StreamingStats(6)
        stats.update(part)
        merged.merge(StreamingStats.from_arrays(stats.to_arrays()))
    assert merged.count == len(whole)
    np.testing.assert_allclose(merged.mean(), whole.mean(0), rtol=1e-13)
    np.testing.assert_allclose(merged.cov(), np.cov(whole, rowvar=False),
                               rtol=1e-11, atol=1e-11)
    empty = StreamingStats.from_arrays(StreamingStats(6).to_arrays())
    assert empty.count == 0
    with pytest.raises(ValueError, match='dimension 5 into 6'):
        merged.merge(StreamingStats(5))


def test_process_shares_tile_the_rows_once():
    from gan_jax import parallel
    for num in (0, 1, 7, 10, 50_000):
        for count in (1, 2, 3, 8):
            shares = [parallel.process_share(num, i, count) for i in range(count)]
            assert [r for lo, hi in shares for r in range(lo, hi)] == list(range(num))
            sizes = [hi - lo for lo, hi in shares]
            assert max(sizes) - min(sizes) <= 1
    assert parallel.process_share(10) == (0, 10)  # this one process


def test_gathers_on_one_process_are_the_identity():
    from gan_jax import parallel
    x = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    assert parallel.allgather(x).shape == (1, 4, 3)
    np.testing.assert_array_equal(parallel.allgather(x)[0], x)
    assert parallel.allgather_rows(x) is x
    assert features.split_rows(10) == (0, 10)


def test_sample_rows_generates_only_the_share_when_it_can():
    calls = []

    def with_rows(num, seed, rows=None):
        calls.append(rows)
        z = np.random.default_rng(seed).normal(size=(num, 2))
        return z if rows is None else z[rows[0]:rows[1]]

    def plain(num, seed):
        return with_rows(num, seed)

    whole = with_rows(10, 3)
    np.testing.assert_array_equal(features.sample_rows(with_rows, 10, 3, (4, 7)),
                                  whole[4:7])
    np.testing.assert_array_equal(features.sample_rows(plain, 10, 3, (4, 7)),
                                  whole[4:7])
    np.testing.assert_array_equal(features.sample_rows(with_rows, 10, 3, (0, 10)),
                                  whole)
    assert calls == [None, (4, 7), None, None]


def test_fid_on_one_process_is_the_statistics_of_all_samples(monkeypatch):
    from gan_jax.metrics.fid import StreamingStats, frechet_distance
    extractor = _MeanPoolFeatures()
    real = extractor(np.random.default_rng(0).uniform(-1, 1, (50, 28, 28, 1)))['pool']
    reference = {'mean': real.mean(0), 'cov': np.cov(real, rowvar=False)}
    monkeypatch.setattr(features, 'get_extractor', lambda name: extractor)
    monkeypatch.setattr(features, 'reference_stats', lambda *a: reference)
    config = digits_config()
    evals = metrics.from_config({'fid': dict(features='digits', num_samples=40)},
                                data.get_info(config), config)

    def sample_fn(num, seed):
        return np.random.default_rng(seed + 1).uniform(-1, 1, (num, 28, 28, 1))

    fid = dict(evals['fid'].run(sample_fn))['fid']
    fake = StreamingStats(8)
    fake.update(extractor(sample_fn(40, 0))['pool'])
    assert fid == frechet_distance(fake.mean(), fake.cov(), reference['mean'],
                                   reference['cov'])
    feature_set = features.sample_features(sample_fn, extractor, 40, 0)
    assert feature_set.rows == (0, 40) and not feature_set.split
    assert feature_set['pool'] is feature_set.local['pool']
