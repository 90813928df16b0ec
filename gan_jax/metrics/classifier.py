"""A small digit classifier (LeNet-like) trained on the offline `digits` train
split, deterministically from a seed, and cached on disk.

It serves two purposes:
  (a) an offline feature extractor: FID, KID and precision/recall on digit
      datasets in its 128-d penultimate features ('pool'), with no download;
  (b) reading Stacked MNIST samples: each of the three channels is classified
      separately, giving one of 1,000 modes (Srivastava et al. 2017).

Its numbers are not comparable with Inception-feature numbers; they always
carry the extractor name `digits_lenet` next to them.
"""
import hashlib
import json
import logging
import os
from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

log = logging.getLogger(__name__)

FEATURE_DIM = 128
# Everything that changes the trained weights; part of the cache key.
RECIPE = dict(version=1, epochs=10, batch_size=64, lr=2e-3, max_shift=2,
              dataset='digits', split='train', image_size=28)


def cache_dir() -> str:
    """$GAN_JAX_CACHE, else ~/.cache/gan_jax: trained extractors and
    reference statistics live here."""
    return os.environ.get('GAN_JAX_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'gan_jax')


class LeNet(nn.Module):
    """conv5x5(16)-pool-conv5x5(32)-pool-dense(128)-dense(10), ReLU."""

    @nn.compact
    def __call__(self, x: jax.Array) -> Dict[str, jax.Array]:
        """x: [N, 28, 28, 1] in [-1, 1] -> {'pool': [N, 128] (≥ 0),
        'logits': [N, 10]}."""
        x = nn.relu(nn.Conv(16, (5, 5), padding='SAME')(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(32, (5, 5), padding='SAME')(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        features = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
        return {'pool': features, 'logits': nn.Dense(10)(features)}


def to_classifier_input(images: np.ndarray) -> np.ndarray:
    """Digit images [N, H, W, 1] in [-1, 1] -> [N, 28, 28, 1].

    32x32 images (digits zero padded to 32) are center-cropped back to 28;
    other sizes are resized bilinearly.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f'the digit classifier takes one-channel images '
                         f'[N, H, W, 1]; got shape {images.shape}')
    h, w = images.shape[1:3]
    if (h, w) == (28, 28):
        return images
    if h == w and h > 28 and (h - 28) % 2 == 0:
        pad = (h - 28) // 2
        return images[:, pad:pad + 28, pad:pad + 28]
    return np.asarray(jax.image.resize(images, (len(images), 28, 28, 1), 'bilinear'))


def _shifted(images: np.ndarray, rng: np.random.Generator, max_shift: int
             ) -> np.ndarray:
    """Each image translated by up to max_shift pixels (zero, i.e. -1, fill)."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)),
                    constant_values=-1.0)
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None]
    cols = dx[:, None] + np.arange(w)[None]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train(images: np.ndarray, labels: np.ndarray, *, seed: int = 0,
          epochs: int = RECIPE['epochs'], batch_size: int = RECIPE['batch_size'],
          lr: float = RECIPE['lr'], max_shift: int = RECIPE['max_shift']):
    """Trains LeNet with Adam (cosine decay) and random shifts; deterministic given `seed`.

    Args:
      images: [N, 28, 28, 1] float in [-1, 1]; labels: [N] int in 0..9.
    Returns:
      the flax variables {'params': ...}.
    """
    model = LeNet()
    variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 28, 28, 1)))
    steps_per_epoch = len(images) // batch_size
    # Cosine decay to zero: the last epochs settle the weights.
    tx = optax.adam(optax.cosine_decay_schedule(lr, epochs * steps_per_epoch))
    opt_state = tx.init(variables)

    @jax.jit
    def step(variables, opt_state, x, y):
        def loss_fn(v):
            logits = model.apply(v, x)['logits']
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        grads = jax.grad(loss_fn)(variables)
        updates, opt_state = tx.update(grads, opt_state, variables)
        return optax.apply_updates(variables, updates), opt_state

    rng = np.random.default_rng([seed, 11])
    for _ in range(epochs):
        perm = rng.permutation(len(images))
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x = _shifted(images[idx], rng, max_shift) if max_shift else images[idx]
            variables, opt_state = step(variables, opt_state, x,
                                        labels[idx].astype(np.int32))
    return jax.device_get(variables)


