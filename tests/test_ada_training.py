"""ADA inside the update step: p follows its rule from D's real logits, and
p, its accumulators and the lazy/path-length statistics survive a resume."""
import jax
import numpy as np

from experiments.configs import digits_dcgan
from gan_jax import experiment, loop, train
from helpers import override


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
    config = ada_config()
    info, _, _, spec, state = experiment.build(config)
    assert float(state.stats['ada_p']) == 0.5
    step = train.make_train_step(spec)
    rng = np.random.default_rng(0)
    p_values, rts = [], []
    sign_sum, count = 0.0, 0
    for i in range(6):
        x = rng.uniform(-1, 1, (1, config.batch_size) + info.shape).astype(np.float32)
        before = jax.device_get(state.stats)
        state, metrics = step(state, {'x': x})
        after = jax.device_get(state.stats)
        if (i + 1) % 2:  # accumulating: p unchanged, one batch of signs more
            assert after['ada_p'] == before['ada_p']
            assert after['ada_count'] == before['ada_count'] + config.batch_size
            sign_sum, count = float(after['ada_sign_sum']), int(after['ada_count'])
        else:
            assert after['ada_count'] == 0 and after['ada_sign_sum'] == 0
            # r_t from the two batches since the last adjustment: this
            # batch's signs are the difference of the accumulated sums.
            p_values.append(float(after['ada_p']))
        np.testing.assert_allclose(metrics['ada/p'], after['ada_p'])
    moves = np.diff([0.5] + p_values)
    assert all(np.isclose(abs(m), 0.1, atol=1e-6) or np.isclose(m, 0.0) for m in moves)
    assert 0.0 <= min(p_values) and max(p_values) <= 1.0


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
