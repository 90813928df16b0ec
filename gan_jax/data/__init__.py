"""Data: every dataset yields batches {'x': [n_critic, B, *shape] float32} (and
'label' [n_critic, B] int32 when config.data.labels), as global arrays on the
mesh. Images come in [-1, 1] NHWC; 2-D points unscaled. A batch stream is a
deterministic function of (config, start step), which is how a resumed run
continues the same example order.

Image batches travel to the mesh as uint8 (a quarter of the bytes) with
their flip decisions, and are flipped and scaled there by one small jitted
step (`images.finish_on_device`) whose output equals the host's, bit for bit.
"""
import dataclasses
import queue
import threading
from typing import Any, Dict, Iterator, Optional, Tuple

import jax
import ml_collections
import numpy as np

from gan_jax.data import folder, mixtures, synthetic
from gan_jax.data.images import IMAGE_DATASETS, DataError  # noqa: F401

POINT_DATASETS = mixtures.NAMES  # ring, grid, swissroll


def names():
    """Sorted list of the known dataset names."""
    return sorted(POINT_DATASETS + IMAGE_DATASETS + (synthetic.NAME,))


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What models and evaluators need to know about a dataset.

    Attributes:
      shape: shape of one sample, e.g. (2,) or (32, 32, 3).
      num_classes: number of label values when labels are used, else 0
        (celeb_a: 40 binary attributes).
      kind: 'points' or 'images'.
      label_shape: shape of one label: () for class indices, (40,) for the
        CelebA attributes (which class-conditional models cannot take).
      extras: dataset-specific facts, e.g. mixture 'centers' and 'std'.
    """
    shape: Tuple[int, ...]
    num_classes: int = 0
    kind: str = 'points'
    label_shape: Tuple[int, ...] = ()
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)


def get_info(config: ml_collections.ConfigDict) -> DataInfo:
    """DataInfo for config.dataset (reads no data; for `folder`, lists
    data.path and reads one image header).

    Raises:
      ValueError: for an unknown dataset name, listing the valid ones.
      DataError: dataset `folder` with a missing or empty data.path.
    """
    from gan_jax.data import images
    name = config.dataset
    if name in POINT_DATASETS:
        # Mixtures' centers and std (the modes evaluator needs them); none
        # for the Swiss roll.
        return DataInfo(shape=(2,), kind='points', extras=mixtures.extras(name))
    if name == synthetic.NAME:
        return DataInfo(shape=synthetic.shape(config.data), kind='images',
                        num_classes=synthetic.NUM_CLASSES if config.data.labels else 0)
    if name == folder.NAME:
        # Lists data.path and reads one image header (channels, classes).
        lay = folder.layout(config.data)
        return DataInfo(shape=folder.output_shape(config.data), kind='images',
                        num_classes=len(lay.classes) if config.data.labels else 0,
                        extras={'classes': lay.classes})
    if name in IMAGE_DATASETS:
        return DataInfo(shape=images.output_shape(config.data, name),
                        num_classes=images.NUM_CLASSES[name] if config.data.labels else 0,
                        kind='images', label_shape=(40,) if name == 'celeb_a' else ())
    raise ValueError(f'unknown dataset {name!r}; valid datasets: {", ".join(names())}')


def check_available(config: ml_collections.ConfigDict) -> None:
    """Loads (and caches in memory) the training split of an image dataset, so
    that a missing dataset fails with its instructions before a run writes
    anything; the point mixtures are generated and always available."""
    get_info(config)  # validates the name
    if config.dataset not in POINT_DATASETS + (synthetic.NAME,):
        from gan_jax.data import images
        source = (config.data.stacked_source if config.dataset == 'stacked_mnist'
                  else config.dataset)
        images.load_split(config.data, source)


def host_batches(config: ml_collections.ConfigDict, *, start_step: int = 0,
                 process_index: int = 0, process_count: int = 1,
                 raw: bool = False) -> Iterator[Dict[str, np.ndarray]]:
    """This process's numpy slices of the global batches, from `start_step`.

    Args:
      raw: image batches as stored (`images.raw_batches`: uint8 'x' and a
        'flip' mask, for `images.finish_on_device`); points are the same
        either way.
    Yields:
      {'x': float32 [n_critic, batch_size / process_count, *shape], ...}.
    """
    get_info(config)  # validates the name
    if config.dataset in POINT_DATASETS:
        local = config.batch_size // process_count
        lo = process_index * local
        stream = mixtures.batches(config.dataset, seed=config.seed,
                                  batch_shape=(config.n_critic, config.batch_size),
                                  num_train=config.data.num_train,
                                  start_batch=start_step)
        return ({'x': x[:, lo:lo + local]} for x in stream)
    from gan_jax.data import images
    source = synthetic if config.dataset == synthetic.NAME else images
    make = source.raw_batches if raw else source.batches
    return make(config, start_batch=start_step, process_index=process_index,
                process_count=process_count)


def prefetch(iterator: Iterator[Any], size: int) -> Iterator[Any]:
    """Runs `iterator` on a daemon thread, `size` items ahead."""
    if size <= 0:
        yield from iterator
        return
    items: queue.Queue = queue.Queue(maxsize=size)
    sentinel = object()

    def work():
        try:
            for item in iterator:
                items.put(item)
        except BaseException as e:  # surfaced in the consumer
            items.put(e)
        items.put(sentinel)

    threading.Thread(target=work, daemon=True).start()
    while True:
        item = items.get()
        if item is sentinel:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def make_train_iter(config: ml_collections.ConfigDict, *, start_step: int = 0,
                    sharding: Optional[jax.sharding.Sharding] = None
                    ) -> Iterator[Dict[str, jax.Array]]:
    """Endless global training batches for config.dataset from `start_step`.

    Each process reads only its slice; the slices are assembled into global
    arrays split over the batch axis (axis 1) of `sharding`. Batches are made
    and transferred `config.data.prefetch` steps ahead on a background thread.
    Images are placed as uint8 and flipped and scaled on the mesh
    (`images.finish_on_device`, no collective): the values equal the host
    stream's (`host_batches`) exactly.

    Args:
      config: a validated run config.
      start_step: train steps already taken; the stream continues exactly where
        an uninterrupted run would be.
      sharding: placement of the batch arrays; None keeps numpy arrays.
    Yields:
      {'x': float32 [n_critic, batch_size, *shape]} (+ 'label').
    Raises:
      DataError: the dataset is missing and cannot be downloaded.
    """
    on_device = sharding is not None and config.dataset not in POINT_DATASETS
    stream = host_batches(config, start_step=start_step,
                          process_index=jax.process_index(),
                          process_count=jax.process_count(), raw=on_device)
    # Fail here, not on the background thread, when the data is missing.
    first = next(stream)

    def chained():
        yield first
        yield from stream

    def place(batch):
        if sharding is None:
            return batch
        if jax.process_count() == 1:
            batch = jax.device_put(batch, sharding)
        else:
            batch = jax.tree.map(
                lambda a: jax.make_array_from_process_local_data(sharding, a), batch)
        if on_device:
            from gan_jax.data import images
            batch = images.finish_on_device(batch, sharding)
        return batch

    return prefetch((place(b) for b in chained()), config.data.prefetch)
