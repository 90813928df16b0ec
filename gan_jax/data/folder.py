"""`folder`: your own images. A directory (searched recursively) or a .zip of
PNG, JPEG and WebP files becomes a TFDS dataset, built once into
`data.data_dir` under a key that hashes the files' names and bytes, and then
served like every other image dataset (`gan_jax.data.images`: in memory as
uint8, the per-epoch permutation of `gan_jax.data.order`, exact resume).

The one preprocessing method: each image is converted to `data.channels`
(1: PIL 'L', 3: PIL 'RGB'; an alpha channel is dropped), center-cropped to
its largest central square, and resized to `data.image_size` with PIL's
antialiased bicubic filter (skipped when the square already has that size).
Images are only ever shrunk: one whose shorter side is below
`data.image_size` is refused.

Labels (`data.labels=True`): the top-level subfolders of `data.path` are the
classes, numbered in sorted order of their names; every image must then lie
in one. The mapping is recorded in the workdir's config.json
(`_runtime.folder.classes`).

Bad input stops with one line naming a file: a missing path, a folder with
no images, a file that cannot be decoded, one too small for the crop, mixed
grayscale and colour images when `data.channels` is 0 (inferred), a folder
whose decoded images would exceed `data.max_memory_gib`. Nothing is skipped:
the dataset is exactly the folder. Files with other extensions, hidden files
(a name starting with '.') and a zip's `__MACOSX/` entries are ignored.
"""
import dataclasses
import functools
import hashlib
import io
import logging
import os
import zipfile
from typing import Dict, List, Tuple

import numpy as np

log = logging.getLogger(__name__)

NAME = 'folder'
EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp')
# Part of the content key: bump it when the preprocessing changes, so that
# existing builds are not reused with a different meaning.
PREPROCESS_VERSION = 1
# PIL modes read as grayscale when data.channels is inferred; every other
# supported mode is colour.
GRAY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'F')


def _data_error(message: str):
    from gan_jax.data.images import DataError
    return DataError(message)


def check(data_config) -> str:
    """'' when the folder keys are valid, else a one-line message naming the
    key (reads no file)."""
    if not data_config.path:
        return ('dataset=folder needs --config.data.path=DIR_OR_ZIP (a folder or '
                '.zip of PNG/JPEG/WebP images)')
    if data_config.image_size <= 0:
        return ('dataset=folder needs --config.data.image_size=N (images are '
                'center-cropped to a square and resized to N x N)')
    if data_config.channels not in (0, 1, 3):
        return (f'data.channels must be 1 (grayscale), 3 (RGB) or 0 (inferred), '
                f'got {data_config.channels}')
    if not data_config.max_memory_gib > 0:
        return f'data.max_memory_gib must be > 0, got {data_config.max_memory_gib}'
    return ''


def _is_image_name(name: str) -> bool:
    parts = name.split('/')
    if any(p.startswith('.') for p in parts) or parts[0] == '__MACOSX':
        return False
    return name.lower().endswith(EXTENSIONS)


def list_images(path: str) -> List[str]:
    """Sorted relative '/'-separated names of the image files under `path`
    (a directory, searched recursively, or a .zip).

    Raises:
      DataError: the path does not exist, is neither a directory nor a zip, or
        holds no image.
    """
    if not os.path.exists(path):
        raise _data_error(f'data.path {path} does not exist')
    if os.path.isdir(path):
        names = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            rel = os.path.relpath(root, path)
            for f in files:
                names.append(f if rel == '.' else f'{rel}/{f}'.replace(os.sep, '/'))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith('/')]
    else:
        raise _data_error(f'data.path {path} is neither a directory nor a .zip file')
    names = sorted(n for n in names if _is_image_name(n))
    if not names:
        raise _data_error(f'no PNG/JPEG/WebP images in {path} (searched recursively)')
    return names


