"""Data: every dataset yields batches {'x': [n_critic, B, *shape] float32} (and
'label' [n_critic, B] int32 when asked for), placed on the mesh. Images come in
[-1, 1] NHWC; 2-D points unscaled. A batch stream is a deterministic function
of (config, start step), which is how a resumed run continues the same order.
"""
import dataclasses
from typing import Any, Dict, Iterator, Optional, Tuple

import jax
import ml_collections
import numpy as np

from gan_jax.data import mixtures

POINT_DATASETS = tuple(mixtures.MIXTURES)


def names():
    """Sorted list of the known dataset names."""
    return sorted(POINT_DATASETS)


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What models and evaluators need to know about a dataset.

    Attributes:
      shape: shape of one sample, e.g. (2,) or (32, 32, 3).
      num_classes: number of labels, 0 for unlabelled data.
      kind: 'points' or 'images'.
      extras: dataset-specific facts, e.g. mixture 'centers' and 'std'.
    """
    shape: Tuple[int, ...]
    num_classes: int = 0
    kind: str = 'points'
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)


def get_info(config: ml_collections.ConfigDict) -> DataInfo:
    """DataInfo for config.dataset.

    Raises:
      ValueError: for an unknown dataset name, listing the valid ones.
    """
    name = config.dataset
    if name in POINT_DATASETS:
        centers, std = mixtures.centers_and_std(name)
        return DataInfo(shape=(2,), kind='points',
                        extras={'centers': centers, 'std': std})
    raise ValueError(f'unknown dataset {name!r}; valid datasets: {", ".join(names())}')


def make_train_iter(config: ml_collections.ConfigDict, *, start_step: int = 0,
                    sharding: Optional[jax.sharding.Sharding] = None
                    ) -> Iterator[Dict[str, jax.Array]]:
    """Endless training batches for config.dataset, starting at `start_step`.

    Args:
      config: a validated run config (dataset, data, seed, batch_size, n_critic).
      start_step: number of train steps already taken; the stream continues
        exactly where an uninterrupted run would be.
      sharding: where to put the batches ('x' is split over the batch axis, the
        second one); None keeps them on the default device.
    Yields:
      {'x': float32 [n_critic, batch_size, *shape]}.
    """
    get_info(config)  # validates the name
    batch_shape = (config.n_critic, config.batch_size)
    stream = mixtures.batches(config.dataset, seed=config.seed,
                              batch_shape=batch_shape,
                              num_train=config.data.num_train,
                              start_batch=start_step)
    for x in stream:
        batch = {'x': x}
        yield jax.device_put(batch, sharding) if sharding is not None else batch
