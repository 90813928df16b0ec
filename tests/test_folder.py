"""dataset=folder: your own images (a directory or a zip) built once through
TFDS under a content key, served like every image dataset, and its bad
inputs, each refused in one line."""
import os
import zipfile

import jax
import numpy as np
import pytest
from PIL import Image

from experiments.configs import digits_dcgan
from gan_jax import config as config_lib, data, loop
from gan_jax.data import digits, folder, images
import helpers
from helpers import ROOT

PER_CLASS = 30  # 300 images: 30 batches of 10 per epoch


def write_digit_folder(root):
    """PER_CLASS train digits of each class as RGB PNGs in digit_<c>/ folders;
    returns (uint8 [N, 28, 28, 3] and labels [N]) in sorted file-name order."""
    x, y = digits.read_csv()
    train = digits.split_indices(y, 'train')
    expected = []
    for c in range(10):
        os.makedirs(os.path.join(root, f'digit_{c}'))
        for i in train[y[train] == c][:PER_CLASS]:
            rgb = np.repeat(x[i], 3, axis=-1)
            Image.fromarray(rgb).save(os.path.join(root, f'digit_{c}', f'{i:04d}.png'))
            expected.append((f'digit_{c}/{i:04d}.png', rgb, c))
    expected.sort(key=lambda e: e[0])
    return np.stack([e[1] for e in expected]), np.array([e[2] for e in expected])


def zip_folder(root, path):
    with zipfile.ZipFile(path, 'w') as z:
        for dirpath, _, files in os.walk(root):
            for f in files:
                full = os.path.join(dirpath, f)
                z.write(full, os.path.relpath(full, root))
    return path


@pytest.fixture(scope='module')
def digit_folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('digits_png') / 'images')
    expected = write_digit_folder(root)
    zipped = zip_folder(root, str(tmp_path_factory.mktemp('digits_zip') / 'images.zip'))
    return root, zipped, expected


def folder_config(path, data_dir, **data_kw):
    config = config_lib.default_config()
    config.dataset = 'folder'
    config.batch_size = 10
    config.data.path = str(path)
    config.data.image_size = 28
    config.data.data_dir = str(data_dir)
    config.data.prefetch = 0
    for k, v in data_kw.items():
        config.data[k] = v
    return config


def builds(data_dir):
    root = os.path.join(data_dir, 'folder_images')
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_folder_and_zip_give_the_pngs_exactly_with_sorted_class_labels(
        digit_folder, tmp_path):
    root, zipped, (expected_x, expected_y) = digit_folder
    config = folder_config(root, tmp_path / 'a', labels=True)
    config_lib.validate(config)
    info = data.get_info(config)
    assert info.shape == (28, 28, 3) and info.num_classes == 10
    assert info.extras['classes'] == tuple(f'digit_{c}' for c in range(10))
    x, y = images.load_split(config.data, 'folder')
    np.testing.assert_array_equal(x, expected_x)  # PNG is lossless, 28 px: no resize
    np.testing.assert_array_equal(y, expected_y)
    from_zip = folder_config(zipped, tmp_path / 'b', labels=True)
    zx, zy = images.load_split(from_zip.data, 'folder')
    np.testing.assert_array_equal(zx, x)
    np.testing.assert_array_equal(zy, y)
    # The key hashes names and bytes, not the container.
    assert folder.content_key(from_zip.data) == folder.content_key(config.data)
    assert folder.record(config.data)['classes'] == [f'digit_{c}' for c in range(10)]


def test_an_unchanged_folder_is_not_rebuilt_and_an_edited_one_is(tmp_path):
    root = tmp_path / 'images'
    root.mkdir()
    for i in range(4):
        Image.fromarray(np.full((28, 28), 60 * i, np.uint8)).save(root / f'{i}.png')
    config = folder_config(root, tmp_path / 'tfds')
    x, _ = images.load_split(config.data, 'folder')
    assert x.shape == (4, 28, 28, 1) and len(builds(config.data.data_dir)) == 1
    folder._load.cache_clear()  # a new process: only the disk is left
    built = os.path.join(config.data.data_dir, 'folder_images',
                         builds(config.data.data_dir)[0])
    before = os.stat(built).st_mtime_ns
    again, _ = images.load_split(config.data, 'folder')
    np.testing.assert_array_equal(again, x)
    assert len(builds(config.data.data_dir)) == 1
    assert os.stat(built).st_mtime_ns == before
    Image.fromarray(np.full((28, 28), 7, np.uint8)).save(root / '2.png')  # edited
    edited, _ = images.load_split(config.data, 'folder')
    assert len(builds(config.data.data_dir)) == 2
    assert (edited[2] == 7).all() and np.array_equal(edited[[0, 1, 3]], x[[0, 1, 3]])


