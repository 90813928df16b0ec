"""scripts/bench_step.py: one short pass on the toy MLP (JSON schema, positive
times and FLOPs, throughput and latency, torch variants), the measuring order
of scripts/step_timing.py, and the PyTorch reference of
scripts/torch_reference.py against ours (parameter counts; its tuned form
computes the eager form's step)."""
import functools
import json

import bench_step
import jax
import numpy as np
import pytest
import step_timing

KEYS = ('model', 'batch', 'dtype', 'n_critic', 'jax_ms', 'jax_ms_spread',
        'jax_latency_ms', 'jax_latency_spread_ms', 'jax_second_call_ms',
        'compile_s', 'gflops', 'achieved_gflops_per_s', 'torch_ms',
        'torch_ms_spread', 'torch_latency_ms', 'ratio', 'torch_variants',
        'torch_best', 'torch_best_ms', 'ratio_best', 'torch_device',
        'torch_status')


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_mlp_pass_writes_the_json_schema(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    # One torch thread: the test shares the CPU with the rest of the suite.
    bench_step.main(['--models', 'mlp', '--steps', '2', '--torch_threads', '1',
                     '--batch', '32', '--torch_variants', 'eager,tuned',
                     '--json', str(path)])
    rows = json.loads(path.read_text())
    assert [r['model'] for r in rows] == ['mlp']
    row = rows[0]
    assert set(KEYS) <= set(row)
    assert row['batch'] == 32 and row['n_critic'] == 1 and row['dtype'] == 'float32'
    assert row['jax_ms'] > 0 and row['jax_ms_spread'] >= 0 and row['compile_s'] > 0
    assert row['jax_latency_ms'] > 0 and row['jax_latency_spread_ms'] >= 0
    assert row['gflops'] > 0 and row['achieved_gflops_per_s'] > 0
    if bench_step.torch_available():
        assert row['torch_status'] == 'ok'
        assert set(row['torch_variants']) == {'eager', 'tuned'}
        for variant in row['torch_variants'].values():
            assert variant['status'] == 'ok' and variant['ms'] > 0
            assert variant['latency_ms'] > 0
        assert row['torch_variants']['tuned']['adam'] in ('fused', 'foreach')
        assert row['torch_ms'] == row['torch_variants']['eager']['ms']
        assert row['ratio'] == pytest.approx(row['jax_ms'] / row['torch_ms'])
        assert row['torch_best_ms'] == min(
            v['ms'] for v in row['torch_variants'].values())
        assert row['ratio_best'] == pytest.approx(row['jax_ms']
                                                  / row['torch_best_ms'])
    else:
        assert row['torch_ms'] is None and row['ratio'] is None
    out = capsys.readouterr().out
    assert f'jax {jax.__version__}' in out
    assert '| mlp | 32 | float32 |' in out
    assert 'jax ms/step | jax latency ms' in out
    assert 'TF32 495' in out and 'bf16 989' in out  # the peaks assumed for MFU


def test_no_torch_leaves_torch_columns_null():
    rows = bench_step.run_benchmark(['mlp'], steps=1, use_torch=False)
    assert rows[0]['torch_ms'] is None and rows[0]['torch_ms_spread'] is None
    assert rows[0]['jax_ms'] > 0


def test_unknown_model_dtype_and_variant_are_refused():
    with pytest.raises(ValueError, match='unknown model'):
        bench_step.run_benchmark(['vgg'], steps=1, use_torch=False)
    with pytest.raises(ValueError, match='unknown dtype'):
        bench_step.run_benchmark(['mlp'], steps=1, use_torch=False, dtype='fp8')
    if bench_step.torch_available():
        with pytest.raises(ValueError, match='unknown torch variant'):
            bench_step.run_benchmark(['mlp'], steps=1, torch_variants=['jit'])


def test_model_config_takes_batch_and_dtype():
    config = bench_step.model_config('stylegan2_32', batch=8, dtype='bfloat16')
    assert config.model.name == 'stylegan2' and config.batch_size == 8
    assert config.model.compute_dtype == 'bfloat16' and config.n_critic == 1
    assert bench_step.model_config('dcgan32').batch_size == 64


class RecordingStepper(step_timing.Stepper):
    """A stepper that records what it was asked to do, in order."""

    def __init__(self, name, log):
        super().__init__(lambda: log.append(name), lambda: log.append(name + '.wait'))


def test_measure_interleaves_throughput_blocks_then_latency_steps():
    log = []
    a, b = RecordingStepper('a', log), RecordingStepper('b', log)
    results = step_timing.measure([a, b], steps=5, rounds=2, latency_steps=2)
    # Round 1: 2 steps each, dispatched back to back with one wait (after the
    # drain that keeps earlier work out), then 1 latency step each, waited.
    # Round 2: 3 steps each, then 1 latency step each.
    one_round = lambda n: ([w for s in 'ab' for w in [s + '.wait'] + [s] * n
                            + [s + '.wait']] + ['a', 'a.wait', 'b', 'b.wait'])
    assert log == one_round(2) + one_round(3)
    for result in results:
        assert set(result) == {'ms', 'spread_ms', 'latency_ms',
                               'latency_spread_ms', 'latency_min_ms'}
        assert min(result.values()) >= 0
    assert step_timing.round_sizes(5, 2) == [2, 3]
    assert step_timing.round_sizes(2, 5) == [1, 1]


def test_peaks_and_shares():
    assert step_timing.peaks('NVIDIA H200')['tf32'] == 495.0
    assert step_timing.peaks('cpu') is None
    shares = step_timing.peak_shares(99.0, 'float32', step_timing.peaks('H200'))
    assert shares == pytest.approx({'share_of_tf32_peak': 0.2,
                                    'share_of_float32_peak': 99 / 67})
    assert set(step_timing.peak_shares(1.0, 'bfloat16',
                                       step_timing.peaks('H200'))) == {
        'share_of_bfloat16_peak'}
    assert step_timing.peak_shares(1.0, 'float32', None) == {}


def test_tuned_torch_step_computes_the_eager_step():
    """channels_last and the fused Adam change how the step computes, not
    what: from the same seed, three steps of DCGAN smoke networks give the
    same losses and weights as the eager form, to float32 rounding."""
    torch = pytest.importorskip('torch')
    import torch_reference

    from experiments.configs import cifar10_dcgan
    config = cifar10_dcgan.get_config('smoke')
    config.batch_size = 4
    shape = (32, 32, 3)
    reals = torch.rand((1, 4, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    outs = {}
    for variant in ('eager', 'tuned'):
        torch.manual_seed(0)
        step, G, D = torch_reference.make_step(config, shape, torch.device('cpu'),
                                               variant)
        losses = [step(torch_reference.as_input(reals, variant))['d']
                  for _ in range(3)]
        outs[variant] = (torch.stack(losses), [p.detach().clone()
                                               for p in G.parameters()])
    np.testing.assert_allclose(outs['tuned'][0], outs['eager'][0], rtol=1e-4,
                               atol=1e-5)
    for tuned, eager in zip(outs['tuned'][1], outs['eager'][1]):
        np.testing.assert_allclose(tuned, eager, rtol=1e-3, atol=1e-4)


def test_torch_reference_says_what_it_lacks():
    torch = pytest.importorskip('torch')
    import torch_reference
    resnet = bench_step.model_config('resnet32')
    resnet.data.labels = True
    with pytest.raises(NotImplementedError, match='conditional'):
        torch_reference.networks(resnet, (32, 32, 3))
    config = bench_step.model_config('stylegan2_32')
    config.augment.policy = 'color'
    with pytest.raises(NotImplementedError, match='DiffAugment'):
        torch_reference.make_step(config, (32, 32, 3), torch.device('cpu'))


@pytest.mark.parametrize('name', ['mlp', 'dcgan32', 'resnet32', 'dcgan64',
                                  'stylegan2_32'])
def test_torch_reference_has_our_parameter_counts(name):
    pytest.importorskip('torch')
    import jax.numpy as jnp
    import torch_reference

    from gan_jax import data, models
    config = bench_step.model_config(name)
    info = data.get_info(config)
    shape = info.shape
    ours_g, ours_d = models.build(config, shape, info.num_classes)
    # stylegan2_32 is class-conditional: both networks take labels.
    labels = (jnp.zeros((2,), jnp.int32),) if info.num_classes else ()
    rng = jax.random.PRNGKey(0)
    # Shapes only (eval_shape): no initialisation is computed.
    g_params = jax.eval_shape(functools.partial(ours_g.init, train=False), rng,
                              jnp.zeros((2, config.model.z_dim)), *labels)['params']
    d_params = jax.eval_shape(functools.partial(ours_d.init, train=False), rng,
                              jnp.zeros((2,) + tuple(shape)), *labels)['params']
    G, D = torch_reference.networks(config, shape)
    # Same total and the same multiset of tensor sizes: layer by layer the
    # same shapes, up to the layout (HWIO vs OIHW, NHWC vs NCHW).
    for ours, theirs in ((g_params, G), (d_params, D)):
        assert sum(p.numel() for p in theirs.parameters()) == count(ours)
        assert sorted(p.numel() for p in theirs.parameters()) == sorted(
            int(np.prod(x.shape)) for x in jax.tree.leaves(ours))


def tiny_stylegan2_config():
    """cifar10_stylegan2_ada at smoke size (16 channels at most, w 32-d, a
    2-layer mapping, minibatch-stddev groups of 4): conditional, lazy R1,
    ADA."""
    from experiments.configs import cifar10_stylegan2_ada
    config = cifar10_stylegan2_ada.get_config('smoke')
    config.model.z_dim = 32
    config.batch_size = 4
    return config


def random_variables(net, rng, *inputs):
    """Variables of `net` in the shapes its init makes (eval_shape: no init
    computed), every leaf ~ N(0, 1) (biases and noise strengths too, which
    init sets to 0), the mapping layers' divided by their lr multiplier 0.01,
    as init stores them."""
    shapes = jax.eval_shape(functools.partial(net.init, train=False),
                            jax.random.PRNGKey(0), *inputs)

    def draw(path, leaf):
        names = [str(getattr(k, 'key', k)) for k in path]
        mapping = any(n.startswith('mapping') for n in names) and any(
            n.startswith('fc') for n in names)
        value = rng.standard_normal(leaf.shape).astype(np.float32)
        return value / 0.01 if mapping else value
    return jax.tree_util.tree_map_with_path(draw, shapes)


def test_torch_stylegan2_computes_our_networks():
    """Our Flax G and D at random parameters, copied into the torch
    reference, give the same images (const noise) and logits: the mapping
    with label embedding, modulated/demodulated convs with the FIR up path,
    noise, toRGB skips, the residual D with FIR downsampling, minibatch
    stddev and the projection head."""
    torch = pytest.importorskip('torch')
    import jax.numpy as jnp
    import torch_reference

    from gan_jax import data, models
    config = tiny_stylegan2_config()
    info = data.get_info(config)
    G, D = models.build(config, info.shape, info.num_classes)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, config.model.z_dim)).astype(np.float32)
    labels = np.array([0, 3, 7, 9], np.int32)
    x = rng.uniform(-1.0, 1.0, (4, 32, 32, 3)).astype(np.float32)
    g_vars = random_variables(G, rng, jnp.asarray(z), jnp.asarray(labels))
    d_vars = random_variables(D, rng, jnp.asarray(x), jnp.asarray(labels))
    # Jitted: op by op, the first call of each primitive compiles it.
    ours_images = jax.jit(functools.partial(G.apply, train=False, noise_mode='const'))(
        g_vars, z, labels)
    ours_logits = jax.jit(functools.partial(D.apply, train=False))(d_vars, x, labels)
    torch_g, torch_d = torch_reference.networks(config, info.shape)
    torch_reference.load_flax_variables(torch_g, g_vars)
    torch_reference.load_flax_variables(torch_d, d_vars)
    torch_g.eval()
    with torch.no_grad():
        images = torch_g(torch.from_numpy(z), torch.from_numpy(labels),
                         noise_mode='const')
        logits = torch_d(torch.from_numpy(x).permute(0, 3, 1, 2),
                         torch.from_numpy(labels))
    assert np.abs(np.asarray(ours_images)).max() > 1.0  # a non-trivial image
    np.testing.assert_allclose(images.permute(0, 2, 3, 1).numpy(), ours_images,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), ours_logits, rtol=1e-4, atol=1e-4)


