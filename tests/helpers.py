"""Helpers shared by the tests."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def override(config, **values):
    """Sets dotted keys, e.g. override(c, **{'opt.d.lr': 0.0}); returns config."""
    for key, value in values.items():
        target = config
        *path, last = key.split('.')
        for part in path:
            target = target[part]
        target[last] = value
    return config


def experiment_command(script, *args):
    """argv of `python experiments/<script> args...` with this interpreter."""
    return [sys.executable, os.path.join(ROOT, 'experiments', script), *args]


def _cpu_env():
    # Unbuffered, so that a test reading a child's output line by line (or
    # killing it) sees everything it printed up to then.
    return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1')


def launch(script, *args, timeout=600):
    """Runs experiments/<script> to the end on the CPU; the CompletedProcess
    with text stdout and stderr."""
    return subprocess.run(experiment_command(script, *args), capture_output=True,
                          text=True, env=_cpu_env(), timeout=timeout)


def start(script, *args, capture=True):
    """Starts experiments/<script> on the CPU and returns the Popen at once:
    text stdout/stderr pipes with capture, else both discarded (a process that
    is only killed and waited for must not fill a pipe nobody reads)."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(experiment_command(script, *args), stdout=output,
                            stderr=output, text=True, env=_cpu_env())
