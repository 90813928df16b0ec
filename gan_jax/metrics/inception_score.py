"""Inception score (Salimans et al. 2016): exp E_x KL(p(y|x) ‖ p(y)), the mean
and standard deviation over splits, as the original implementation computes
it (10 splits)."""
from typing import Tuple

import numpy as np


def inception_score(probs: np.ndarray, *, splits: int = 10) -> Tuple[float, float]:
    """IS of class probabilities [N, K] (rows sum to 1).

    Returns:
      (mean, std) over `splits` equal consecutive parts; in [1, K].
    """
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0·log 0 = 0: zero probabilities contribute nothing.
        with np.errstate(divide='ignore', invalid='ignore'):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
