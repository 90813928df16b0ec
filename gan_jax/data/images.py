"""Image datasets through TFDS: cifar10 (32x32), celeb_a (center crop, then
resize, 64x64 by default), mnist and the offline `digits` (28x28, or zero
padded to 32x32), and Stacked MNIST (Srivastava et al. 2017) built from either.

A split is read once through tfds/tf.data, preprocessed to its final size and
kept decoded in memory as uint8; batches are then gathered by position from a
per-epoch permutation of the seed. So the stream is a pure function of (config,
position), which gives exact resume and is far faster than the update step.
TensorFlow is only used here, and is hidden from any accelerator.

Training batches leave the host as uint8 with the flip decisions beside them
(`raw_batches`); `finish_on_device` flips and scales them on the mesh, with
the same result as the host's `finish_on_host`, bit for bit.
"""
import functools
import socket
from typing import Dict, Iterator, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import order

TFDS_DATASETS = ('cifar10', 'celeb_a', 'mnist', 'digits')
# 'folder' (gan_jax/data/folder.py): your own images, built into a TFDS
# dataset of its own.
IMAGE_DATASETS = TFDS_DATASETS + ('stacked_mnist', 'folder')
NATIVE_SHAPE = {'cifar10': (32, 32, 3), 'celeb_a': (218, 178, 3),
                'mnist': (28, 28, 1), 'digits': (28, 28, 1)}
DEFAULT_SIZE = {'cifar10': 32, 'celeb_a': 64, 'mnist': 28, 'digits': 28,
                'stacked_mnist': 28}
NUM_CLASSES = {'cifar10': 10, 'mnist': 10, 'digits': 10, 'celeb_a': 40,
               'stacked_mnist': 1000}
DIGIT_DATASETS = ('mnist', 'digits')
# Where a download would come from; probed so that an offline machine fails in
# seconds instead of retrying for minutes.
DOWNLOAD_HOSTS = (('storage.googleapis.com', 443), ('drive.google.com', 443))


class DataError(RuntimeError):
    """A dataset is missing or cannot be prepared; the message says how."""


def _tf():
    """TensorFlow, with every GPU hidden from it (JAX owns the accelerator)."""
    import tensorflow as tf
    tf.config.set_visible_devices([], 'GPU')
    return tf


def image_size(data_config, name: str) -> int:
    """The configured output size, or the dataset's default."""
    return data_config.image_size or DEFAULT_SIZE[name]


def output_shape(data_config, name: str) -> Tuple[int, int, int]:
    """(H, W, C) of the images the pipeline yields."""
    if name == 'folder':
        from gan_jax.data import folder
        return folder.output_shape(data_config)
    size = image_size(data_config, name)
    channels = 3 if name in ('cifar10', 'celeb_a', 'stacked_mnist') else 1
    return (size, size, channels)


def network_available(timeout: float = 3.0) -> bool:
    """True when a TFDS download host accepts a TCP connection."""
    for host, port in DOWNLOAD_HOSTS:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _prepare_instructions(name: str, data_dir: str) -> str:
    where = data_dir or '~/tensorflow_datasets'
    if name == 'celeb_a':
        return (f'prepare it where there is internet with `tfds build celeb_a '
                f'--data_dir {where}`; when Google Drive refuses the download '
                '(quota), fetch img_align_celeba.zip, list_eval_partition.txt, '
                'list_attr_celeba.txt and list_landmarks_align_celeba.txt by hand '
                f'and run `python scripts/prepare_celeba.py --manual_dir DIR '
                f'--data_dir {where}`; then pass --config.data.data_dir={where}')
    return (f'prepare it where there is internet with `tfds build {name} '
            f'--data_dir {where}`, copy that directory here and pass '
            f'--config.data.data_dir={where}')


def _tfds_load(name: str, split: str, data_dir: str, download: bool):
    """tfds.load that never hangs offline: DataError with instructions."""
    import tensorflow_datasets as tfds
    if name == 'digits':
        from gan_jax.data import digits  # registers the builder
        builder = digits.Digits(data_dir=data_dir or None)
        builder.download_and_prepare()  # local csv, no network; no-op when built
        return builder.as_dataset(split=split)
    kwargs = dict(split=split, data_dir=data_dir or None)
    try:
        return tfds.load(name, download=False, **kwargs)
    except AssertionError:  # TFDS' way of saying "not prepared in data_dir"
        pass
    if not download or not network_available():
        reason = 'downloads are off (data.download=False)' if not download else \
            'the download hosts cannot be reached'
        raise DataError(f'dataset {name!r} is not prepared in '
                        f'{data_dir or "the TFDS default directory"} and {reason}: '
                        + _prepare_instructions(name, data_dir))
    return tfds.load(name, download=True, **kwargs)


