"""TensorFlow's C++ start-up notices must not reach our stderr (launchers
promise one line for bad input), while its real errors still do."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    # A clean environment, as a user's shell: none of conftest's settings.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('TF_', 'JAX_DISABLE'))}
    env['PYTHONPATH'] = ROOT
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, env=env, timeout=300)


def test_tensorflow_imported_after_gan_jax_writes_nothing_to_stderr():
    out = _python('import gan_jax\n'
                  'import tensorflow as tf\n'
                  'import tensorflow_datasets as tfds\n'
                  'print(int(tf.reduce_sum(tf.ones([4]))))')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '4'
    assert out.stderr == ''


def test_tensorflow_errors_still_show():
    out = _python('import gan_jax\n'
                  'import tensorflow as tf\n'
                  'tf.io.read_file("/nonexistent/file")')
    assert out.returncode != 0
    assert 'NotFoundError' in out.stderr


def test_a_user_setting_of_the_log_level_wins():
    out = _python('import os\n'
                  'os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"\n'
                  'import gan_jax\n'
                  'print(os.environ["TF_CPP_MIN_LOG_LEVEL"])')
    assert out.stdout.strip() == '0'