def test_torch_ada_applies_our_transforms():
    """The torch ADA resampling (grid_sample, reflection) and color matrix
    applied with our matrices at p = 1 give our augmented images; at p = 0
    the torch pipeline is the identity (to grid_sample's rounding)."""
    torch = pytest.importorskip('torch')
    import torch_reference

    from gan_jax import ada
    multipliers = ada.multipliers_of('bgc')

    @jax.jit  # op by op, the first call of each primitive compiles it
    def ours_fn(key):
        keys = jax.random.split(key, 3)
        x = jax.random.uniform(keys[0], (8, 16, 16, 3), minval=-1.0, maxval=1.0)
        g_inv = ada.geometric_matrix(keys[1], 8, 16, 16, 1.0, multipliers)
        color = ada.color_matrix(keys[2], 8, 1.0, multipliers)
        return x, g_inv, color, ada.apply_color(ada.apply_geometric(x, g_inv), color)

    x, g_inv, color, ours = ours_fn(jax.random.PRNGKey(0))
    images = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)
    theirs = torch_reference.ada_apply_color(
        torch_reference.ada_apply_geometric(images, torch.from_numpy(np.array(g_inv))),
        torch.from_numpy(np.array(color)))
    assert np.abs(np.asarray(ours) - np.asarray(x)).max() > 0.5  # p = 1 moved pixels
    np.testing.assert_allclose(theirs.permute(0, 2, 3, 1).numpy(), ours, atol=1e-4)
    torch.manual_seed(0)
    np.testing.assert_allclose(torch_reference.ada_augment(images, torch.tensor(0.0)),
                               images, atol=1e-5)


