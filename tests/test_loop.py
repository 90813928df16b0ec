"""End to end: the training loop, resume, the launchers and their errors."""
import hashlib
import json
import os

import jax
import numpy as np
import pytest

from experiments.configs import toy_ring
from gan_jax import config as config_lib, data, experiment, loop, runners
import helpers
from helpers import ROOT


def tiny(num_steps=6, **kw):
    config = toy_ring.get_config('smoke')
    config.model.g.hidden = (32, 32)
    config.model.d.hidden = (32,)
    config.batch_size = 20
    config.num_steps = num_steps
    config.progress = False
    for k, v in kw.items():
        config[k] = v
    return config


def leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_run_writes_the_workdir_contract(tmp_path):
    workdir = str(tmp_path / 'run')
    loop.run(tiny(), workdir)
    names = set(os.listdir(workdir))
    assert {'config.json', 'metrics.jsonl', 'eval.jsonl', 'samples', 'checkpoints',
            'tensorboard'} <= names
    records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [r['step'] for r in records] == [2, 4, 6]
    assert all(np.isfinite(r['loss/d']) and np.isfinite(r['loss/g']) for r in records)
    evals = [json.loads(line) for line in open(os.path.join(workdir, 'eval.jsonl'))]
    assert evals[-1]['step'] == 6 and 0 <= evals[-1]['eval/modes/modes'] <= 8
    assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == [
        'step_0000003.png', 'step_0000006.png']
    assert os.listdir(os.path.join(workdir, 'tensorboard'))
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']
    saved = json.load(open(os.path.join(workdir, 'config.json')))
    assert saved['dataset'] == 'ring' and saved['num_steps'] == 6


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight = loop.run(tiny(num_steps=8), str(tmp_path / 'straight'))
    workdir = str(tmp_path / 'resumed')
    first = loop.run(tiny(num_steps=4), workdir)
    assert int(first.step) == 4
    resumed = loop.run(tiny(num_steps=8), workdir)
    assert int(resumed.step) == 8
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [r['step'] for r in records] == [2, 4, 6, 8]


def test_steps_per_call_blocks_end_at_every_event():
    config = tiny(num_steps=20, steps_per_call=4, log_every=6, checkpoint_every=10,
                  sample_every=0, eval_every=0)
    ends, step = [], 0
    while step < config.num_steps:
        step += runners.steps_in_next_call(config, step)
        ends.append(step)
    # Blocks of 4 unless a log (6, 12, 18), checkpoint (10, 20) or the end
    # falls inside one; every event step is the end of a call.
    assert ends == [4, 5, 6, 10, 11, 12, 16, 17, 18, 19, 20]
    assert runners.steps_in_next_call(tiny(num_steps=20), 0) == 1
    # A run refuses such intervals: most of its steps would go one per call.
    with pytest.raises(config_lib.ConfigError, match='log_every = 6 must be a multiple'):
        config_lib.validate(config)


def test_steps_per_call_trains_like_single_steps(tmp_path):
    events = dict(log_every=4, checkpoint_every=4, sample_every=0, eval_every=0)
    single = loop.run(tiny(num_steps=8, **events), str(tmp_path / 'single'))
    workdir = tmp_path / 'scanned'
    # Calls of 2 steps end at 2, 4, 6 and 8: every step runs inside a scan.
    scanned = loop.run(tiny(num_steps=8, steps_per_call=2, **events), str(workdir))
    for a, b in zip(leaves(scanned), leaves(single)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    records = [json.loads(line) for line in open(workdir / 'metrics.jsonl')]
    assert [r['step'] for r in records] == [4, 8]
    assert sorted(os.listdir(workdir / 'checkpoints')) == ['4', '8']


def test_nonfinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch):
    make_iter = data.make_train_iter

    def poisoned(config, *, start_step=0, sharding=None):
        for step, batch in enumerate(make_iter(config, start_step=start_step,
                                               sharding=sharding), start_step + 1):
            if step == 5:
                batch = {'x': batch['x'] * np.nan}
            yield batch

    monkeypatch.setattr(data, 'make_train_iter', poisoned)
    workdir = str(tmp_path / 'run')
    with pytest.raises(loop.NonFiniteError,
                       match=r'non-finite loss/d, loss/g, grad_norm/d, grad_norm/g at '
                             r'step 5; .*last good checkpoint \(step 3\) is kept'):
        loop.run(tiny(num_steps=8, checkpoint_every=3, log_every=3), workdir)
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3']
    # With nan_policy=skip the same run finishes and counts the skipped step.
    state = loop.run(tiny(num_steps=8, nan_policy='skip'), str(tmp_path / 'skip'))
    assert int(state.stats['nonfinite_steps']) == 1
    assert all(np.isfinite(x).all() for x in leaves(state.g_params))