class _Reader:
    """Bytes of the files of a directory or zip, by relative name."""

    def __init__(self, path: str):
        self.path = path
        self.zip = zipfile.ZipFile(path) if os.path.isfile(path) else None

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        with open(os.path.join(self.path, name), 'rb') as f:
            return f.read()

    def close(self):
        if self.zip is not None:
            self.zip.close()


def class_names(names: List[str]) -> List[str]:
    """Sorted names of the top-level subfolders that hold images."""
    return sorted({n.split('/')[0] for n in names if '/' in n})


@dataclasses.dataclass(frozen=True)
class Layout:
    """What get_info needs, from the file list and one image header.

    Attributes:
      names: sorted relative names of the images.
      classes: sorted top-level subfolder names (the classes with labels).
      channels: data.channels, or inferred from the first image's mode.
    """
    names: Tuple[str, ...]
    classes: Tuple[str, ...]
    channels: int


def _mode_channels(mode: str) -> int:
    return 1 if mode in GRAY_MODES else 3


def layout(data_config) -> Layout:
    """The folder's Layout (lists the files, reads at most one header).

    Raises:
      DataError: missing path, no images, or with data.labels an image that
        lies outside every class subfolder.
    """
    names = list_images(data_config.path)
    if data_config.labels:
        loose = [n for n in names if '/' not in n]
        if loose:
            raise _data_error(
                'data.labels=True takes the top-level subfolders of '
                f'{data_config.path} '
                f'as classes, but {len(loose)} images lie outside them (first: '
                f'{loose[0]}); move them into class folders or set data.labels=False')
    channels = data_config.channels
    if not channels:
        from PIL import Image
        reader = _Reader(data_config.path)
        try:
            with Image.open(io.BytesIO(reader.read(names[0]))) as im:
                channels = _mode_channels(im.mode)
        except Exception as e:  # noqa: BLE001 - reported with the file name
            raise _data_error(f'{os.path.join(data_config.path, names[0])}: cannot '
                              f'read the image ({e})') from None
        finally:
            reader.close()
    return Layout(tuple(names), tuple(class_names(names)), int(channels))


def output_shape(data_config) -> Tuple[int, int, int]:
    """(H, W, C) of the folder's images as the pipeline yields them."""
    size = int(data_config.image_size)
    return (size, size, layout(data_config).channels)


def content_key(data_config) -> str:
    """16 hex digits of sha256 over the preprocessing (version, size,
    channels) and every image's relative name and bytes: a folder and a zip
    of the same files share it; any edited, added, removed or renamed image
    changes it."""
    lay = layout(data_config)
    return _content_key(os.path.abspath(data_config.path), lay.names,
                        int(data_config.image_size), lay.channels,
                        _signature(data_config.path, lay.names))


def _signature(path: str, names) -> Tuple:
    """Sizes and modification times: a cheap stand-in that tells the hash
    cache when files changed (the key itself hashes the bytes)."""
    if os.path.isfile(path):
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    out = []
    for n in names:
        st = os.stat(os.path.join(path, n))
        out.append((st.st_size, st.st_mtime_ns))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _content_key(path: str, names: Tuple[str, ...], size: int, channels: int,
                 signature: Tuple) -> str:
    del signature  # only part of the cache key
    digest = hashlib.sha256(f'v{PREPROCESS_VERSION}/{size}/{channels}'.encode())
    reader = _Reader(path)
    try:
        for n in names:
            data = reader.read(n)
            digest.update(f'\0{n}\0{len(data)}\0'.encode())
            digest.update(data)
    finally:
        reader.close()
    return digest.hexdigest()[:16]


def preprocess(image, size: int, channels: int) -> np.ndarray:
    """The one method: PIL image -> uint8 [size, size, channels] in 0..255
    (convert, center square crop, antialiased bicubic resize).

    Raises:
      ValueError: the shorter side is below `size`.
    """
    from PIL import Image
    image = image.convert('L' if channels == 1 else 'RGB')
    w, h = image.size
    side = min(w, h)
    if side < size:
        raise ValueError(f'{w}x{h} is smaller than data.image_size={size} (images '
                         'are center-cropped to a square and only shrunk)')
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.BICUBIC, reducing_gap=None)
    array = np.asarray(image, np.uint8)
    return array[..., None] if array.ndim == 2 else array