def test_torch_stylegan2_step_runs_our_phases():
    """The torch StyleGAN2 step: our Adam corrections for the lazy intervals,
    R1 every d_reg_interval steps and path length every g_reg_interval steps
    from step 0, ADA's p moved by batch * interval / 500k after every
    ada_interval steps, w_avg and the EMA moving; finite throughout."""
    torch = pytest.importorskip('torch')
    import torch_reference
    config = tiny_stylegan2_config()
    config.reg.d_reg_interval = 2
    config.reg.pl_weight = 2.0  # g_reg_interval 4
    config.model.g.style_mixing_prob = 0.9
    torch.manual_seed(0)
    step, G, D = torch_reference.make_step(config, (32, 32, 3), torch.device('cpu'))
    for net, c in (('d', 2 / 3), ('g', 4 / 5)):
        group = step.optimizers[net].param_groups[0]
        assert group['lr'] == pytest.approx(2.5e-3 * c)
        assert group['betas'] == pytest.approx((0.0, 0.99 ** c))
    reals = torch.rand(1, 4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1, 2, 3, 4]])
    metrics = [step(reals, labels) for _ in range(5)]
    r1 = [m['r1'].item() for m in metrics]
    pl = [m['pl_mean'].item() for m in metrics]
    p = [m['ada_p'].item() for m in metrics]
    assert r1[0] > 0 and r1[1] == r1[0] and r1[2] != r1[1] and r1[3] == r1[2]
    assert pl[0] > 0 and pl[1] == pl[2] == pl[3] == pl[0] and pl[4] != pl[3]
    assert p[:3] == [0.0] * 3 and p[3] == p[4]
    assert p[3] == pytest.approx(4 * 4 / 500_000) or p[3] == 0.0  # r_t above / below 0.6
    assert not any(m['nonfinite'].item() for m in metrics)
    assert G.mapping_network.w_avg.abs().sum() > 0
    assert any(not torch.equal(e, p) for e, p in zip(step.ema, G.parameters()))
