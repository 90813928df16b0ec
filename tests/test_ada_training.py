"""ADA inside the update step: p follows its rule from D's real logits, and
p, its accumulators and the lazy/path-length statistics survive a resume."""
import os
import time

import jax
import numpy as np
import pytest

from experiments.configs import digits_dcgan
from gan_jax import experiment, loop, train
import helpers
from helpers import ROOT, override


def ada_config(num_steps=4, **overrides):
    c = digits_dcgan.get_config('smoke')
    c.progress, c.evals, c.best_metric = False, {}, ''
    c.num_steps, c.checkpoint_every, c.sample_every, c.log_every = num_steps, 2, 0, 1
    c.augment.ada_target = 0.6
    c.augment.ada_interval = 2
    # One adjustment moves p by batch * interval / (kimg * 1000) = 0.1.
    c.augment.ada_kimg = c.batch_size * 2 / 100.0
    c.augment.ada_p = 0.5
    return override(c, **overrides)


def test_p_moves_by_its_step_every_interval_in_the_direction_of_the_signs():
    """D scripted to a constant logit (output kernel 0, bias +-50, lr 0): each
    window of 2 steps sees signs all +1 (r_t = 1 > 0.6, p up by 0.1) or all
    -1 (r_t = -1, p down by 0.1), so p follows 0.5, 0.6, 0.7, 0.6."""
    config = ada_config(**{'opt.d.lr': 0.0})
    info, _, _, spec, state = experiment.build(config)
    assert float(state.stats['ada_p']) == 0.5
    step = train.make_train_step(spec)
    rng = np.random.default_rng(0)
    out = state.d_params['Dense_0']

    def scripted(sign):
        d_params = dict(state.d_params, Dense_0=dict(
            kernel=np.zeros_like(out['kernel']),
            bias=np.full_like(out['bias'], 50.0 * sign)))
        return state.replace(d_params=d_params)

    p_values = []
    for window_sign in (+1, +1, -1):
        state = scripted(window_sign)
        for i in range(2):
            x = rng.uniform(-1, 1, (1, config.batch_size) + info.shape).astype(np.float32)
            before = jax.device_get(state.stats)
            state, metrics = step(state, {'x': x})
            after = jax.device_get(state.stats)
            if i == 0:  # accumulating: p unchanged, one batch of signs more
                assert after['ada_p'] == before['ada_p']
                assert after['ada_count'] == config.batch_size
                assert after['ada_sign_sum'] == window_sign * config.batch_size
            else:  # adjusted from r_t = window_sign, accumulators reset
                assert after['ada_count'] == 0 and after['ada_sign_sum'] == 0
                p_values.append(float(after['ada_p']))
            np.testing.assert_allclose(metrics['ada/p'], after['ada_p'])
    np.testing.assert_allclose(p_values, [0.6, 0.7, 0.6], atol=1e-6)


def test_ada_run_resumes_bit_identically_with_p_and_its_accumulators(tmp_path):
    overrides = {'ema.half_life_kimg': 0.1, 'ema.rampup': 0.05}
    straight = loop.run(ada_config(4, **overrides), str(tmp_path / 'straight'))
    workdir = str(tmp_path / 'resumed')
    # Stopped at step 3, between two p adjustments: the accumulators hold a
    # batch of signs, which the resumed run must continue from.
    first = ada_config(3, **overrides)
    first.checkpoint_every = 3
    loop.run(first, workdir)
    resumed = loop.run(ada_config(4, **overrides), workdir)
    assert int(resumed.step) == 4
    for key in ('ada_p', 'ada_sign_sum', 'ada_count'):
        assert straight.stats[key] == resumed.stats[key], key
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_digits_stylegan2_killed_mid_run_resumes_bit_identically(tmp_path):
    """kill -9 of experiments/train.py with digits_stylegan2 (shrunk), then a
    resume: the final state equals an uninterrupted run's leaf for leaf,
    ADA's p and accumulators, the path-length mean, the lazy penalties'
    last values and the step (the image counter) included."""
    args = ['--config', os.path.join(ROOT, 'experiments', 'configs',
                                     'digits_stylegan2.py') + ':smoke',
            '--config.num_steps=10', '--config.checkpoint_every=2',
            '--config.log_every=2', '--config.sample_every=0',
            '--config.evals=none', '--config.progress=False',
            '--config.reg.d_reg_interval=4', '--config.augment.ada_kimg=1',
            # p starts at 0.5, so that the augmentations act from step 0
            # (two adjustments of 0.032 keep it inside (0, 1)).
            '--config.augment.ada_p=0.5']
    reference, killed = str(tmp_path / 'reference'), str(tmp_path / 'killed')
    done = helpers.launch('train.py', *args, '--workdir', reference)
    assert done.returncode == 0, done.stderr
    process = helpers.start('train.py', *args, '--workdir', killed, capture=False)
    checkpoints = os.path.join(killed, 'checkpoints')
    deadline = time.monotonic() + 600
    # Killed once the checkpoint of step 4 or later exists: mid-run, maybe mid-save.
    while not (os.path.isdir(checkpoints) and any(
            s.isdigit() and int(s) >= 4 for s in os.listdir(checkpoints))):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.kill()
    process.wait()
    done = helpers.launch('train.py', *args, '--workdir', killed)
    assert done.returncode == 0, done.stderr
    _, _, _, _, want = experiment.load_run(reference)
    _, _, _, _, got = experiment.load_run(killed)
    assert int(got.step) == 10 and float(got.stats['ada_p']) > 0
    assert float(got.stats['pl_mean']) > 0
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