def decode_all(data_config, lay: Layout) -> Tuple[np.ndarray, np.ndarray]:
    """Every image of the folder, preprocessed, in sorted name order.

    Returns:
      (images uint8 [N, S, S, C] in 0..255, labels int32 [N]: the class index
      of the top-level subfolder, -1 for an image outside every subfolder).
    Raises:
      DataError: one line: the memory the images would need is over
        data.max_memory_gib, or some files cannot be used (it counts them
        and names the first with its reason).
    """
    from PIL import Image
    path, size = data_config.path, int(data_config.image_size)
    need = len(lay.names) * size * size * lay.channels
    cap = float(data_config.max_memory_gib) * 2**30
    if need > cap:
        raise _data_error(
            f'{path}: {len(lay.names)} images at {size}x{size}x{lay.channels} need '
            f'{need / 2**30:.2f} GiB of memory as uint8, over data.max_memory_gib='
            f'{data_config.max_memory_gib:g}; raise it or lower data.image_size')
    inferred = not data_config.channels
    index = {c: i for i, c in enumerate(lay.classes)}
    images = np.zeros((len(lay.names), size, size, lay.channels), np.uint8)
    labels = np.full((len(lay.names),), -1, np.int32)
    bad = []
    reader = _Reader(path)
    try:
        for i, name in enumerate(lay.names):
            try:
                with Image.open(io.BytesIO(reader.read(name))) as im:
                    im.load()
                    if inferred and _mode_channels(im.mode) != lay.channels:
                        kind = 'grayscale' if lay.channels == 3 else 'colour'
                        raise ValueError(
                            f'mode {im.mode} is {kind} '
                            f'while {lay.names[0]} is not (mixed modes); set '
                            '--config.data.channels=1 or 3 to convert every image')
                    images[i] = preprocess(im, size, lay.channels)
            except Image.UnidentifiedImageError:
                bad.append((name, 'cannot decode it (corrupt, or not an image PIL '
                                  'can read)'))
                continue
            except Exception as e:  # noqa: BLE001 - every file is reported
                reason = str(e) if isinstance(e, ValueError) else \
                    f'cannot decode it ({type(e).__name__}: {e})'
                bad.append((name, reason))
                continue
            if '/' in name:
                labels[i] = index[name.split('/')[0]]
    finally:
        reader.close()
    if bad:
        name, reason = bad[0]
        raise _data_error(f'{len(bad)} of {len(lay.names)} images in {path} cannot be '
                          f'used; first: {name}: {reason}; fix or remove them')
    return images, labels


def _builder_class():
    """The TFDS builder (defined on first use: importing TFDS is slow)."""
    import tensorflow_datasets as tfds

    class FolderImages(tfds.core.GeneratorBasedBuilder):
        """Images of one folder or zip, preprocessed; one config per content key."""

        VERSION = tfds.core.Version('1.0.0')
        RELEASE_NOTES = {'1.0.0': 'center square crop, bicubic resize.'}

        def __init__(self, *, data_config, lay: Layout, key: str, **kwargs):
            self._data_config, self._layout = data_config, lay
            self.decoded = None  # decode_all's arrays, set before preparing
            super().__init__(config=tfds.core.BuilderConfig(name=key), **kwargs)

        def _info(self):
            size = int(self._data_config.image_size)
            return tfds.core.DatasetInfo(
                builder=self,
                description=f'Images of {self._data_config.path}',
                features=tfds.features.FeaturesDict({
                    'image': tfds.features.Image(shape=(size, size,
                                                        self._layout.channels)),
                    'label': tfds.features.Scalar(dtype=np.int64),
                    'name': tfds.features.Text(),
                }),
                metadata=tfds.core.MetadataDict(classes=list(self._layout.classes)),
            )

        def _split_generators(self, dl_manager):
            del dl_manager  # local files only
            images, labels = self.decoded or decode_all(self._data_config,
                                                        self._layout)
            return {'train': self._generate_examples(images, labels)}

        def _generate_examples(self, images, labels):
            for i, name in enumerate(self._layout.names):
                yield name, {'image': images[i], 'label': int(labels[i]), 'name': name}

    return FolderImages


