"""The FID Inception network (pytorch-fid's `fid_inception_v3`) in Flax linen.

FID, KID and IS are only comparable across papers when computed with the same
network: the TensorFlow graph `inception-2015-12-05` of the original FID code,
which pytorch-fid and torch-fidelity reproduce in PyTorch. `InceptionV3` is that
architecture layer for layer (torchvision's InceptionV3 with 1008 classes, no
auxiliary head, and the FID patches: average pools that ignore the padding,
and a max pool in the last block's pool branch), in NHWC. Its parameters keep
the torch names (`Mixed_5b/branch1x1/conv/kernel` is `Mixed_5b.branch1x1.conv.weight`),
so `convert_torch_state_dict` is a mechanical mapping of pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`; `scripts/convert_inception_weights.py`
writes the converted weights to `default_weights_path()`.

Resizing is PyTorch bilinear, as pytorch-fid (`F.interpolate(mode='bilinear',
align_corners=False)`: half-pixel centres, no antialiasing when shrinking).
torch-fidelity and the TensorFlow code resize like TensorFlow 1.x instead
(no half-pixel offset), which changes the features of small images slightly, so
numbers match pytorch-fid's, not theirs, unless images are already 299×299.

Features are `pool` (the 2048-d global average pool, pytorch-fid's block 3,
used by FID/KID/precision-recall) and `logits` (1008-d, for the inception
score).
"""
import functools
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax import parallel
from gan_jax.ops import xla_options

INPUT_SIZE = 299
NUM_CLASSES = 1008
POOL_DIM = 2048
WEIGHTS_ENV = 'GAN_JAX_INCEPTION'
TORCH_WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
TORCH_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/'
                     'fid_weights/' + TORCH_WEIGHTS_FILE)

IntPair = Union[int, Tuple[int, int]]


def _pair(value: IntPair) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _valid_counts(size: int) -> np.ndarray:
    """[size] number of in-bounds taps of a 3-wide, padding-1 window at each
    output position (2 at the borders, 3 inside)."""
    index = np.arange(size)
    return np.minimum(index + 1, size - 1) - np.maximum(index - 1, 0) + 1


def avg_pool_3x3_exclude_pad(x: jnp.ndarray) -> jnp.ndarray:
    """3×3, stride 1, padding 1 average pool that divides by the number of
    in-bounds pixels (torch `count_include_pad=False`, as TensorFlow's
    SAME-padded pool), so border outputs are not pulled towards zero.

    Args:
      x: [N, H, W, C] float.
    Returns:
      [N, H, W, C], same dtype.
    """
    summed = jax.lax.reduce_window(x, jnp.zeros((), x.dtype), jax.lax.add,
                                   (1, 3, 3, 1), (1, 1, 1, 1),
                                   ((0, 0), (1, 1), (1, 1), (0, 0)))
    # Static shapes: the divisor is a constant computed once at trace time.
    counts = np.outer(_valid_counts(x.shape[1]), _valid_counts(x.shape[2]))
    return summed / jnp.asarray(counts[None, :, :, None], x.dtype)


def _max_pool_3x3_stride2(x: jnp.ndarray) -> jnp.ndarray:
    # torch MaxPool2d(3, stride=2): no padding, floor mode.
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


