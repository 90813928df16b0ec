"""Data parallelism: an 8-device mesh (forced CPU devices) computes what one
device computes, checkpoints cross between the two, and two processes on
localhost (gloo collectives) train like one process with the same global batch.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax import experiment, parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Relative to each leaf's largest magnitude. The 8-device step sums gradients
# and batch statistics in a different order than the 1-device step: float32
# rounding, compounded over a few Adam steps.
TOLERANCE = 1e-5


def env(**extra):
    e = dict(os.environ, JAX_PLATFORMS='cpu', **extra)
    e.pop('XLA_FLAGS', None)
    e.update(extra)
    return e


@pytest.mark.slow
def test_eight_devices_equal_one_and_checkpoints_cross():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tests', 'scripts', 'mesh_equivalence.py')],
        capture_output=True, text=True, timeout=900,
        env=env(XLA_FLAGS='--xla_force_host_platform_device_count=8'))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ('mlp', 'dcgan_bn'):
        for case in ('8_vs_1', '8_then_1', '1_then_8', 'sampling_8_vs_1'):
            assert result[f'{name}/{case}'] <= TOLERANCE, (name, case, result)
    assert result['mlp/runtime'] == {'devices': 8, 'platform': 'cpu', 'processes': 1,
                                     'per_device_batch': 4}
    assert result['dcgan_bn/runtime']['per_device_batch'] == 2


@pytest.mark.slow
def test_eight_devices_train_hundreds_of_steps_without_deadlock(tmp_path):
    """The command that aborted after ~40 steps when launches queued without
    bound (XLA:CPU rendezvous: 'only 7 of them arrived', rc 134): 300 steps
    of toy_ring at batch 128 on 8 forced devices, data prefetch on."""
    workdir = str(tmp_path / 'w8')
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'experiments', 'train.py'),
         '--config', os.path.join(ROOT, 'experiments', 'configs', 'toy_ring.py'),
         '--config.num_steps=300', '--config.batch_size=128',
         '--config.progress=False', '--workdir', workdir],
        capture_output=True, text=True, timeout=600,
        env=env(XLA_FLAGS='--xla_force_host_platform_device_count=8'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'devices: 8' in out.stderr
    steps = [json.loads(x)['step'] for x in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert steps[-1] == 300


def test_dispatch_window_keeps_at_most_depth_calls_in_flight():
    from gan_jax import runners
    window = runners.DispatchWindow(depth=2)
    waited = []

    class Launch:
        def __init__(self, i):
            self.i = i

        def block_until_ready(self):
            waited.append(self.i)
            return self

    for i in range(5):
        window.launched(Launch(i))
        # After launch i, every launch before i has been waited for.
        assert waited == list(range(i))
    window.drain()
    assert waited == list(range(5))
    with pytest.raises(ValueError, match='depth'):
        runners.DispatchWindow(depth=0)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    config = os.path.join(ROOT, 'experiments', 'configs', 'toy_ring.py') + ':smoke'
    flags = ['--config', config, '--config.batch_size=20', '--config.progress=False',
             '--config.model.g.batch_norm=False']
    train = os.path.join(ROOT, 'experiments', 'train.py')
    shared = str(tmp_path / 'two')
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, train, '--workdir', shared, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env(GAN_JAX_COORDINATOR=f'127.0.0.1:{port}', GAN_JAX_NUM_PROCESSES='2',
                GAN_JAX_PROCESS_ID=str(i))) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert 'processes: 2' in outputs[0][1]
    single = str(tmp_path / 'one')
    done = subprocess.run([sys.executable, train, '--workdir', single, *flags],
                          capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _, _, _, _, two_state = experiment.load_run(shared)
    _, _, _, _, one_state = experiment.load_run(single)
    # Gloo sums the two halves' gradients in its own order; measured worst
    # leaf: 1.2e-5 relative after 6 steps (one Adam-amplified element).
    for a, b in zip(jax.tree.leaves(two_state), jax.tree.leaves(one_state)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.max(np.abs(a - b), initial=0) <= 5e-5 * max(np.max(np.abs(b)), 1e-30)
    # Only process 0 wrote the logs: each step once, one TensorBoard file.
    steps = [json.loads(x)['step'] for x in open(os.path.join(shared, 'metrics.jsonl'))]
    assert steps == sorted(set(steps)) and steps
    assert len(os.listdir(os.path.join(shared, 'tensorboard'))) == 1
    saved = json.load(open(os.path.join(shared, 'config.json')))
    assert saved['_runtime'] == {'devices': 2, 'platform': 'cpu', 'processes': 2,
                                 'per_device_batch': 10}


def test_bad_distributed_environment_is_named(monkeypatch):
    monkeypatch.setenv(parallel.COORDINATOR_ENV, '127.0.0.1:1')
    monkeypatch.setenv(parallel.NUM_PROCESSES_ENV, '2')
    monkeypatch.setenv(parallel.PROCESS_ID_ENV, '2')
    with pytest.raises(ValueError, match='must lie in 0..1'):
        parallel.initialize_distributed()
    monkeypatch.delenv(parallel.NUM_PROCESSES_ENV)
    with pytest.raises(ValueError, match='must be integers'):
        parallel.initialize_distributed()


def test_mesh_size_is_checked():
    with pytest.raises(ValueError, match='only 1 devices'):
        parallel.make_mesh(num_devices=jax.device_count() + 1) if \
            jax.device_count() == 1 else pytest.skip('needs exactly one device')
