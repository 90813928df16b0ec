"""scripts/bench_ops.py: a short pass of each mode (tiny layers, the toy MLP's
step with two variants), and clear errors for malformed variants."""
import bench_ops
import pytest


def test_layers_pass_times_every_form_under_both_options(capsys):
    rows = bench_ops.bench_layers(['smoke'], 'float32', ['default', 'eigen'],
                                  rounds=1, steps=1)
    from gan_jax.ops import policy
    expected = sum(len(policy.FORMS[op])
                   for _, op, _, _ in bench_ops.LAYER_CASES['smoke'])
    assert len(rows) == 2 * expected
    assert all(r['forward_ms'] > 0 and r['grad_ms'] > 0 for r in rows)
    assert '| smoke up-conv | coarse | eigen |' in capsys.readouterr().out


def test_step_pass_prints_one_row_per_variant(capsys):
    bench_ops.main(['step', '--model', 'mlp', '--variants',
                    'auto:;plain:options=default,xla_cpu_prefer_vector_width=256',
                    '--rounds', '1', '--steps_per_round', '2'])
    out = capsys.readouterr().out
    assert 'CPU: ' in out
    assert '| auto |' in out and '| plain |' in out


def test_variants_are_parsed_and_malformed_ones_refused():
    parsed = bench_ops.parse_variants('a:;b:g.upconv_impl=xla,compute_dtype=bfloat16')
    assert parsed == [('a', {}),
                      ('b', {'g.upconv_impl': 'xla', 'compute_dtype': 'bfloat16'})]
    with pytest.raises(ValueError, match='is not KEY=VALUE'):
        bench_ops.parse_variants('a:upconv_impl')
    with pytest.raises(ValueError, match='no variants'):
        bench_ops.parse_variants(' ; ')


def test_layers_pass_with_torch_adds_its_row(capsys):
    pytest.importorskip('torch')
    rows = bench_ops.bench_layers(['smoke'], 'float32', ['eigen'], rounds=1, steps=1,
                                  forms_filter={'xla'}, use_torch=True)
    assert [r['form'] for r in rows] == ['xla', 'torch eager'] * 3
    assert all(r['grad_ms'] > 0 for r in rows)