_FOLDER_BUILDER = None


def builder(data_config):
    """The TFDS builder of the folder in data_config (not yet prepared)."""
    from absl import logging as absl_logging
    global _FOLDER_BUILDER
    if _FOLDER_BUILDER is None:  # one class per process: TFDS registers names
        _FOLDER_BUILDER = _builder_class()
    # TFDS warns about every config not listed in BUILDER_CONFIGS; ours are
    # content keys, made on the fly by design.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        return _FOLDER_BUILDER(data_config=data_config, lay=layout(data_config),
                               key=f'k{content_key(data_config)}',
                               data_dir=data_config.data_dir or None)
    finally:
        absl_logging.set_verbosity(verbosity)


@functools.lru_cache(maxsize=4)
def _load(key: str, data_dir: str, data_config_items: Tuple
          ) -> Tuple[np.ndarray, np.ndarray]:
    from ml_collections import ConfigDict
    from gan_jax.data.images import _tf
    data_config = ConfigDict(dict(data_config_items))
    import tensorflow_datasets as tfds
    b = builder(data_config)
    # (TFDS' is_prepared() logs a warning for a variant not yet built.)
    if not os.path.exists(os.path.join(str(b.data_dir), 'dataset_info.json')):
        # Decoded (and every file checked) before TFDS creates a directory,
        # so a bad folder leaves nothing behind.
        lay = layout(data_config)
        b.decoded = decode_all(data_config, lay)
        log.info('building dataset folder %s (%d images, key %s) into %s',
                 data_config.path, len(lay.names), key, b.data_dir)
    tfds.display_progress_bar(False)  # our one log line says what is built
    try:
        b.download_and_prepare()  # decodes the folder once; a no-op when built
    finally:
        tfds.display_progress_bar(True)
    _tf()  # hides every GPU from TensorFlow before tf.data runs
    names, images, labels = [], [], []
    for ex in b.as_dataset(split='train', shuffle_files=False).as_numpy_iterator():
        names.append(ex['name'])
        images.append(ex['image'])
        labels.append(ex['label'])
    order = np.argsort(np.asarray(names, dtype=object))  # sorted name order
    return (np.stack(images)[order], np.asarray(labels, np.int32)[order])


def load_split(data_config) -> Tuple[np.ndarray, np.ndarray]:
    """The whole folder, preprocessed, in sorted name order, built into
    data.data_dir on first use.

    Returns:
      (images uint8 [N, S, S, C] in 0..255, labels int32 [N] in 0..K-1, -1
      for an image outside every class subfolder).
    Raises:
      DataError: see the module docstring.
    """
    items = (('path', data_config.path), ('image_size', int(data_config.image_size)),
             ('channels', int(data_config.channels)),
             ('labels', bool(data_config.labels)),
             ('max_memory_gib', float(data_config.max_memory_gib)),
             ('data_dir', data_config.data_dir))
    return _load(content_key(data_config), data_config.data_dir, items)


def record(data_config) -> Dict:
    """What a workdir records of the folder (config.json `_runtime.folder`):
    path, content key, image count, channels and the class names in label
    order."""
    lay = layout(data_config)
    return {'path': os.path.abspath(data_config.path), 'key': content_key(data_config),
            'num_images': len(lay.names), 'channels': lay.channels,
            'classes': list(lay.classes)}
