"""Improved precision and recall (Kynkäänniemi et al. 2019): each set's
manifold is the union of balls around its samples with radius the distance to
their k-th nearest neighbour (k = 3); precision is the share of generated
samples inside the real manifold, recall the share of real samples inside the
generated one."""
from typing import Dict

import numpy as np


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def _radii(x: np.ndarray, k: int, batch: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row."""
    out = np.empty(len(x))
    for start in range(0, len(x), batch):
        d = _squared_distances(x[start:start + batch], x)
        # Index k in the sorted row: index 0 is the point itself (distance 0).
        out[start:start + batch] = np.sqrt(np.partition(d, k, axis=1)[:, k])
    return out


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray,
              batch: int) -> float:
    inside = []
    for start in range(0, len(queries), batch):
        d = np.sqrt(_squared_distances(queries[start:start + batch], support))
        inside.append((d <= radii[None, :]).any(axis=1))
    return float(np.concatenate(inside).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3,
                     batch: int = 1000) -> Dict[str, float]:
    """Precision and recall of feature sets real [n, d] and fake [m, d].

    Returns:
      {'precision': in [0, 1], 'recall': in [0, 1]}.
    """
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    return {
        'precision': _coverage(fake, real, _radii(real, k, batch), batch),
        'recall': _coverage(real, fake, _radii(fake, k, batch), batch),
    }
