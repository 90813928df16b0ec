"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=8 (by
tests/test_parallel.py): trains the same configs on an 8-device and a 1-device
mesh, and resumes checkpoints across the two, then prints one JSON object with
the largest relative parameter differences."""
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import loop  # noqa: E402
from gan_jax import experiment


def max_relative_difference(a, b):
    """Largest |a - b| of any leaf, relative to that leaf's largest |b|."""
    worst, where = 0.0, ''
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0],
                            jax.tree.leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.size:
            d = float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30))
            if d > worst:
                worst, where = d, jax.tree_util.keystr(path)
    print(f'worst leaf {where}: {worst:.3g}', file=sys.stderr)
    return worst


def configs():
    from experiments.configs import digits_dcgan
    from test_loop import tiny
    mlp = tiny(num_steps=6)
    mlp.batch_size = 32
    dcgan = digits_dcgan.get_config('smoke')
    dcgan.batch_size = 16
    dcgan.progress = False
    dcgan.evals = {}
    dcgan.best_metric = ''
    return {'mlp': mlp, 'dcgan_bn': dcgan}


def run(config, workdir, devices, steps):
    config = config.copy_and_resolve_references()
    config.parallel.num_devices = devices
    config.num_steps = steps
    return loop.run(config, workdir)


def main():
    assert jax.device_count() == 8, jax.devices()
    out = {}
    tmp = tempfile.mkdtemp()
    for name, config in configs().items():
        n = config.num_steps
        one = run(config, f'{tmp}/{name}_1', 1, n)
        eight = run(config, f'{tmp}/{name}_8', 8, n)
        out[f'{name}/8_vs_1'] = max_relative_difference(eight, one)
        # Checkpoints cross over: the first half on one mesh, the rest on the other.
        run(config, f'{tmp}/{name}_8to1', 8, n // 2)
        out[f'{name}/8_then_1'] = max_relative_difference(
            run(config, f'{tmp}/{name}_8to1', 1, n), one)
        run(config, f'{tmp}/{name}_1to8', 1, n // 2)
        out[f'{name}/1_then_8'] = max_relative_difference(
            run(config, f'{tmp}/{name}_1to8', 8, n), one)
        # Sampling split over the 8-device mesh equals sampling on one device.
        from gan_jax import parallel, sampling
        _, G, _, _, _ = experiment.build(config)
        z = sampling.latents(0, 64, config.model.z_dim)
        out[f'{name}/sampling_8_vs_1'] = max_relative_difference(
            sampling.sample(G, eight.ema_params, eight.g_state, z,
                            mesh=parallel.make_mesh()),
            sampling.sample(G, eight.ema_params, eight.g_state, z))
        saved = json.load(open(f'{tmp}/{name}_8/config.json'))
        out[f'{name}/runtime'] = saved['_runtime']
    print(json.dumps(out))


if __name__ == '__main__':
    main()
