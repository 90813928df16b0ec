"""Every experiment config validates and runs 3 update steps with finite
losses (TFDS datasets mocked)."""
import glob
import json
import importlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import config as config_lib, data, experiment, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in
                 glob.glob(os.path.join(ROOT, 'experiments', 'configs', '*.py'))
                 if not p.endswith(('__init__.py', 'common.py')))


def test_all_expected_configs_exist():
    assert {'toy_ring', 'toy_grid', 'digits_dcgan', 'cifar10_dcgan', 'cifar10_wgangp',
            'cifar10_sngan', 'cifar10_cond_sngan', 'celeba64_dcgan', 'celeba64_wgangp',
            'stacked_mnist_dcgan'} <= set(CONFIGS)


# ResNets and 64-pixel networks: compilation alone takes 15-40 s each.
# StyleGAN2: its two compiled branches (lazy penalties) take ~100 s.
SLOW_CONFIGS = ('cifar10_sngan', 'cifar10_cond_sngan', 'cifar10_wgangp',
                'celeba64_dcgan', 'celeba64_wgangp', 'digits_stylegan2',
                'cifar10_stylegan2_ada', 'celeba64_stylegan2')


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CONFIGS else n
    for n in CONFIGS])
def test_config_runs_three_steps(name, tmp_path):
    module = importlib.import_module(f'experiments.configs.{name}')
    assert 'python experiments/train.py' in module.__doc__
    full = module.get_config()
    config_lib.validate(full)
    config = module.get_config('smoke')
    config_lib.validate(config)
    config.data.data_dir = str(tmp_path)
    config.data.prefetch = 0
    with tfds.testing.mock_data(num_examples=16):
        _, G, D, spec, state = experiment.build(config)
        step = train.make_train_step(spec)
        batches = data.make_train_iter(config)
        for _ in range(3):
            state, metrics = step(state, next(batches))
    assert int(state.step) == 3
    for key in ('loss/d', 'loss/g', 'grad_norm/d', 'grad_norm/g'):
        assert np.isfinite(float(metrics[key])), key
    assert int(state.stats['nonfinite_steps']) == 0
    if full.data.labels:
        assert G.num_classes == D.num_classes == 10


def test_keys_added_to_the_schema_later_do_not_block_a_resume():
    config = config_lib.default_config()
    saved = json.loads(config.to_json_best_effort())
    del saved['unroll_steps']  # a run saved before this key existed
    saved['_runtime'] = {'devices': 1}
    assert config_lib.changed_keys(saved, config) == []
    config.unroll_steps = 2
    assert config_lib.changed_keys(saved, config) == ['unroll_steps']


def test_every_package_directory_is_found_by_setup_cfg():
    # setup.cfg installs `packages = find:`, which sees only directories with
    # an __init__.py: a missing one drops that package from `pip install`.
    import setuptools
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = set(setuptools.find_packages(root, include=['gan_jax', 'gan_jax.*']))
    source_dirs = {os.path.relpath(d, root).replace(os.sep, '.')
                   for d, _, files in os.walk(os.path.join(root, 'gan_jax'))
                   if any(f.endswith('.py') for f in files)}
    assert source_dirs and source_dirs <= found, sorted(source_dirs - found)
