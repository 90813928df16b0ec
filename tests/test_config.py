"""The config schema: what it is built from and what it imports."""
import os
import subprocess
import sys

import pytest

from gan_jax import config as config_lib, regularizers


def test_config_module_does_not_import_the_update_step():
    code = ('import sys, gan_jax.config; print(sorted(m for m in sys.modules '
            "if m in ('gan_jax.train', 'tensorflow')))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True, cwd=root,
                         env=dict(os.environ, JAX_PLATFORMS='cpu'))
    assert out.stdout.strip() == '[]', out.stderr


def test_reg_section_has_one_weight_per_registered_penalty():
    reg = config_lib.default_config().reg
    # One weight per penalty, then the keys of lazy regularization and of the
    # (generator-side) path-length penalty.
    assert set(reg) == {p.key for p in regularizers.PENALTIES} | {
        'd_reg_interval', 'g_reg_interval', 'pl_weight', 'pl_decay', 'pl_batch_shrink',
        'weight_clip', 'instance_noise'}
    assert all(reg[p.key] == p.default for p in regularizers.PENALTIES)


@pytest.mark.parametrize('dtype', config_lib.COMPUTE_DTYPES)
def test_compute_dtypes_are_validated(dtype):
    config = config_lib.default_config()
    config.model.compute_dtype = dtype
    config_lib.validate(config)
    config.model.compute_dtype = 'float16'
    with pytest.raises(config_lib.ConfigError,
                       match="unknown model.compute_dtype 'float16'; valid: float32, "
                             "bfloat16"):
        config_lib.validate(config)
