"""scripts/bench_xla_options.py: one short pass on the toy MLP, and a clear
error for an unknown model."""
import bench_xla_options
import pytest


def test_mlp_pass_prints_both_timings(capsys):
    bench_xla_options.main(['--models', 'mlp', '--rounds', '1', '--steps_per_round', '2'])
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith('| mlp |')]
    assert len(row) == 1
    default_ms, ours_ms, ratio = (float(v) for v in row[0].strip('|').split('|')[1:])
    assert default_ms > 0 and ours_ms > 0
    assert ratio == pytest.approx(ours_ms / default_ms, rel=0.01)  # printed rounded


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match='unknown model'):
        bench_xla_options.main(['--models', 'vgg'])