def _preprocess(name: str, data_config):
    """tf function: one TFDS example -> (uint8 [H, W, C], int32 label(s))."""
    tf = _tf()
    size = image_size(data_config, name)
    native = NATIVE_SHAPE[name]

    def fn(example):
        image = example['image']
        if name == 'celeb_a':
            crop = data_config.crop
            top, left = (native[0] - crop) // 2, (native[1] - crop) // 2
            image = image[top:top + crop, left:left + crop]
        h = image.shape[0] if image.shape[0] is not None else native[0]
        if name in DIGIT_DATASETS and size > h and (size - h) % 2 == 0:
            pad = (size - h) // 2  # digits reach 32x32 by zero (black) padding
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        elif size != h or name == 'celeb_a':
            image = tf.image.resize(tf.cast(image, tf.float32), (size, size),
                                    method='bilinear', antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        if name == 'celeb_a':
            attrs = example['attributes']
            label = tf.stack([tf.cast(attrs[k], tf.int32) for k in sorted(attrs)])
        else:
            label = tf.cast(example['label'], tf.int32)
        return image, label
    return fn


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, split: str, data_dir: str, download: bool,
                 size: int, crop: int):
    from ml_collections import ConfigDict
    data_config = ConfigDict(dict(image_size=size, crop=crop))
    tf = _tf()
    ds = _tfds_load(name, split, data_dir, download)
    ds = ds.map(_preprocess(name, data_config), num_parallel_calls=tf.data.AUTOTUNE)
    images, labels = [], []
    for image, label in ds.batch(1024).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    if not images:
        raise DataError(f'split {split!r} of {name!r} is empty')
    return np.concatenate(images), np.concatenate(labels)


def load_split(data_config, name: str, split: Optional[str] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """A whole split, decoded and preprocessed, in TFDS order.

    Args:
      data_config: config.data (data_dir, split, image_size, crop, download).
      name: one of TFDS_DATASETS.
      split: TFDS split string; default data_config.split.
    Returns:
      (images uint8 [N, H, W, C] in 0..255, labels int32 [N], or [N, 40]
      attribute bits for celeb_a).
    Raises:
      DataError: the dataset is not prepared and cannot be downloaded.
    """
    if name == 'folder':  # one split: every image of data.path
        from gan_jax.data import folder
        return folder.load_split(data_config)
    size = image_size(data_config, name)
    crop = data_config.crop if name == 'celeb_a' else 0
    return _load_cached(name, split or data_config.split, data_config.data_dir,
                        bool(data_config.download), size, crop)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, C] in 0..255 -> float32 in [-1, 1]."""
    return images.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images [..., H, W, C] in [-1, 1] -> uint8 in 0..255: the
    quantisation generated images get when written as PNG. The nearest level,
    computed in float64 (so no float32 product rounds across a half level);
    the exact inverse of `to_float`: to_uint8(to_float(u)) == u for every u."""
    levels = (np.asarray(images, np.float64) + 1.0) * 127.5
    return np.clip(np.round(levels), 0, 255).astype(np.uint8)


# to_float of every uint8 value: the device looks pixels up in this table, so
# its floats are the host's by construction (an on-device x * (2/255) - 1 may
# be contracted into one fused multiply-add and round differently).
_FLOAT_OF_UINT8 = to_float(np.arange(256, dtype=np.uint8))


