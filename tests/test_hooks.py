"""The loop's periodic actions, each alone against a stand-in runner."""
import json
import os
import signal
import types

import ml_collections
import numpy as np
import pytest

from gan_jax import hooks, sweep as sweep_lib, workdir as workdir_lib


class FakeRunner:
    """What hooks read of a runner: metrics, members, state, NaN status."""

    def __init__(self, records, problem=None):
        self.records, self.problem = records, problem
        self.sample_mesh = None

    def metric_records(self):
        return [dict(r) for r in self.records]

    def nonfinite(self):
        return self.problem

    def saved_state(self):
        return 'STATE'


class FakeCheckpointer:
    def __init__(self):
        self.saved = []

    def save(self, state):
        self.saved.append(state)

    def wait(self):
        pass

    def latest_step(self):
        return 40


def lines(path):
    return [json.loads(x) for x in open(path)]


def test_periodic_is_due_at_multiples_and_at_the_end():
    every_4 = hooks.Periodic(4, 10)
    assert [s for s in range(1, 11) if every_4.due(s)] == [4, 8, 10]
    only_end = hooks.Periodic(0, 10)
    assert [s for s in range(1, 11) if only_end.due(s)] == [10]


def test_log_metrics_writes_one_line_per_member_and_then_guards(tmp_path):
    wd = workdir_lib.Workdir(str(tmp_path), is_main=True)
    guard = hooks.NonFiniteGuard('stop', FakeCheckpointer())
    log = hooks.LogMetrics(wd, 2, 6, guard, start_step=0)
    runner = FakeRunner([{'member': 0, 'loss/d': 1.0}, {'member': 1, 'loss/d': 2.0}])
    for step in range(1, 5):
        log(step, runner)
    records = lines(tmp_path / 'metrics.jsonl')
    assert [(r['step'], r['member'], r['loss/d']) for r in records] == [
        (2, 0, 1.0), (2, 1, 2.0), (4, 0, 1.0), (4, 1, 2.0)]
    assert all(r['perf/steps_per_sec'] > 0 for r in records)
    runner.problem = 'non-finite loss/d at step 5'
    with pytest.raises(hooks.NonFiniteError, match='loss/d at step 5.*step 40'):
        log(6, runner)
    wd.close()
    assert sorted(os.listdir(tmp_path / 'tensorboard')) == ['member_0', 'member_1']


def test_guard_skip_policy_never_raises():
    guard = hooks.NonFiniteGuard('skip', FakeCheckpointer())
    guard.check(FakeRunner([], problem='non-finite loss/g at step 1'))


def test_checkpoint_guards_before_saving():
    ckpt = FakeCheckpointer()
    save = hooks.Checkpoint(ckpt, 3, 10, hooks.NonFiniteGuard('stop', ckpt))
    runner = FakeRunner([])
    for step in range(1, 7):
        save(step, runner)
    assert ckpt.saved == ['STATE', 'STATE']
    runner.problem = 'non-finite grad_norm/d at step 8'
    with pytest.raises(hooks.NonFiniteError):
        save(9, runner)
    assert len(ckpt.saved) == 2  # a bad state is never saved


def test_processes_other_than_0_write_nothing(tmp_path):
    wd = workdir_lib.Workdir(str(tmp_path / 'w'), is_main=False)
    guard = hooks.NonFiniteGuard('stop', FakeCheckpointer())
    hooks.LogMetrics(wd, 1, 1, guard)(1, FakeRunner([{'loss/d': 1.0}]))
    wd.write_best('fid/fid', 1.0, 1)
    assert not os.path.exists(tmp_path / 'w')


def test_stop_on_signal_saves_and_asks_to_stop():
    ckpt = FakeCheckpointer()
    stop = hooks.StopOnSignal(ckpt, hooks.NonFiniteGuard('stop', ckpt))
    runner = FakeRunner([])
    before = signal.getsignal(signal.SIGTERM)
    with stop.installed():
        assert stop(1, runner) is False
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal_name == 'SIGTERM'
        assert stop(2, runner) is True
    assert ckpt.saved == ['STATE']
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is restored


class Constant:
    """An evaluator whose metric is a fixed value per call."""

    def __init__(self, values):
        self.values = iter(values)

    def run(self, sample_fn):
        yield 'fid', next(self.values)


class Members(FakeRunner):
    def __init__(self, count):
        super().__init__([])
        from gan_jax.runners import Member
        state = types.SimpleNamespace(ema_params=None, g_state=None)
        self._members = [Member(None if count == 1 else i, 10 + i, state)
                         for i in range(count)]

    def members(self):
        return self._members


def test_evaluate_writes_member_records_and_a_sweep_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(hooks.sampling, 'sample_fn', lambda *a, **k: None)
    wd = workdir_lib.Workdir(str(tmp_path), is_main=True)
    sweep = sweep_lib.Sweep.build(seeds=2)
    evaluate = hooks.Evaluate(wd, 5, 10, evaluators={'fid': Constant([3.0, 5.0])},
                              G=None, z_dim=2, sweep=sweep)
    evaluate(4, Members(2))  # not due
    evaluate(5, Members(2))
    records = lines(tmp_path / 'eval.jsonl')
    assert [(r['member'], r['seed'], r['eval/fid/fid']) for r in records] == [
        (0, 10, 3.0), (1, 11, 5.0)]
    summary = json.load(open(tmp_path / 'summary.json'))
    assert summary['step'] == 5
    assert summary['rows'][0]['eval/fid/fid']['mean'] == 4.0
    assert summary['rows'][0]['eval/fid/fid']['sem'] == pytest.approx(1.0)
    assert '4 ± 1' in open(tmp_path / 'summary.md').read()
    wd.close()


def test_best_checkpoint_follows_the_mean_over_members(tmp_path, monkeypatch):
    saved = []

    class Recorder(FakeCheckpointer):
        def __init__(self, directory, max_to_keep):
            super().__init__()

        def save(self, state):
            saved.append(state)

        def close(self):
            pass

    monkeypatch.setattr(hooks.checkpoint, 'Checkpointer', Recorder)
    config = ml_collections.ConfigDict(
        {'best_metric': 'fid/fid', 'best_mode': 'min'})
    wd = workdir_lib.Workdir(str(tmp_path), is_main=True)
    best = hooks.BestCheckpoint(wd, config)
    runner = FakeRunner([])
    best.offer(1, runner, [{'eval/fid/fid': 4.0}, {'eval/fid/fid': 6.0}])
    best.offer(2, runner, [{'eval/fid/fid': 2.0}, {'eval/fid/fid': 9.0}])  # mean 5.5
    best.offer(3, runner, [{'eval/fid/fid': 1.0}, {'eval/fid/fid': np.nan}])
    assert len(saved) == 2
    assert json.load(open(tmp_path / 'best.json')) == {
        'metric': 'fid/fid', 'value': 1.0, 'step': 3}
    # A resumed run starts from the recorded best.
    assert hooks.BestCheckpoint(wd, config).value == 1.0
    with pytest.raises(KeyError, match='best_metric'):
        best.offer(4, runner, [{'eval/kid/kid': 1.0}])