class BasicConv2d(nn.Module):
    """Conv without bias, BatchNorm (eps 1e-3, running statistics), ReLU.

    Padding is explicit per side (torch's symmetric `padding`), never 'SAME',
    which for stride 2 would pad differently from torch.
    """
    features: int
    kernel_size: IntPair
    strides: IntPair = 1
    padding: IntPair = 0

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C_in] -> [N, H', W', features], values ≥ 0."""
        pad_h, pad_w = _pair(self.padding)
        x = nn.Conv(self.features, _pair(self.kernel_size), _pair(self.strides),
                    padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False,
                    name='conv')(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
        return nn.relu(x)


class InceptionA(nn.Module):
    """pytorch-fid's FIDInceptionA (Mixed_5b/c/d): [N, 35, 35, C] ->
    [N, 35, 35, 224 + pool_features]."""
    pool_features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C] -> [N, H, W, 224 + pool_features]."""
        branch1x1 = BasicConv2d(64, 1, name='branch1x1')(x)
        branch5x5 = BasicConv2d(48, 1, name='branch5x5_1')(x)
        branch5x5 = BasicConv2d(64, 5, padding=2, name='branch5x5_2')(branch5x5)
        branch3x3dbl = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1,
                                   name='branch3x3dbl_2')(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, padding=1,
                                   name='branch3x3dbl_3')(branch3x3dbl)
        branch_pool = BasicConv2d(self.pool_features, 1, name='branch_pool')(
            avg_pool_3x3_exclude_pad(x))
        return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool],
                               axis=-1)


