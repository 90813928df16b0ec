"""Fault tolerance: SIGTERM, kill -9 at random moments (also during saves),
and the exact messages for bad config values."""
import json
import os
import random
import signal
import time

import numpy as np
import pytest

from experiments.configs import toy_ring
from gan_jax import config as config_lib, experiment, loop
import helpers
from helpers import ROOT, override

CONFIG = os.path.join(ROOT, 'experiments', 'configs', 'toy_ring.py')
TINY = ['--config.model.g.hidden=(16,)', '--config.model.d.hidden=(16,)',
        '--config.batch_size=16', '--config.progress=False', '--config.eval_every=0',
        '--config.sample_every=0', '--config.evals.modes.num_samples=100']


def start(workdir, *flags):
    """toy_ring, shrunk by TINY, training in a child process (text pipes)."""
    return helpers.start('train.py', '--config', CONFIG, '--workdir', workdir,
                         *TINY, *flags)


def wait_for_first_log(process, workdir):
    """Waits (at most 2 minutes) until the run has logged once; returns the
    path of its metrics.jsonl."""
    metrics = os.path.join(workdir, 'metrics.jsonl')
    deadline = time.monotonic() + 120
    while not (os.path.exists(metrics) and os.path.getsize(metrics)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    return metrics


def final_params(workdir):
    _, _, _, _, state = experiment.load_run(workdir)
    return state


def leaves(state):
    import jax
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_sigterm_saves_a_checkpoint_at_the_current_step_and_exits(tmp_path):
    workdir = str(tmp_path / 'run')
    process = start(workdir, '--config.num_steps=1000000', '--config.log_every=50',
                    '--config.checkpoint_every=0')
    metrics = wait_for_first_log(process, workdir)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert process.returncode == 0, stderr
    assert 'SIGTERM received' in stderr and 'checkpoint saved' in stderr
    steps = [int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
             if s.isdigit()]
    assert len(steps) == 1 and steps[0] >= 50
    assert int(final_params(workdir).step) == steps[0]
    logged = [json.loads(line)['step'] for line in open(metrics)]
    assert logged[-1] <= steps[0]


def test_sigterm_stops_a_sweep_with_a_checkpoint_and_it_resumes(tmp_path):
    workdir = str(tmp_path / 'sweep')
    args = ['--config', CONFIG, '--workdir', workdir, '--seeds', '2', *TINY,
            '--config.log_every=20', '--config.checkpoint_every=0']
    process = helpers.start('sweep.py', *args, '--config.num_steps=1000000')
    wait_for_first_log(process, workdir)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert 'SIGTERM received' in stderr and 'checkpoint saved' in stderr
    steps = [int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
             if s.isdigit()]
    assert len(steps) == 1 and steps[0] >= 20
    # Resumed with the same options, both members continue from that step.
    target = steps[0] + 3
    done = helpers.launch('sweep.py', *args, f'--config.num_steps={target}',
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f'resumed from step {steps[0]}' in done.stderr
    _, _, _, _, member = experiment.load_member(workdir, 1)
    assert int(member.step) == target


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    # 150 steps with a save every 3: saves take most of the training time, so
    # random moments inside training land in saves as often as not.
    flags = ['--config.num_steps=150', '--config.checkpoint_every=3',
             '--config.log_every=3', '--config.keep_checkpoints=2']
    reference = str(tmp_path / 'reference')
    done = start(reference, *flags)
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    workdir = str(tmp_path / 'killed')
    metrics = os.path.join(workdir, 'metrics.jsonl')

    def stamp():
        return os.stat(metrics).st_mtime_ns if os.path.exists(metrics) else None

    rng = random.Random(0)
    kills = 0
    # 8 interruptions (each a fresh process: most of the test's time); with
    # saves filling about half of the training time, the chance that none
    # lands inside a save is about 1/256.
    for _ in range(8):
        before = stamp()
        process = start(workdir, *flags)
        # Wait until this attempt is training (it logs every 3 steps, right
        # before saving), then kill it at a random moment within ~2 saves.
        deadline = time.monotonic() + 120
        while stamp() == before and process.poll() is None:
            assert time.monotonic() < deadline, 'the run never started training'
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.9))
        if process.poll() is None:
            process.kill()
            kills += 1
        process.communicate()
    assert kills == 8
    finish = start(workdir, *flags)
    _, stderr = finish.communicate(timeout=300)
    assert finish.returncode == 0, stderr
    for a, b in zip(leaves(final_params(reference)), leaves(final_params(workdir))):
        np.testing.assert_array_equal(a, b)
    logged = [json.loads(line)['step'] for line in open(metrics)]
    assert logged == list(range(3, 151, 3))  # nothing lost, nothing repeated


def config_with(**values):
    return override(toy_ring.get_config(), **values)


@pytest.mark.parametrize('values,message', [
    ({'n_critic': 0}, 'n_critic must be >= 1, got 0'),
    ({'opt.d.lr': 0.0}, 'opt.d.lr must be > 0, got 0.0'),
    ({'opt.g.b2': 1.0}, 'opt.g.b1 and b2 must lie in [0, 1), got 0.8, 1.0'),
    ({'ema.decay': 1.5}, 'ema.decay must lie in [0, 1), got 1.5'),
    ({'dataset': 'imagenet'}, "unknown dataset 'imagenet'; valid datasets: celeb_a, "
                              'cifar10, digits, folder, grid, mnist, ring, '
                              'stacked_mnist, swissroll, synthetic'),
    ({'nan_policy': 'ignore'}, "unknown nan_policy 'ignore'; valid: stop, skip"),
    ({'opt.g.schedule': 'cosine'}, "unknown opt.g.schedule 'cosine'; valid: constant, "
                                   'linear'),
    ({'reg.gp_weight': -1.0}, 'reg.gp_weight must be >= 0, got -1.0'),
    ({'model.d.pack': 3}, 'batch_size 100 must be divisible by model.d.pack 3'),
    ({'augment.policy': 'flip'}, "unknown augmentation 'flip'; valid: color, "
                                 'translation, cutout'),
])
def test_bad_values_are_named_with_the_fix(values, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.validate(config_with(**values))
    assert str(error.value) == message


def test_batch_must_split_over_devices():
    with pytest.raises(config_lib.ConfigError,
                       match='batch_size 100 must be divisible by the device count 8'):
        config_lib.validate(config_with(), device_count=8)


def test_unwritable_workdir_is_reported(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    with pytest.raises(loop.WorkdirError, match='is not writable'):
        loop.run(toy_ring.get_config('smoke'), str(blocker / 'run'))


def test_a_failing_save_is_reported_with_the_step_and_the_fix(tmp_path, monkeypatch):
    import orbax.checkpoint as ocp
    original = ocp.CheckpointManager.save

    def disk_full(self, step, *args, **kwargs):
        if step >= 6:
            raise OSError(28, 'No space left on device')
        return original(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, 'save', disk_full)
    config = toy_ring.get_config('smoke')
    config.progress = False
    from gan_jax import checkpoint
    with pytest.raises(checkpoint.CheckpointError) as error:
        loop.run(config, str(tmp_path / 'run'))
    message = str(error.value)
    assert 'could not write the checkpoint of step 6' in message
    assert 'No space left on device' in message
    assert 'newest checkpoint on disk is step 3' in message
