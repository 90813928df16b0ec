"""scripts/bench_step.py: one short pass on the toy MLP (JSON schema, positive
times and FLOPs), and the PyTorch reference networks of
scripts/torch_reference.py against ours."""
import functools
import json

import bench_step
import jax
import numpy as np
import pytest

KEYS = ('model', 'batch', 'n_critic', 'jax_ms', 'jax_ms_spread', 'jax_second_call_ms',
        'compile_s', 'gflops', 'achieved_gflops_per_s', 'torch_ms',
        'torch_ms_spread', 'ratio', 'torch_device')


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_mlp_pass_writes_the_json_schema(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    # One torch thread: the test shares the CPU with the rest of the suite.
    bench_step.main(['--models', 'mlp', '--steps', '2', '--torch_threads', '1',
                     '--json', str(path)])
    rows = json.loads(path.read_text())
    assert [r['model'] for r in rows] == ['mlp']
    row = rows[0]
    assert set(KEYS) <= set(row)
    assert row['batch'] == 256 and row['n_critic'] == 1
    assert row['jax_ms'] > 0 and row['jax_ms_spread'] >= 0 and row['compile_s'] > 0
    assert row['gflops'] > 0 and row['achieved_gflops_per_s'] > 0
    if bench_step.torch_available():
        assert row['torch_ms'] > 0 and row['torch_ms_spread'] >= 0
        assert row['ratio'] == pytest.approx(row['jax_ms'] / row['torch_ms'])
    else:
        assert row['torch_ms'] is None and row['ratio'] is None
    out = capsys.readouterr().out
    assert f'jax {jax.__version__}' in out
    assert '| mlp | 256 |' in out


def test_no_torch_leaves_torch_columns_null():
    rows = bench_step.run_benchmark(['mlp'], steps=1, use_torch=False)
    assert rows[0]['torch_ms'] is None and rows[0]['torch_ms_spread'] is None
    assert rows[0]['jax_ms'] > 0


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match='unknown model'):
        bench_step.run_benchmark(['vgg'], steps=1, use_torch=False)


@pytest.mark.parametrize('name', ['mlp', 'dcgan32', 'resnet32', 'dcgan64'])
def test_torch_reference_has_our_parameter_counts(name):
    pytest.importorskip('torch')
    import jax.numpy as jnp
    import torch_reference

    from gan_jax import data, models
    config = bench_step.model_config(name)
    shape = data.get_info(config).shape
    ours_g, ours_d = models.build(config, shape)
    rng = jax.random.PRNGKey(0)
    # Shapes only (eval_shape): no initialisation is computed.
    g_params = jax.eval_shape(functools.partial(ours_g.init, train=False), rng,
                              jnp.zeros((2, config.model.z_dim)))['params']
    d_params = jax.eval_shape(functools.partial(ours_d.init, train=False), rng,
                              jnp.zeros((2,) + tuple(shape)))['params']
    G, D = torch_reference.networks(config, shape)
    # Same total and the same multiset of tensor sizes: layer by layer the
    # same shapes, up to the layout (HWIO vs OIHW, NHWC vs NCHW).
    for ours, theirs in ((g_params, G), (d_params, D)):
        assert sum(p.numel() for p in theirs.parameters()) == count(ours)
        assert sorted(p.numel() for p in theirs.parameters()) == sorted(
            int(np.prod(x.shape)) for x in jax.tree.leaves(ours))