def raw_batches(config, *, start_batch: int = 0, process_index: int = 0,
                process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
    """Endless image batches as stored: this process's slice of each global
    batch, uint8, with the flips to apply (see `batches` for the finished form).

    Args:
      config: run config (dataset, data.*, seed, batch_size, n_critic).
      start_batch: index of the first global batch (= start step).
      process_index, process_count: this host's place among the hosts; the
        global batch of each update is split into contiguous slices.
    Yields:
      {'x': uint8 [n_critic, B / process_count, H, W, C] in 0..255,
       'flip': bool [n_critic, B / process_count] (only with
       data.random_flip: True mirrors that image left-right; drawn from
       (seed, batch index), so a resumed run flips as an uninterrupted one),
       'label': int32 [n_critic, B / process_count] (or [..., 40] for
       celeb_a), the latter only when config.data.labels}.
    """
    name, dc = config.dataset, config.data
    per_update = config.batch_size
    local = per_update // process_count
    lo, hi = process_index * local, (process_index + 1) * local
    if name == 'stacked_mnist':
        source = dc.stacked_source
        images, labels = load_split(dc, source)
    else:
        images, labels = load_split(dc, name)
    index = start_batch
    while True:
        batch = {}
        if name == 'stacked_mnist':
            # Three independent digits per example, one per channel.
            rng = np.random.default_rng([config.seed, 5, index])
            picks = rng.integers(0, len(images), size=(config.n_critic, per_update, 3))
            picks = picks[:, lo:hi]
            x = np.concatenate([images[picks[..., c]] for c in range(3)], axis=-1)
            y = (labels[picks[..., 0]] * 100 + labels[picks[..., 1]] * 10
                 + labels[picks[..., 2]])
        else:
            size = config.n_critic * per_update
            idx = order.epoch_indices(len(images), config.seed, index * size, size)
            idx = idx.reshape(config.n_critic, per_update)[:, lo:hi]
            x, y = images[idx], labels[idx]
            if dc.random_flip:
                batch['flip'] = np.random.default_rng([config.seed, 4, index]).random(
                    (config.n_critic, per_update))[:, lo:hi] < 0.5
        batch['x'] = x
        if dc.labels:
            batch['label'] = y.astype(np.int32)
        yield batch
        index += 1


def finish_on_host(raw: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """A `raw_batches` batch flipped and scaled on the host (numpy): {'x':
    float32 [..., H, W, C] in [-1, 1]} (+ 'label'), without 'flip'."""
    x = raw['x']
    if 'flip' in raw:
        x = np.where(raw['flip'][..., None, None, None], x[..., ::-1, :], x)
    batch = {'x': to_float(x)}
    if 'label' in raw:
        batch['label'] = raw['label']
    return batch


def _finish(raw):
    x = raw['x']
    if 'flip' in raw:
        x = jnp.where(raw['flip'][..., None, None, None], x[..., ::-1, :], x)
    batch = {'x': jnp.asarray(_FLOAT_OF_UINT8)[x.astype(jnp.int32)]}
    if 'label' in raw:
        batch['label'] = raw['label']
    return batch


@functools.lru_cache(maxsize=None)
def finisher(sharding: Optional[jax.sharding.Sharding]):
    """The jitted function `finish_on_device` calls (one per sharding; public
    so that tests can read its compiled program)."""
    # Every output keeps the batch sharding (axis 1 split over 'data'): the
    # flip reverses axis -2 and the table lookup is per pixel, so each device
    # works on its own rows and the program has no collective.
    if sharding is None:
        return jax.jit(_finish)
    return jax.jit(_finish, out_shardings=sharding)


def finish_on_device(raw: Dict[str, jax.Array],
                     sharding: Optional[jax.sharding.Sharding] = None
                     ) -> Dict[str, jax.Array]:
    """`finish_on_host`, as a small jitted step on device arrays (a batch just
    placed on the mesh): the same values bit for bit.

    Args:
      raw: a `raw_batches` batch as (global) jax arrays: 'x' uint8
        [n_critic, B, H, W, C], optional 'flip' bool [n_critic, B] and 'label'.
      sharding: of every output (the batch sharding); None lets jit choose.
    Returns:
      {'x': float32 [n_critic, B, H, W, C] in [-1, 1]} (+ 'label').
    """
    return finisher(sharding)(raw)


def batches(config, *, start_batch: int = 0, process_index: int = 0,
            process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
    """Endless image batches; each is this process's slice of a global batch,
    finished on the host (`raw_batches`, then `finish_on_host`).

    Args:
      config: run config (dataset, data.*, seed, batch_size, n_critic).
      start_batch: index of the first global batch (= start step).
      process_index, process_count: this host's place among the hosts; the
        global batch of each update is split into contiguous slices.
    Yields:
      {'x': float32 [n_critic, B / process_count, H, W, C] in [-1, 1],
       'label': int32 [n_critic, B / process_count] (or [..., 40] for
       celeb_a), the latter only when config.data.labels}.
    """
    for raw in raw_batches(config, start_batch=start_batch,
                           process_index=process_index, process_count=process_count):
        yield finish_on_host(raw)