def test_center_square_crop_then_shrink_and_channel_conversion(tmp_path):
    root = tmp_path / 'images'
    root.mkdir()
    # 48 wide, 32 high: a gray central 32x32 square between red bands 8 wide.
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :8] = rgb[:, 40:] = (255, 0, 0)
    rgb[:, 8:40] = 90
    Image.fromarray(rgb).save(root / 'wide.png')
    Image.fromarray(np.full((20, 16), 200, np.uint8)).save(root / 'tall.jpg',
                                                           quality=100)
    config = folder_config(root, tmp_path / 'tfds', image_size=16, channels=3)
    x, _ = images.load_split(config.data, 'folder')
    assert x.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(x[1], 90)  # the bands are cropped away
    assert np.abs(x[0].astype(int) - 200).max() <= 1  # JPEG; gray -> RGB
    gray = folder_config(root, tmp_path / 'tfds', image_size=16, channels=1)
    g, _ = images.load_split(gray.data, 'folder')
    assert g.shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(g[1], 90)  # equal channels: luma = the value
    # Shrinking a smooth image keeps its mean (antialiased resize).
    assert data.get_info(gray).shape == (16, 16, 1)


def test_folder_batches_cover_each_epoch_once_and_resume_mid_epoch(digit_folder,
                                                                   tmp_path):
    root, _, (expected_x, _) = digit_folder
    config = folder_config(root, tmp_path, labels=True)
    stream = data.host_batches(config)
    batches = [next(stream) for _ in range(35)]  # an epoch is 30 batches of 10
    first_epoch = np.concatenate([images.to_uint8(b['x'][0]) for b in batches[:30]])
    key = lambda a: sorted(im.tobytes() for im in a)  # noqa: E731
    assert key(first_epoch) == key(expected_x)
    for start in (11, 29):  # mid-epoch, and across the epoch boundary
        resumed = data.host_batches(config, start_step=start)
        for k in range(start, 35):
            b = next(resumed)
            np.testing.assert_array_equal(b['x'], batches[k]['x'])
            np.testing.assert_array_equal(b['label'], batches[k]['label'])


def leaves(state):
    return [np.asarray(v) for v in jax.tree.leaves(state)]


def folder_run(path, data_dir, num_steps):
    config = digits_dcgan.get_config('smoke')
    config.dataset = 'folder'
    config.data.path = str(path)
    config.data.image_size = 28
    config.data.labels = True
    config.data.data_dir = str(data_dir)
    config.evals = {}
    config.best_metric = ''
    config.num_steps = num_steps
    config.progress = False
    return config


@pytest.mark.slow
def test_training_on_a_zip_with_labels_resumes_exactly_mid_epoch(digit_folder, tmp_path):
    _, zipped, _ = digit_folder
    straight = loop.run(folder_run(zipped, tmp_path / 'tfds', 6), str(tmp_path / 'a'))
    workdir = str(tmp_path / 'b')
    loop.run(folder_run(zipped, tmp_path / 'tfds', 3), workdir)  # batch 3 of 37
    resumed = loop.run(folder_run(zipped, tmp_path / 'tfds', 6), workdir)
    assert int(resumed.step) == 6
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    import json
    saved = json.load(open(os.path.join(workdir, 'config.json')))
    assert saved['_runtime']['folder']['classes'] == [f'digit_{c}' for c in range(10)]
    assert saved['_runtime']['folder']['num_images'] == 10 * PER_CLASS


# --- bad input: one line each --------------------------------------------------

def make(root, files):
    os.makedirs(root, exist_ok=True)
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, bytes):
            with open(path, 'wb') as f:
                f.write(content)
        else:
            Image.fromarray(content).save(path)
    return root


GRAY = np.full((28, 28), 128, np.uint8)
RGB = np.full((28, 28, 3), 128, np.uint8)


@pytest.mark.parametrize('files, kw, message', [
    ({'a.png': GRAY, 'b.png': b'not a png at all'}, {},
     '1 of 2 images in {root} cannot be used; first: b.png: cannot decode it'),
    ({'a.png': GRAY, 'small.png': np.zeros((20, 40), np.uint8)}, {},
     '1 of 2 images in {root} cannot be used; first: small.png: 40x20 is smaller '
     'than data.image_size=28'),
    ({'a.png': RGB, 'b.png': GRAY, 'c.png': GRAY}, {},
     '2 of 3 images in {root} cannot be used; first: b.png: mode L is grayscale '
     'while a.png is not (mixed modes); set --config.data.channels=1 or 3'),
    ({'notes.txt': b'hello'}, {},
     'no PNG/JPEG/WebP images in {root} (searched recursively)'),
    ({'a/x.png': GRAY, 'loose.png': GRAY}, {'labels': True},
     'but 1 images lie outside them (first: loose.png); move them into class '
     'folders or set data.labels=False'),
    ({'a.png': GRAY, 'b.png': GRAY}, {'max_memory_gib': 1e-6},
     '{root}: 2 images at 28x28x1 need 0.00 GiB of memory as uint8, over '
     'data.max_memory_gib=1e-06; raise it or lower data.image_size'),
])
def test_bad_folders_fail_with_one_line_naming_the_file(tmp_path, files, kw, message):
    root = make(str(tmp_path / 'images'), files)
    config = folder_config(root, tmp_path / 'tfds', **kw)
    with pytest.raises(data.DataError) as e:
        data.check_available(config)
    text = str(e.value)
    assert '\n' not in text and message.format(root=root) in text, text
    assert builds(tmp_path / 'tfds') == []  # nothing half-built is left to reuse


