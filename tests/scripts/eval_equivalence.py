"""Run by tests/test_inception.py under a forced device count
(XLA_FLAGS=--xla_force_host_platform_device_count=N) or as one of several
processes (GAN_JAX_COORDINATOR, ...; gloo collectives): Inception features,
FID, KID, precision/recall and IS of generated samples against a real split,
with random Inception weights, and the training batches' on-device flip and
conversion. Writes everything it computed to the .npz named by argv[1]
(argv[1] with the process index appended when there are several).

Every process does its share of the evaluation work (gan_jax.metrics.features)
and must end with the same numbers as one process on one device.
"""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from gan_jax import parallel  # noqa: E402

parallel.initialize_distributed()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import config as config_lib, data, metrics  # noqa: E402
from gan_jax.metrics import features, inception  # noqa: E402
from test_inception import random_variables  # noqa: E402

NUM_SAMPLES = 10
REFERENCE_SPLIT = 'test[:12]'  # 12 real digits: Inception is slow on a CPU
BATCH = 4  # images per Inception call: rounded up to 6 on 3 devices, 8 on 8


def sample_fn(num, seed, rows=None):
    """Images [num, 28, 28, 1] in [-1, 1] from the seed: the real digits with
    noise, and every third pure noise (so that precision is neither 0
    nor 1); rows=(lo, hi)
    gives rows lo..hi of the same draw, as a generator's sample_fn would."""
    from gan_jax.data import images as images_lib
    real, _ = images_lib.load_split(config_lib.default_config().data, 'digits',
                                    REFERENCE_SPLIT)
    real = images_lib.to_float(real)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (num, 28, 28, 1)) * rng.uniform(0, 1.5, (num, 1, 1, 1))
    images = np.clip(real[np.arange(num) % len(real)] + noise, -1, 1)
    images[1::3] = rng.uniform(-1, 1, images[1::3].shape)  # and pure noise
    images = images.astype(np.float32)
    return images if rows is None else images[rows[0]:rows[1]]


def collected(x):
    """A global array as one numpy array on every process."""
    if jax.process_count() == 1:
        return np.asarray(x)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def data_check(out):
    config = config_lib.default_config()
    config.dataset = 'digits'
    config.batch_size, config.n_critic = 24, 2  # 24: split by 1, 2, 3 and 8
    config.data.random_flip, config.data.labels = True, True
    config.data.prefetch = 2
    mesh = parallel.make_mesh()
    sharding = parallel.batch_sharding(mesh)
    stream = data.make_train_iter(config, start_step=5, sharding=sharding)
    host = data.host_batches(config, start_step=5)  # the whole global batch
    for k in range(3):
        device, expected = next(stream), next(host)
        assert device['x'].dtype == np.float32 and device['x'].sharding == sharding
        for key in ('x', 'label'):
            out[f'data/{k}/{key}'] = collected(device[key])
            out[f'data/{k}/{key}_host'] = expected[key]
    from gan_jax.data import images
    raw = next(data.host_batches(config, raw=True))
    placed = jax.device_put(raw, sharding) if jax.process_count() == 1 else None
    if placed is not None:
        hlo = images.finisher(sharding).lower(
            placed).compile().as_text()
        out['data/collectives'] = np.asarray(sum(hlo.count(op) for op in (
            'all-reduce', 'all-gather', 'all-to-all', 'collective-permute')))


def main():
    out_path = sys.argv[1]
    if jax.process_count() > 1:
        out_path = out_path.replace('.npz', f'_{jax.process_index()}.npz')
    extractor = inception.FeatureExtractor(random_variables(1), batch_size=BATCH)
    features.get_extractor = lambda name: extractor
    config = config_lib.default_config()
    config.dataset = 'digits'
    info = data.get_info(config)
    args = dict(features='inception', num_samples=NUM_SAMPLES, split=REFERENCE_SPLIT)
    evals = metrics.from_config({'fid': args, 'kid': dict(args, subset_size=5),
                                 'pr': args, 'is': dict(args, splits=2)},
                                info, config)
    out = {'devices': np.asarray(jax.device_count()),
           'local_devices': np.asarray(jax.local_device_count()),
           'processes': np.asarray(jax.process_count()),
           'call_batch': np.asarray(extractor.batch_size)}
    for name, evaluator in evals.items():
        for key, value in evaluator.run(sample_fn):
            out[f'eval/{name}/{key}'] = np.asarray(value)
    fake = features.sample_features(sample_fn, extractor, NUM_SAMPLES, 0)
    out['fake/rows'] = np.asarray(fake.rows)
    out['fake/pool'] = fake['pool']
    out['fake/logits'] = fake['logits']
    out['fake/mean'] = fake.stats('pool').mean()
    out['fake/cov'] = fake.stats('pool').cov()
    reference = features.reference_stats(config.data, 'digits', REFERENCE_SPLIT,
                                         extractor)
    for key, value in reference.items():
        out[f'reference/{key}'] = value
    # The direct call: this process's devices only, no collective.
    out['direct/pool'] = extractor(sample_fn(NUM_SAMPLES, 0))['pool']
    data_check(out)
    np.savez(out_path, **out)
    print('wrote', out_path, file=sys.stderr)


if __name__ == '__main__':
    os.environ.setdefault('GAN_JAX_CACHE', tempfile.mkdtemp())
    main()
