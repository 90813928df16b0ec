"""The example order shared by every finite dataset: each epoch visits every
example once, in a permutation drawn from (seed, epoch), so the stream is a
pure function of (seed, position) and a resumed run continues it exactly."""
import functools

import numpy as np


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 2, epoch]).permutation(n)


def epoch_indices(num_examples: int, seed: int, start: int, count: int
                  ) -> np.ndarray:
    """Example indices at stream positions start..start+count-1: int [count]
    in [0, num_examples), crossing epoch boundaries as needed."""
    out, position = [], start
    while count:
        epoch, offset = divmod(position, num_examples)
        take = _permutation(seed, epoch, num_examples)[offset:offset + count]
        out.append(take)
        position += len(take)
        count -= len(take)
    return np.concatenate(out)