class InceptionB(nn.Module):
    """torchvision's InceptionB (Mixed_6a), reduction: [N, 35, 35, C] ->
    [N, 17, 17, 480 + C]."""

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C] -> [N, (H-3)//2+1, (W-3)//2+1, 480 + C]."""
        branch3x3 = BasicConv2d(384, 3, strides=2, name='branch3x3')(x)
        branch3x3dbl = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1,
                                   name='branch3x3dbl_2')(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, strides=2,
                                   name='branch3x3dbl_3')(branch3x3dbl)
        branch_pool = _max_pool_3x3_stride2(x)
        return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class InceptionC(nn.Module):
    """pytorch-fid's FIDInceptionC (Mixed_6b..e): [N, 17, 17, C] ->
    [N, 17, 17, 768]."""
    channels_7x7: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C] -> [N, H, W, 768]."""
        c7 = self.channels_7x7
        branch1x1 = BasicConv2d(192, 1, name='branch1x1')(x)
        branch7x7 = BasicConv2d(c7, 1, name='branch7x7_1')(x)
        branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3),
                                name='branch7x7_2')(branch7x7)
        branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0),
                                name='branch7x7_3')(branch7x7)
        branch7x7dbl = BasicConv2d(c7, 1, name='branch7x7dbl_1')(x)
        branch7x7dbl = BasicConv2d(c7, (7, 1), padding=(3, 0),
                                   name='branch7x7dbl_2')(branch7x7dbl)
        branch7x7dbl = BasicConv2d(c7, (1, 7), padding=(0, 3),
                                   name='branch7x7dbl_3')(branch7x7dbl)
        branch7x7dbl = BasicConv2d(c7, (7, 1), padding=(3, 0),
                                   name='branch7x7dbl_4')(branch7x7dbl)
        branch7x7dbl = BasicConv2d(192, (1, 7), padding=(0, 3),
                                   name='branch7x7dbl_5')(branch7x7dbl)
        branch_pool = BasicConv2d(192, 1, name='branch_pool')(
            avg_pool_3x3_exclude_pad(x))
        return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool],
                               axis=-1)


class InceptionD(nn.Module):
    """torchvision's InceptionD (Mixed_7a), reduction: [N, 17, 17, C] ->
    [N, 8, 8, 512 + C]."""

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C] -> [N, (H-3)//2+1, (W-3)//2+1, 512 + C]."""
        branch3x3 = BasicConv2d(192, 1, name='branch3x3_1')(x)
        branch3x3 = BasicConv2d(320, 3, strides=2, name='branch3x3_2')(branch3x3)
        branch7x7x3 = BasicConv2d(192, 1, name='branch7x7x3_1')(x)
        branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3),
                                  name='branch7x7x3_2')(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0),
                                  name='branch7x7x3_3')(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, 3, strides=2,
                                  name='branch7x7x3_4')(branch7x7x3)
        branch_pool = _max_pool_3x3_stride2(x)
        return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class InceptionE(nn.Module):
    """pytorch-fid's FIDInceptionE_1 (pool='avg', Mixed_7b) and FIDInceptionE_2
    (pool='max', Mixed_7c; the TF graph max-pools there): [N, 8, 8, C] ->
    [N, 8, 8, 2048]."""
    pool: str = 'avg'

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [N, H, W, C] -> [N, H, W, 2048]."""
        branch1x1 = BasicConv2d(320, 1, name='branch1x1')(x)
        branch3x3 = BasicConv2d(384, 1, name='branch3x3_1')(x)
        branch3x3 = jnp.concatenate([
            BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(branch3x3),
            BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(branch3x3),
        ], axis=-1)
        branch3x3dbl = BasicConv2d(448, 1, name='branch3x3dbl_1')(x)
        branch3x3dbl = BasicConv2d(384, 3, padding=1,
                                   name='branch3x3dbl_2')(branch3x3dbl)
        branch3x3dbl = jnp.concatenate([
            BasicConv2d(384, (1, 3), padding=(0, 1),
                        name='branch3x3dbl_3a')(branch3x3dbl),
            BasicConv2d(384, (3, 1), padding=(1, 0),
                        name='branch3x3dbl_3b')(branch3x3dbl),
        ], axis=-1)
        if self.pool == 'avg':
            pooled = avg_pool_3x3_exclude_pad(x)
        elif self.pool == 'max':
            # Padding counts as -inf, as torch's max_pool2d(3, 1, padding=1).
            pooled = nn.max_pool(x, (3, 3), strides=(1, 1),
                                 padding=((1, 1), (1, 1)))
        else:
            raise ValueError(f"pool must be 'avg' or 'max', got {self.pool!r}")
        branch_pool = BasicConv2d(192, 1, name='branch_pool')(pooled)
        return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool],
                               axis=-1)


class InceptionV3(nn.Module):
    """The FID InceptionV3 (pytorch-fid's `fid_inception_v3()`), inference only.

    Submodule names are torchvision's, so parameters map one to one onto
    pytorch-fid's state dict (see `convert_torch_state_dict`).
    """

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> Dict[str, jnp.ndarray]:
        """Features of images already resized and scaled.

        Args:
          x: [N, 299, 299, 3] float32 in [-1, 1] (see `resize_to_inception`).
        Returns:
          {'pool': [N, 2048] float32 (≥ 0, the global average pool; pytorch-fid's
           block-3 features), 'logits': [N, 1008] float32 (fc on pool)}.
        """
        x = BasicConv2d(32, 3, strides=2, name='Conv2d_1a_3x3')(x)  # 149×149
        x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x)  # 147×147
        x = BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3')(x)  # 147×147
        x = _max_pool_3x3_stride2(x)  # 73×73
        x = BasicConv2d(80, 1, name='Conv2d_3b_1x1')(x)  # 73×73
        x = BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x)  # 71×71
        x = _max_pool_3x3_stride2(x)  # 35×35
        x = InceptionA(32, name='Mixed_5b')(x)  # 35×35×256
        x = InceptionA(64, name='Mixed_5c')(x)  # 35×35×288
        x = InceptionA(64, name='Mixed_5d')(x)  # 35×35×288
        x = InceptionB(name='Mixed_6a')(x)  # 17×17×768
        x = InceptionC(128, name='Mixed_6b')(x)
        x = InceptionC(160, name='Mixed_6c')(x)
        x = InceptionC(160, name='Mixed_6d')(x)
        x = InceptionC(192, name='Mixed_6e')(x)  # 17×17×768
        x = InceptionD(name='Mixed_7a')(x)  # 8×8×1280
        x = InceptionE('avg', name='Mixed_7b')(x)  # 8×8×2048
        x = InceptionE('max', name='Mixed_7c')(x)  # 8×8×2048
        pool = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_CLASSES, name='fc')(pool)
        return {'pool': pool, 'logits': logits}


def resize_to_inception(images: Any) -> jnp.ndarray:
    """Resizes images to the network's input, PyTorch bilinear as pytorch-fid.

    Same sampling as `torch.nn.functional.interpolate(size=(299, 299),
    mode='bilinear', align_corners=False)`: half-pixel centres, edge pixels
    repeated, and no antialiasing when shrinking (jax.image.resize antialiases
    by default, which torch does not).

    Args:
      images: [N, H, W, C] float in [-1, 1], C in {1, 3}; one channel is
        repeated to three (after resizing, which is the same and cheaper).
    Returns:
      [N, 299, 299, 3] float32 in [-1, 1].
    """
    images = jnp.asarray(images, jnp.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f'expected images [N, H, W, C] with C in (1, 3), got '
                         f'shape {images.shape}')
    n, height, width, channels = images.shape
    if (height, width) != (INPUT_SIZE, INPUT_SIZE):
        images = jax.image.resize(images, (n, INPUT_SIZE, INPUT_SIZE, channels),
                                  method='linear', antialias=False)
    return jnp.broadcast_to(images, (n, INPUT_SIZE, INPUT_SIZE, 3))


# ---------------------------------------------------------------------------
# Weights: torch state dict <-> flax variables, and the .npz file.

_BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
              'running_mean': ('batch_stats', 'mean'),
              'running_var': ('batch_stats', 'var')}
_BN_LEAVES_INVERSE = {v: k for k, v in _BN_LEAVES.items()}


@functools.lru_cache(maxsize=None)
def expected_shapes() -> Dict[str, Tuple[int, ...]]:
    """{'params/Mixed_5b/branch1x1/conv/kernel': shape, ...} for every variable
    of `InceptionV3` (computed abstractly, no weights allocated)."""
    abstract = jax.eval_shape(
        InceptionV3().init, jax.random.PRNGKey(0),
        jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
    flat = traverse_util.flatten_dict(dict(abstract), sep='/')
    return {key: tuple(value.shape) for key, value in flat.items()}


def _check_flat(flat: Mapping[str, Any], source: str) -> None:
    """Raises ValueError naming the first missing, unexpected or misshapen key."""
    expected = expected_shapes()
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f'{source}: not the FID Inception weights: '
            f'{len(missing)} missing keys (first: {missing[:3]}), '
            f'{len(unexpected)} unexpected keys (first: {unexpected[:3]})')
    for key, shape in expected.items():
        if tuple(np.shape(flat[key])) != shape:
            raise ValueError(f'{source}: {key!r} has shape {np.shape(flat[key])}, '
                             f'expected {shape}')


def check_variables(variables: Mapping[str, Any], source: str = 'variables'
                    ) -> None:
    """Checks that `variables` ({'params', 'batch_stats'}) fit `InceptionV3`.

    Raises:
      ValueError: naming the missing, unexpected or misshapen key.
    """
    _check_flat(traverse_util.flatten_dict(dict(variables), sep='/'), source)


def convert_torch_state_dict(state_dict: Mapping[str, np.ndarray]
                             ) -> Dict[str, Dict[str, Any]]:
    """Flax variables from pytorch-fid's (torchvision-named) state dict.

    Conv weights OIHW -> HWIO kernels; fc weight [1008, 2048] -> kernel
    [2048, 1008]; BatchNorm weight/bias -> params scale/bias, running_mean/var
    -> batch_stats mean/var; `num_batches_tracked` is dropped.

    Args:
      state_dict: torch key -> array (numpy, or anything np.asarray accepts).
    Returns:
      {'params': nested dict, 'batch_stats': nested dict} of float32 numpy.
    Raises:
      ValueError: for a key that is not part of the FID Inception, or missing
        or misshapen weights.
    """
    flat = {}
    for key, value in state_dict.items():
        *path, leaf = key.split('.')
        if leaf == 'num_batches_tracked':
            continue
        value = np.asarray(value, np.float32)
        if path and path[-1] == 'conv' and leaf == 'weight':
            collection, name, value = 'params', 'kernel', value.transpose(2, 3, 1, 0)
        elif path and path[-1] == 'bn' and leaf in _BN_LEAVES:
            collection, name = _BN_LEAVES[leaf]
        elif path == ['fc'] and leaf == 'weight':
            collection, name, value = 'params', 'kernel', value.T
        elif path == ['fc'] and leaf == 'bias':
            collection, name = 'params', 'bias'
        else:
            raise ValueError(f'unexpected key {key!r} in the torch state dict: not '
                             f'part of the FID Inception')
        flat['/'.join([collection, *path, name])] = np.ascontiguousarray(value)
    _check_flat(flat, 'torch state dict')
    return traverse_util.unflatten_dict(flat, sep='/')


def to_torch_state_dict(variables: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Inverse of `convert_torch_state_dict` (without num_batches_tracked).

    Args:
      variables: {'params': ..., 'batch_stats': ...} of `InceptionV3`.
    Returns:
      torch key -> float32 numpy array in torch layout (OIHW, [out, in]).
    """
    state_dict = {}
    flat = traverse_util.flatten_dict(dict(variables), sep='/')
    for key, value in flat.items():
        collection, *path, name = key.split('/')
        value = np.asarray(value, np.float32)
        if path[-1] == 'conv' and name == 'kernel':
            leaf, value = 'weight', value.transpose(3, 2, 0, 1)
        elif path[-1] == 'bn':
            leaf = _BN_LEAVES_INVERSE[(collection, name)]
        elif path == ['fc']:
            leaf, value = ('weight', value.T) if name == 'kernel' else ('bias', value)
        else:
            raise ValueError(f'unexpected variable {key!r}')
        state_dict['.'.join([*path, leaf])] = np.ascontiguousarray(value)
    return state_dict


def default_weights_path() -> str:
    """$GAN_JAX_INCEPTION if set, else inception_fid.npz in the cache directory
    ($GAN_JAX_CACHE, default ~/.cache/gan_jax)."""
    from gan_jax.metrics.classifier import cache_dir
    return os.path.expanduser(os.environ.get(WEIGHTS_ENV)
                              or os.path.join(cache_dir(), 'inception_fid.npz'))


def save_weights(variables: Mapping[str, Any], path: Optional[str] = None) -> str:
    """Writes variables to a flat .npz ('params/Mixed_5b/.../kernel' keys).

    Args:
      variables: {'params', 'batch_stats'} of `InceptionV3`.
      path: file to write; default `default_weights_path()`.
    Returns:
      The path written.
    """
    path = default_weights_path() if path is None else os.path.expanduser(path)
    check_variables(variables)
    flat = traverse_util.flatten_dict(dict(variables), sep='/')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Write through a file object: np.savez would append '.npz' to a bare path.
    with open(path, 'wb') as f:
        np.savez(f, **{k: np.asarray(v, np.float32) for k, v in flat.items()})
    return path


def load_weights(path: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Reads the converted FID Inception weights.

    Args:
      path: .npz written by `save_weights`; default `default_weights_path()`.
    Returns:
      {'params': nested dict, 'batch_stats': nested dict} of float32 numpy.
    Raises:
      FileNotFoundError: the file is missing; the message says how to make it.
      ValueError: the file is unreadable or does not hold the FID Inception
        weights (names the bad key).
    """
    path = default_weights_path() if path is None else os.path.expanduser(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f'FID Inception weights not found at {path} (set ${WEIGHTS_ENV} to '
            f'use another file). They are pytorch-fid\'s {TORCH_WEIGHTS_FILE}: '
            f'download {TORCH_WEIGHTS_URL} and convert it with '
            f'`python scripts/convert_inception_weights.py --input '
            f'{TORCH_WEIGHTS_FILE}`, which writes {default_weights_path()}.')
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {key: data[key] for key in data.files}
    # A damaged file fails in numpy or zipfile with many exception types
    # (BadZipFile, EOFError, ValueError, OSError, ...); report them all alike.
    except Exception as e:
        raise ValueError(f'{path}: unreadable FID Inception weights '
                         f'({type(e).__name__}: {e}); convert them again with '
                         f'scripts/convert_inception_weights.py') from e
    _check_flat(flat, path)
    return traverse_util.unflatten_dict(flat, sep='/')


# ---------------------------------------------------------------------------
# Batched extraction.


class FeatureExtractor:
    """Inception features of any number of images, in fixed-size jitted batches
    split over all of this process's devices.

    Each call's batch is split over a 1-D ('data',) mesh of the local devices
    (`jax.local_devices()`), so its size is `batch_size` rounded up to a
    multiple of their count (50 on 8 devices: 56). The last batch is padded
    with zero images and the padding rows dropped, so every image counts once
    and one batch shape compiles per input size. The mesh holds only this
    process's devices: in a multi-process run each process featurizes its own
    images without a collective, and its outputs are fully addressable (the
    processes' results are joined by `gan_jax.metrics.features`).

    `name` and `dim` identify the features (e.g. in cache keys of reference
    statistics).
    """
    name = 'inception_fid_pt'
    dim = POOL_DIM

    def __init__(self, variables: Optional[Mapping[str, Any]] = None,
                 batch_size: int = 50):
        """
        Args:
          variables: {'params', 'batch_stats'} of `InceptionV3`; default
            `load_weights()` (raises FileNotFoundError with instructions).
          batch_size: images per network call, at least; rounded up to a
            multiple of the local device count.
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be ≥ 1, got {batch_size}')
        if variables is None:
            variables = load_weights()
        else:
            check_variables(variables)
        mesh = parallel.make_mesh(jax.local_devices())
        self.num_devices = mesh.size
        self.batch_size = -(-batch_size // mesh.size) * mesh.size
        self._model = InceptionV3()
        self._batch_sharding = parallel.rows_sharding(mesh)
        self._variables = jax.device_put(variables, parallel.replicated(mesh))
        # Variables are an argument, not a closure constant, so they are not
        # baked into the compiled program. xla_options: 2.3x faster on CPU
        # (6.2 against 14.3 s per 50 images).
        self._forward = xla_options.jit(self._forward_batch)

    def _forward_batch(self, variables, images):
        return self._model.apply(variables, resize_to_inception(images))

    def __call__(self, images: Any) -> Dict[str, np.ndarray]:
        """Features of all images.

        Args:
          images: [N, H, W, C] float in [-1, 1], C in {1, 3} (numpy or jax).
        Returns:
          {'pool': [N, 2048] float32, 'logits': [N, 1008] float32} numpy.
        """
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f'expected images [N, H, W, C] with C in (1, 3), got '
                             f'shape {images.shape}')
        num = len(images)
        outputs = []
        for start in range(0, num, self.batch_size):
            batch = images[start:start + self.batch_size]
            count = len(batch)
            if count < self.batch_size:
                padding = np.zeros((self.batch_size - count,) + batch.shape[1:],
                                   np.float32)
                batch = np.concatenate([batch, padding])
            batch = jax.device_put(batch, self._batch_sharding)
            # Dispatch every batch before reading any back, so the host copies
            # overlap with device work.
            outputs.append((self._forward(self._variables, batch), count))
        result = {'pool': np.zeros((0, POOL_DIM), np.float32),
                  'logits': np.zeros((0, NUM_CLASSES), np.float32)}
        if outputs:
            # Read whole (local, fully addressable) arrays, then drop the
            # padding rows on the host.
            result = {key: np.concatenate([np.asarray(out[key], np.float32)[:count]
                                           for out, count in outputs])
                      for key in result}
        return result