def test_mixed_modes_are_converted_when_channels_is_set(tmp_path):
    root = make(str(tmp_path / 'images'), {'a.png': RGB, 'b.png': GRAY})
    x, _ = images.load_split(folder_config(root, tmp_path / 'tfds', channels=3).data,
                             'folder')
    np.testing.assert_array_equal(x, 128)


def test_missing_path_and_missing_keys_are_one_line(tmp_path):
    config = folder_config(tmp_path / 'nowhere', tmp_path / 'tfds')
    with pytest.raises(data.DataError, match=r'^data.path .*nowhere does not exist$'):
        data.get_info(config)
    config.data.path = ''
    with pytest.raises(config_lib.ConfigError, match='dataset=folder needs '
                       '--config.data.path=DIR_OR_ZIP'):
        config_lib.validate(config)
    config.data.path, config.data.image_size = str(tmp_path), 0
    with pytest.raises(config_lib.ConfigError, match='needs --config.data.image_size'):
        config_lib.validate(config)


def test_digit_features_on_rgb_folder_fail_at_start_up_naming_the_key(digit_folder,
                                                                      tmp_path):
    from gan_jax import metrics
    root, _, _ = digit_folder
    config = folder_config(root, tmp_path)
    with pytest.raises(ValueError, match='digit features read one-channel images, but '
                       "dataset 'folder' gives 3 channels: set --config.data.channels=1"):
        metrics.from_config({'fid': {'features': 'digits'}}, data.get_info(config),
                            config)


def launch(script, *args):
    return helpers.launch(script, *args, timeout=300)


@pytest.mark.slow
def test_cli_bad_folder_exits_2_with_one_line_and_writes_no_workdir(tmp_path):
    config = os.path.join(ROOT, 'experiments/configs/digits_dcgan.py') + ':smoke'
    corrupt = make(str(tmp_path / 'corrupt'),
                   {'a.png': GRAY, 'b.png': b'\x89PNG broken'})
    empty = make(str(tmp_path / 'empty'), {})
    for path, message in ((corrupt, 'first: b.png: cannot decode it'),
                          (empty, f'no PNG/JPEG/WebP images in {empty}'),
                          (str(tmp_path / 'missing'), 'does not exist')):
        workdir = str(tmp_path / 'run')
        result = launch('train.py', '--config', config, '--workdir', workdir,
                        '--config.dataset=folder', f'--config.data.path={path}',
                        '--config.data.image_size=28', '--config.evals=none',
                        f'--config.data.data_dir={tmp_path / "tfds"}')
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
        assert message in lines[0], lines[0]
        assert not os.path.exists(workdir)


def test_inception_features_without_weights_fail_at_start_up(digit_folder, tmp_path,
                                                             monkeypatch):
    from gan_jax import metrics
    from gan_jax.metrics import features
    monkeypatch.setenv('GAN_JAX_INCEPTION', str(tmp_path / 'absent.npz'))
    features.get_extractor.cache_clear()
    root, _, _ = digit_folder
    config = folder_config(root, tmp_path)
    try:
        with pytest.raises(ValueError, match=r"^features='inception': FID Inception "
                           r'weights not found at .*absent.npz .*convert_inception_'
                           r"weights.py.* Or use features='digits'"):
            metrics.from_config({'fid': {'features': 'inception'}},
                                data.get_info(config), config)
    finally:
        features.get_extractor.cache_clear()


def test_resuming_on_an_edited_folder_is_refused(tmp_path):
    from gan_jax import experiment, workdir as workdir_lib
    root = make(str(tmp_path / 'images'), {'a.png': GRAY, 'b.png': GRAY})
    config = folder_run(root, tmp_path / 'tfds', 6)
    config.data.labels = False
    workdir = str(tmp_path / 'run')
    prepared = experiment.prepare(config, workdir)
    workdir_lib.Workdir(workdir).write_config(config, prepared.runtime)
    experiment.prepare(config, workdir)  # unchanged: resumes
    make(root, {'b.png': np.full((28, 28), 3, np.uint8)})
    with pytest.raises(config_lib.ConfigError, match=r'was trained on the images of '
                       r'.* with content key [0-9a-f]{16}; they have changed since'):
        experiment.prepare(config, workdir)
    config.allow_config_change = True
    experiment.prepare(config, workdir)