def _apply_batched(variables, images: np.ndarray, batch_size: int
                   ) -> Dict[str, np.ndarray]:
    apply = _jitted_apply()
    outs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        n = len(chunk)
        if n < batch_size:  # one compiled shape; padding rows are dropped below
            chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:],
                                                    chunk.dtype)])
        outs.append(jax.tree.map(lambda a: np.asarray(a)[:n], apply(variables, chunk)))
    return {k: np.concatenate([o[k] for o in outs]) for k in ('pool', 'logits')}


_APPLY = []


def _jitted_apply():
    if not _APPLY:
        _APPLY.append(jax.jit(LeNet().apply))
    return _APPLY[0]


def accuracy(variables, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of images [N, H, W, 1] in [-1, 1] classified as labels [N]."""
    logits = _apply_batched(variables, to_classifier_input(images), 500)['logits']
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


def _recipe_key(seed: int) -> str:
    blob = json.dumps({**RECIPE, 'seed': seed}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def digits_split(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images float32 [N, 28, 28, 1] in [-1, 1], labels int32 [N]) of the
    offline digits dataset's `split` ('train' or 'test')."""
    from ml_collections import ConfigDict

    from gan_jax.data import images as images_lib
    data_config = ConfigDict(dict(image_size=28, crop=0, data_dir='', split=split,
                                  download=False))
    x, y = images_lib.load_split(data_config, 'digits', split)
    return images_lib.to_float(x), y


def load_or_train(seed: int = 0, directory: Optional[str] = None):
    """The classifier's variables, trained on digits/train once and cached as
    `digit_classifier_<key>.npz` in `directory` (default cache_dir()).

    A cached file that cannot be read is retrained and rewritten.
    """
    import flax.serialization
    path = os.path.join(directory or cache_dir(),
                        f'digit_classifier_{_recipe_key(seed)}.npz')
    template = LeNet().init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    if os.path.exists(path):
        try:
            with np.load(path) as f:
                flat = {k: f[k] for k in f.files}
            nested = flax.traverse_util.unflatten_dict(flat, sep='/')
            return flax.serialization.from_state_dict(jax.device_get(template), nested)
        except Exception as e:  # corrupt or partial file: retrain
            log.warning('cannot read the cached digit classifier %s (%s); '
                        'retraining it', path, e)
    log.info('training the digit classifier (seed %d) on digits/train; cached '
             'in %s', seed, path)
    images, labels = digits_split('train')
    variables = train(images, labels, seed=seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    flat = flax.traverse_util.flatten_dict(flax.serialization.to_state_dict(variables),
                                           sep='/')
    tmp = path + '.tmp.npz'
    np.savez(tmp, **{k: np.asarray(v) for k, v in flat.items()})
    os.replace(tmp, path)  # never leave a half-written cache file behind
    return variables


class DigitFeatures:
    """Feature extractor: digit images -> {'pool': [N, 128], 'logits': [N, 10]}.

    Three-channel images (Stacked MNIST) are read one channel at a time; their
    'pool' is the three channels' features concatenated ([N, 384]) and their
    'logits' are [N, 3, 10].
    """
    name = 'digits_lenet'

    def __init__(self, variables=None, *, seed: int = 0, batch_size: int = 500):
        self.variables = variables if variables is not None else load_or_train(seed)
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        """images: [N, H, W, 1 or 3] float in [-1, 1]."""
        images = np.asarray(images, np.float32)
        if images.ndim == 4 and images.shape[-1] == 3:
            per_channel = [self(images[..., c:c + 1]) for c in range(3)]
            return {'pool': np.concatenate([o['pool'] for o in per_channel], -1),
                    'logits': np.stack([o['logits'] for o in per_channel], 1)}
        return _apply_batched(self.variables, to_classifier_input(images),
                              self.batch_size)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Predicted digits: [N] for [N, H, W, 1]; [N, 3] for three channels."""
        return np.argmax(self(images)['logits'], axis=-1)


def stacked_modes(digits: np.ndarray) -> np.ndarray:
    """[N, 3] digits of the (R, G, B) channels -> mode ids [N] in 0..999."""
    digits = np.asarray(digits)
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
