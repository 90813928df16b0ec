"""The accelerator check (scripts/accelerator_check.py) and what it relies on:
every part runs at --tiny sizes on the CPU and writes both files; training on
the synthetic dataset imports neither tensorflow nor tensorflow_datasets (both
made unimportable in a subprocess); the synthetic dataset's stream, resume
and device finishing; sweeps' image batches finished on the device as the
host does; the runners' steps make no implicit transfer."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import accelerator_check
import step_timing
from gan_jax import checkpoint, config as config_lib, data, experiment, parallel
from gan_jax import runners, sweep as sweep_lib
from gan_jax.data import images, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'accelerator_check.py')

# Run first in a subprocess: tensorflow and tensorflow_datasets cannot be
# imported. The finder wraps PathFinder, so importlib.util.find_spec (which
# etils calls) answers None for them, as on a machine without them.
BLOCK_TENSORFLOW = '''
import sys
from importlib.machinery import PathFinder
BLOCKED = ('tensorflow', 'tensorflow_datasets')
class BlockTensorFlow(PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.split('.')[0] in BLOCKED:
            return None
        return super().find_spec(fullname, path, target)
sys.meta_path[:] = [BlockTensorFlow if f is PathFinder else f for f in sys.meta_path]
import importlib.util
assert importlib.util.find_spec('tensorflow') is None
try:
    import tensorflow_datasets
except ImportError:
    pass
else:
    raise SystemExit('the blocker let tensorflow_datasets through')
'''


def _python(code, *, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def synthetic_dcgan(**overrides):
    """DCGAN smoke networks on 16x16x3 synthetic images with flips."""
    from experiments.configs import cifar10_dcgan
    config = cifar10_dcgan.get_config('smoke')
    config.dataset = 'synthetic'
    config.data.synthetic_shape = (16, 16, 3)
    config.data.synthetic_examples = 40
    config.data.random_flip = True
    config.progress = False
    for key, value in overrides.items():
        config[key] = value
    return config


# --------------------------------------------------------------------------- #
# The check and the TensorFlow-free path, in subprocesses.                     #
# --------------------------------------------------------------------------- #
def test_tiny_check_runs_every_part_without_tensorflow(tmp_path):
    out = str(tmp_path / 'check')
    code = BLOCK_TENSORFLOW + f'''
import runpy
sys.argv = [{SCRIPT!r}, '--cpu', '--tiny', '--out', {out!r}]
try:
    runpy.run_path({SCRIPT!r}, run_name='__main__')
finally:
    print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))
'''
    done = _python(code)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert 'imported: []' in done.stdout
    result = json.load(open(os.path.join(out, accelerator_check.JSON_FILE)))
    markdown = open(os.path.join(out, accelerator_check.MARKDOWN_FILE)).read()
    assert set(result['parts']) == set(accelerator_check.PARTS)
    assert not result['tensorflow_imported']
    assert not result['tensorflow_datasets_imported']
    assert result['environment']['platform'] == 'cpu' and result['peak_tflops'] is None
    for name, part in result['parts'].items():
        assert 'error' not in part, (name, part)
        for row in part.get('rows', []):
            assert row.get('status', 'ok') == 'ok' or row['status'].startswith(
                ('not available', 'skipped: torch', 'skipped with --tiny')), (name, row)
    step = {(r['model'], r['dtype']): r for r in result['parts']['step']['rows']}
    for model in ('dcgan32', 'resnet32'):
        for dtype in accelerator_check.DTYPES:
            row = step[(model, dtype)]
            assert row['status'] == 'ok' and row['batch'] == 4
            assert row['ms'] > 0 and row['latency_ms'] > 0
            assert row['gflops_per_step'] > 0
    torch_part = result['parts']['torch']
    if torch_part['rows']:  # torch installed
        import torch
        import torch_reference
        fused = ('fused' if torch_reference.fused_adam_available(torch.device('cpu'))
                 else 'foreach')
        torch_rows = {(r['model'], r['dtype'], r['variant']): r
                      for r in torch_part['rows']}
        for model in ('dcgan32', 'resnet32'):
            for dtype in accelerator_check.DTYPES:
                for variant in accelerator_check.TORCH_VARIANTS:
                    row = torch_rows[(model, dtype, variant)]
                    assert row['status'] == 'ok' and row['ms'] > 0, row
                    assert row['latency_ms'] > 0 and row['jax_over_torch'] > 0
                    assert row['adam'] == ('foreach' if variant == 'eager'
                                           else fused)
    sweep = result['parts']['sweep']['rows']
    assert sorted((r['config'], r['members']) for r in sweep) == [
        ('dcgan32', 2), ('toy_ring', 2)]
    assert all(r['speedup'] > 0 for r in sweep)
    loop_rows = result['parts']['loop']['rows']
    assert [(r['config'], r['dataset'], r['steps_per_call']) for r in loop_rows] == [
        ('dcgan32', 'synthetic', 1), ('toy_ring', 'ring', 1), ('toy_ring', 'ring', 2)]
    assert all(r['loop_ms'] > 0 and r['bare_ms'] > 0 for r in loop_rows)
    assert result['parts']['inception']['rows'][0]['images_per_s'] > 0
    compiled = result['parts']['compile']['rows']
    assert len(compiled) >= 8 and not any(r.get('float64') for r in compiled)
    for title in ('Update step (JAX)', 'Update step (PyTorch', 'Sweep speed-up',
                  'Loop overhead', 'Inception features', 'Compile times'):
        assert title in markdown
    assert 'peak unknown' in markdown


def test_synthetic_training_imports_no_tensorflow(tmp_path):
    workdir = str(tmp_path / 'run')
    code = BLOCK_TENSORFLOW + f'''
import gan_jax.train, gan_jax.loop
from experiments.configs import cifar10_dcgan
config = cifar10_dcgan.get_config('smoke')  # DCGAN networks, base width 8
config.dataset = 'synthetic'
config.data.synthetic_shape = (16, 16, 3)
config.data.random_flip = True
config.num_steps, config.log_every = 2, 1
config.checkpoint_every = config.sample_every = 2
config.progress = False
state = gan_jax.loop.run(config, {workdir!r})
print('step', int(state.step))
print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))
'''
    done = _python(code)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert 'step 2' in done.stdout and 'imported: []' in done.stdout
    records = [json.loads(x) for x in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [r['step'] for r in records] == [1, 2]
    assert os.listdir(os.path.join(workdir, 'samples'))


# --------------------------------------------------------------------------- #
# The synthetic dataset.                                                       #
# --------------------------------------------------------------------------- #
def test_synthetic_stream_is_the_image_pipeline_and_resumes():
    config = synthetic_dcgan()
    config.n_critic = 2
    config.data.labels = True
    assert 'synthetic' in data.names()
    info = data.get_info(config)
    assert (info.shape, info.kind, info.num_classes) == ((16, 16, 3), 'images', 10)
    data.check_available(config)  # nothing to read
    raw = list(zip(range(5), data.host_batches(config, raw=True)))
    first = raw[0][1]
    assert first['x'].dtype == np.uint8 and first['x'].shape == (2, 8, 16, 16, 3)
    assert first['flip'].shape == (2, 8) and first['label'].dtype == np.int32
    assert 0 <= first['label'].min() and first['label'].max() < 10
    # A pure function of (config, position): a stream resumed at 3 goes on
    # exactly; the finished stream is the raw one finished on the host.
    resumed = next(data.host_batches(config, start_step=3, raw=True))
    for key in first:
        np.testing.assert_array_equal(resumed[key], raw[3][1][key])
    finished = next(data.host_batches(config))
    np.testing.assert_array_equal(finished['x'], images.finish_on_host(first)['x'])
    assert finished['x'].dtype == np.float32 and -1 <= finished['x'].min() <= 1
    # 40 examples, 16 per step: epoch 0 holds every example once.
    x_all, _ = synthetic.load_split(config.data)
    epoch = np.concatenate([b['x'].reshape(-1, 16, 16, 3) for _, b in raw[:2]]
                           + [raw[2][1]['x'].reshape(-1, 16, 16, 3)[:8]])
    assert len({e.tobytes() for e in epoch}) == len({e.tobytes() for e in x_all})
    # Another seed: the same images, in another order.
    other = synthetic_dcgan(seed=1)
    assert synthetic.load_split(other.data)[0] is x_all
    assert not np.array_equal(next(data.host_batches(other, raw=True))['x'],
                              next(data.host_batches(synthetic_dcgan(), raw=True))['x'])


def test_synthetic_train_iter_finishes_on_the_device_as_the_host():
    config = synthetic_dcgan()
    mesh = parallel.make_mesh(num_devices=1)
    stream = data.make_train_iter(config, start_step=2,
                                  sharding=parallel.batch_sharding(mesh))
    host = data.host_batches(config, start_step=2)
    for _ in range(2):
        device_batch, host_batch = next(stream), next(host)
        assert isinstance(device_batch['x'], jax.Array)
        np.testing.assert_array_equal(np.asarray(device_batch['x']), host_batch['x'])


def test_synthetic_config_keys_are_validated_and_round_trip():
    config = synthetic_dcgan()
    config_lib.validate(config)
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved['data']['synthetic_shape'] == [16, 16, 3]
    restored = config_lib.from_json_dict(saved)
    assert data.get_info(restored).shape == (16, 16, 3)
    assert config_lib.changed_keys(saved, config) == []
    for key, value, message in (('synthetic_shape', (16, 16), 'three positive'),
                                ('synthetic_shape', (16, 0, 3), 'three positive'),
                                ('synthetic_examples', 0, 'synthetic_examples')):
        bad = synthetic_dcgan()
        bad.data[key] = value
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.validate(bad)


# --------------------------------------------------------------------------- #
# Accelerator paths.                                                           #
# --------------------------------------------------------------------------- #
def test_sweep_image_batches_finish_on_the_device_as_on_the_host():
    config = synthetic_dcgan()
    for sweep in (sweep_lib.Sweep.build(seeds=3), sweep_lib.Sweep.build(
            seeds=2, shared_data=True)):
        host = sweep_lib.member_batches(config, sweep, 0, sweep.num_members, 1)
        raw = sweep_lib.member_batches(config, sweep, 0, sweep.num_members, 1, raw=True)
        for _ in range(2):
            h, r = next(host), next(raw)
            assert r['x'].dtype == np.uint8 and 'flip' in r
            finished = images.finish_on_device(jax.device_put(r))
            assert set(finished) == set(h)
            np.testing.assert_array_equal(np.asarray(finished['x']), h['x'])


def test_runner_steps_make_no_implicit_transfer(tmp_path):
    """Under jax.transfer_guard('disallow') every update call of a single
    run and of a sweep dispatches without an implicit host-to-device transfer
    (a numpy batch or a Python scalar reaching the compiled step would
    raise): batches arrive on the device from the prefetch thread. (XLA:CPU
    does not guard device-to-host copies, so per-step syncs are checked by
    reading: docs/performance.md, "GPU paths".)"""
    config = synthetic_dcgan(num_steps=3)
    for name, sweep in (('single', None), ('sweep', sweep_lib.Sweep.build(seeds=2))):
        prepared = experiment.prepare(config, str(tmp_path / name), sweep)
        ckpt = checkpoint.Checkpointer(str(tmp_path / name / 'checkpoints'))
        try:
            runner = runners.make(prepared, ckpt)
            with jax.transfer_guard('disallow'):
                for _ in range(3):
                    runner.advance()
                with pytest.raises(Exception, match='Disallowed host-to-device'):
                    jax.numpy.asarray(np.ones(2, np.float32))  # the guard bites
            assert runner.step == 3
            assert np.all(np.asarray(runner.final_state().step) == 3)
        finally:
            ckpt.close()


# --------------------------------------------------------------------------- #
# The script's helpers.                                                        #
# --------------------------------------------------------------------------- #
def test_script_helpers():
    with pytest.raises(SystemExit):
        accelerator_check.parse_args(['--out', 'x', '--parts', 'step,gpu'])
    args = accelerator_check.parse_args(['--out', 'x', '--parts', 'loop,step'])
    assert args.parts == ['loop', 'step'] and not args.tiny
    assert args.torch_variants == list(accelerator_check.TORCH_VARIANTS)
    with pytest.raises(SystemExit):
        accelerator_check.parse_args(['--out', 'x', '--torch_variants', 'jit'])
    config = synthetic_dcgan()
    longer = synthetic_dcgan(num_steps=500, log_every=7)
    assert accelerator_check.config_key(config) == accelerator_check.config_key(longer)
    assert accelerator_check.config_key(config) != accelerator_check.config_key(
        synthetic_dcgan(batch_size=4))
    jitted = jax.jit(lambda a, b: a @ b)
    x = np.ones((32, 32), np.float32)
    compiled = jitted.lower(x, x).compile()
    flops = step_timing.program_flops(compiled)
    assert flops == pytest.approx(2 * 32 ** 3, rel=0.1)
    row = {}
    accelerator_check.with_rates(row, 2e12, 1000.0, 'float32',
                                 step_timing.peaks('H200'))
    assert row['tflops'] == pytest.approx(2.0)
    assert row['share_of_tf32_peak'] == pytest.approx(2.0 / 495)
    # Parts not run are said so; a failed part fails the check.
    result = {'environment': dict(command='c', date='d', device_kind='cpu',
                                  platform='cpu', device_count=1, cpu='x',
                                  cpu_cores=2, python='3', jax='0', tiny=True),
              'peak_tflops': None, 'tensorflow_imported': False,
              'tensorflow_datasets_imported': False,
              'parts': {'loop': {'error': 'RuntimeError: boom'}}}
    text = accelerator_check.markdown(result)
    assert 'not run (--parts)' in text and 'failed: RuntimeError: boom' in text
    assert accelerator_check.failed(result) == ['loop: RuntimeError: boom']