def launch(script, *args):
    return helpers.launch(script, *args, timeout=300)


def digest(directory):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(path.encode())
            h.update(open(path, 'rb').read())
    return h.hexdigest()


@pytest.mark.slow
def test_cli_bad_input_fails_with_one_line_and_touches_nothing(tmp_path):
    workdir = str(tmp_path / 'run')
    config = os.path.join(ROOT, 'experiments/configs/toy_ring.py') + ':smoke'
    base = ['--config', config, '--workdir', workdir, '--config.progress=False',
            '--config.model.g.hidden=(16,)', '--config.model.d.hidden=(16,)']
    ok = launch('train.py', *base)
    assert ok.returncode == 0, ok.stderr
    before = digest(workdir)
    cases = {
        '--config.learning_rate=0.1': "unknown config key 'learning_rate'",
        '--config.loss.name=bce': "unknown loss 'bce'; valid losses: hinge, least_squares,"
                                  " minimax, non_saturating, wasserstein",
        '--config.model.name=stylegan9': "unknown model 'stylegan9'; valid models: dcgan, mlp, resnet",
        '--config.batch_size=0': 'batch_size must be positive, got 0',
        '--config.batch_size=-4': 'batch_size must be positive, got -4',
        '--config.model.z_dim=3': 'holds a run whose config differs in model.z_dim',
    }
    for flag, message in cases.items():
        result = launch('train.py', *base, flag)
        assert result.returncode == 2, (flag, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
        assert message in lines[0], (flag, lines[0])
        assert digest(workdir) == before, flag


@pytest.mark.slow
def test_sample_is_a_function_of_checkpoint_and_seed(tmp_path):
    workdir = str(tmp_path / 'run')
    loop.run(tiny(), workdir)
    outs = {}
    for name, args in {'a': ['--seed', '1'], 'b': ['--seed', '1'], 'c': ['--seed', '2'],
                       'raw': ['--seed', '1', '--raw']}.items():
        out = str(tmp_path / f'{name}.npz')
        result = launch('sample.py', '--workdir', workdir, '--num', '50', '--out', out,
                        *args)
        assert result.returncode == 0, result.stderr
        outs[name] = np.load(out)['samples']
    assert outs['a'].shape == (50, 2) and outs['a'].dtype == np.float32
    np.testing.assert_array_equal(outs['a'], outs['b'])
    assert not np.array_equal(outs['a'], outs['c'])
    assert not np.array_equal(outs['a'], outs['raw'])
    # The default is the EMA generator of the latest checkpoint.
    config, _, G, _, state = experiment.load_run(workdir)
    from gan_jax import sampling
    z = sampling.latents(1, 50, config.model.z_dim)
    np.testing.assert_array_equal(outs['a'], sampling.sample(G, state.ema_params,
                                                             state.g_state, z))
    missing = launch('sample.py', '--workdir', str(tmp_path / 'nope'), '--out', 'x.npz')
    assert missing.returncode == 2 and 'config.json not found' in missing.stderr


def test_unreadable_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    workdir = str(tmp_path / 'run')
    loop.run(tiny(), workdir)
    latest = os.path.join(workdir, 'checkpoints', '6')
    for root, _, files in os.walk(latest):  # truncate every file of step 6
        for name in files:
            open(os.path.join(root, name), 'wb').close()
    config, _, _, _, state = experiment.load_run(workdir)
    assert int(state.step) == 3
