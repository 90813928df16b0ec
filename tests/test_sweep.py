"""Sweeps: members equal single runs, hyperparameters per member, chunking,
resume, the summary and the launcher."""
import json
import os

import jax
import numpy as np
import pytest

from gan_jax import config as config_lib, experiment, loop, sweep as sweep_lib
from test_loop import tiny
import helpers
from helpers import ROOT


def run_sweep(config, sweep, workdir, **kwargs):
    return loop.run(config, workdir, sweep=sweep, **kwargs)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def plain(num_steps=6, **kw):
    """The tiny MLP GAN (with batch norm in G)."""
    return tiny(num_steps=num_steps, **kw)


def assert_member_equals(stacked, i, single, rtol):
    """Every leaf of member i within rtol of the single run, relative to the
    leaf's largest magnitude."""
    for a, b in zip(leaves(sweep_lib.member_of(stacked, i)), leaves(single)):
        scale = max(float(np.max(np.abs(b))), 1e-30) if b.size else 1.0
        assert np.max(np.abs(a.astype(np.float64) - b), initial=0) <= rtol * scale


def test_members_equal_single_runs_with_their_seeds(tmp_path):
    config = plain(num_steps=6)
    sweep = sweep_lib.Sweep.build(seeds=3)
    stacked = run_sweep(config, sweep, str(tmp_path / 'sweep'))
    for i in range(3):
        single = loop.run(plain(num_steps=6, seed=config.seed + i),
                          str(tmp_path / f'single{i}'))
        # Not bit-identical: XLA:CPU rounds a batched (vmapped) matmul
        # differently from K single ones (measured: ~3e-7 relative).
        assert_member_equals(stacked, i, single, rtol=1e-5)
    records = [json.loads(x) for x in open(tmp_path / 'sweep' / 'metrics.jsonl')]
    assert sorted({r['member'] for r in records}) == [0, 1, 2]
    evals = [json.loads(x) for x in open(tmp_path / 'sweep' / 'eval.jsonl')]
    assert [(r['member'], r['seed']) for r in evals] == [
        (i, config.seed + i) for i in range(3)]
    summary = json.load(open(tmp_path / 'sweep' / 'summary.json'))
    modes = [r['eval/modes/modes'] for r in evals]
    row = summary['rows'][0]
    assert row['members'] == 3
    assert row['eval/modes/modes']['mean'] == pytest.approx(np.mean(modes))
    assert row['eval/modes/modes']['sem'] == pytest.approx(
        np.std(modes, ddof=1) / np.sqrt(3))


def test_swept_learning_rates_and_chunks_match_single_runs(tmp_path):
    config = plain(num_steps=4)
    config.reg.gp_weight = 1.0
    values = {'opt.d.lr': [1e-4, 3e-3], 'opt.g.lr': [2e-3, 5e-4],
              'reg.gp_weight': [0.5, 10.0]}
    sweep = sweep_lib.Sweep.build(values=values, chunk_size=1)
    assert sweep.chunks() == [(0, 1), (1, 2)]
    stacked = run_sweep(config, sweep, str(tmp_path / 'sweep'))
    for i in range(2):
        member = sweep_lib.member_config(config, sweep, i)
        assert member.opt.d.lr == values['opt.d.lr'][i] and member.seed == config.seed + i
        single = loop.run(member, str(tmp_path / f'single{i}'))
        # The learning rate enters as a ratio times the base update: equal up
        # to float32 rounding.
        assert_member_equals(stacked, i, single, rtol=2e-5)


@pytest.mark.parametrize('members', ['vmap', 'unroll'])
def test_sweep_with_several_steps_per_call_equals_one_step_per_call(tmp_path, members):
    events = dict(log_every=3, checkpoint_every=6, sample_every=0)
    sweep = sweep_lib.Sweep.build(seeds=2)
    one = run_sweep(plain(num_steps=6, **events), sweep, str(tmp_path / 'one'))
    three = run_sweep(plain(num_steps=6, steps_per_call=3, **events), sweep,
                          str(tmp_path / 'three'), members=members)
    for i in range(2):
        assert_member_equals(three, i, sweep_lib.member_of(one, i), rtol=1e-5)


def test_unrolled_members_equal_single_runs_and_auto_picks_by_convolution(tmp_path):
    config = plain(num_steps=4, log_every=2, checkpoint_every=4, sample_every=0)
    sweep = sweep_lib.Sweep.build(seeds=2)
    stacked = run_sweep(config, sweep, str(tmp_path / 'sweep'), members='unroll')
    for i in range(2):
        single = loop.run(plain(num_steps=4, log_every=2, checkpoint_every=4,
                                sample_every=0, seed=config.seed + i),
                          str(tmp_path / f'single{i}'))
        assert_member_equals(stacked, i, single, rtol=1e-6)
    with pytest.raises(config_lib.ConfigError, match='members must be one of'):
        run_sweep(config, sweep, str(tmp_path / 'bad'), members='pmap')
    # 'auto': unrolled on CPU for a convolutional update, vmapped for a dense one.
    from experiments.configs import digits_dcgan
    for cfg, expected in ((digits_dcgan.get_config('smoke'), 'unroll'), (config, 'vmap')):
        info, _, _, spec, state = experiment.build(cfg)
        batch = {'x': jax.ShapeDtypeStruct((cfg.n_critic, cfg.batch_size, *info.shape),
                                           np.float32)}
        assert sweep_lib.choose_member_mode(spec, state, batch) == expected


