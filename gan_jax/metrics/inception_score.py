"""Inception score (Salimans et al. 2016): exp E_x KL(p(y|x) ‖ p(y)), the mean
and standard deviation over splits, as the original implementation and
torch-fidelity compute it (10 splits, split i holding rows i·N//splits up to
(i+1)·N//splits)."""
from typing import List, Tuple

import numpy as np


def split_bounds(num: int, splits: int) -> List[Tuple[int, int]]:
    """[start, stop) row ranges of the `splits` consecutive parts of `num` rows:
    part i is i·num//splits .. (i+1)·num//splits, the boundaries of the
    original implementation and torch-fidelity. (np.array_split puts the
    num % splits longer parts first instead, which changes the score when
    splits does not divide num.)"""
    return [(i * num // splits, (i + 1) * num // splits) for i in range(splits)]


def inception_score(probs: np.ndarray, *, splits: int = 10) -> Tuple[float, float]:
    """IS of class probabilities [N, K] (rows sum to 1).

    Args:
      probs: [N, K] class probabilities, N >= splits.
      splits: number of consecutive parts (see `split_bounds`).
    Returns:
      (mean, std) over the parts; in [1, K].
    Raises:
      ValueError: splits < 1, or fewer rows than splits (a part would be empty
        and its score NaN).
    """
    probs = np.asarray(probs, np.float64)
    if splits < 1:
        raise ValueError(f'the inception score needs splits >= 1, got {splits}')
    if len(probs) < splits:
        raise ValueError(f'the inception score of {len(probs)} samples cannot use '
                         f'{splits} splits (a split would be empty): score at '
                         f'least {splits} samples or lower splits')
    scores = []
    for start, stop in split_bounds(len(probs), splits):
        part = probs[start:stop]
        marginal = part.mean(axis=0, keepdims=True)
        # 0·log 0 = 0: zero probabilities contribute nothing.
        with np.errstate(divide='ignore', invalid='ignore'):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