def test_unrolled_members_with_chunks_and_shared_data_equal_vmapped(tmp_path):
    config = plain(num_steps=4, log_every=2, checkpoint_every=4, sample_every=0)
    sweep = sweep_lib.Sweep.build(seeds=3, shared_data=True, chunk_size=2)
    assert sweep.chunks() == [(0, 2), (2, 3)]
    vmapped = run_sweep(config, sweep, str(tmp_path / 'vmap'), members='vmap')
    unrolled = run_sweep(config, sweep, str(tmp_path / 'unroll'), members='unroll')
    for i in range(3):
        assert_member_equals(unrolled, i, sweep_lib.member_of(vmapped, i), rtol=1e-5)
    records = [json.loads(x) for x in open(tmp_path / 'unroll' / 'metrics.jsonl')]
    assert sorted({(r['step'], r['member']) for r in records}) == [
        (s, m) for s in (2, 4) for m in range(3)]


def test_repeats_expand_values_and_bad_sweeps_are_named():
    sweep = sweep_lib.Sweep.build(values={'opt.d.lr': [1e-4, 2e-4]}, repeats=3)
    assert sweep.num_members == 6
    assert dict(sweep.values)['opt.d.lr'] == (1e-4,) * 3 + (2e-4,) * 3
    with pytest.raises(ValueError, match='cannot sweep .n_critic.'):
        sweep_lib.Sweep.build(values={'n_critic': [1, 2]})
    with pytest.raises(ValueError, match='differ in length'):
        sweep_lib.Sweep.build(values={'opt.d.lr': [1e-4], 'opt.g.lr': [1e-4, 2e-4]})
    with pytest.raises(ValueError, match='4 seeds but 6 members'):
        sweep_lib.Sweep.build(seeds=4, values={'opt.d.lr': [1e-4, 2e-4]}, repeats=3)
    with pytest.raises(ValueError, match='member 6 out of range'):
        sweep_lib.member_config(tiny(), sweep, 6)


def test_resumed_sweep_equals_an_uninterrupted_one(tmp_path):
    sweep = sweep_lib.Sweep.build(seeds=2)
    straight = run_sweep(tiny(num_steps=8), sweep, str(tmp_path / 'straight'))
    workdir = str(tmp_path / 'resumed')
    run_sweep(tiny(num_steps=4), sweep, workdir)
    resumed = run_sweep(tiny(num_steps=8), sweep, workdir)
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(config_lib.ConfigError, match='different sweep'):
        run_sweep(tiny(num_steps=8), sweep_lib.Sweep.build(seeds=3), workdir)


def test_shared_data_members_differ_only_by_seed(tmp_path):
    sweep = sweep_lib.Sweep.build(seeds=2, shared_data=True)
    stacked = run_sweep(plain(num_steps=3), sweep, str(tmp_path / 'sweep'))
    # Member 0 has the base seed and the base data: it is the single run.
    single = loop.run(plain(num_steps=3), str(tmp_path / 'single'))
    assert_member_equals(stacked, 0, single, rtol=1e-5)
    other = sweep_lib.member_of(stacked, 1)
    assert not np.allclose(leaves(other.g_params)[0], leaves(single.g_params)[0])


@pytest.mark.slow
def test_sweep_and_sample_launchers(tmp_path):
    workdir = str(tmp_path / 'sweep')
    config = os.path.join(ROOT, 'experiments/configs/toy_ring.py') + ':smoke'

    def launch(script, *args):
        return helpers.launch(script, *args, timeout=300)
    out = launch('sweep.py', '--config', config, '--workdir', workdir,
                 '--sweep.opt.d.lr=1e-4,2e-4', '--repeats=2', '--config.progress=False')
    assert out.returncode == 0, out.stderr
    assert 'members' in out.stdout and '±' in out.stdout
    out = launch('sample.py', '--workdir', workdir, '--member', '3', '--num', '10',
                 '--out', str(tmp_path / 's.npz'))
    assert out.returncode == 0, out.stderr
    samples = np.load(tmp_path / 's.npz')['samples']
    config_3, _, G, _, state = experiment.load_member(workdir, 3)
    assert config_3.seed == 3 and config_3.opt.d.lr == 2e-4
    from gan_jax import sampling
    expected = sampling.sample(G, state.ema_params, state.g_state,
                               sampling.latents(0, 10, config_3.model.z_dim))
    np.testing.assert_array_equal(samples, expected)
    bad = launch('sweep.py', '--config', config, '--workdir', str(tmp_path / 'bad'),
                 '--sweep.n_critic=1,2')
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_sweep_writes_sample_grids_and_tensorboard_per_member(tmp_path):
    workdir = tmp_path / 'sweep'
    run_sweep(plain(num_steps=6, sample_every=3, log_every=3),
              sweep_lib.Sweep.build(seeds=2), str(workdir))
    for i in range(2):
        grids = sorted(os.listdir(workdir / 'samples' / f'member_{i}'))
        assert grids == ['step_0000003.png', 'step_0000006.png']
        events = os.listdir(workdir / 'tensorboard' / f'member_{i}')
        assert len(events) == 1
        import tensorflow as tf
        tags = {(value.tag, event.step)
                for event in tf.compat.v1.train.summary_iterator(
                    str(workdir / 'tensorboard' / f'member_{i}' / events[0]))
                for value in event.summary.value}
        assert {('loss/d', 3), ('loss/d', 6)} <= tags
        assert any(tag.startswith('eval/') for tag, _ in tags)
