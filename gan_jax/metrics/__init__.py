"""Evaluators as plug-ins (after big_vision's evaluators and StyleGAN2-ADA's
metric_main): `config.evals` maps an evaluator name to its arguments, and
`from_config` builds them. Each evaluator has `run(sample_fn)` yielding
(metric name, value); sample_fn(num, seed) -> np.ndarray of generated samples.

  modes          2-D mixtures: modes, high_quality, reverse_kl (modes.py)
  fid, kid, pr, is   feature metrics vs a real split (evaluators.py)
  stacked_modes  Stacked MNIST: modes of 1,000 and KL (evaluators.py)
"""
import importlib
from typing import Dict

_EVALUATORS = {
    'modes': 'gan_jax.metrics.modes:Evaluator',
    'fid': 'gan_jax.metrics.evaluators:FID',
    'kid': 'gan_jax.metrics.evaluators:KID',
    'pr': 'gan_jax.metrics.evaluators:PrecisionRecall',
    'is': 'gan_jax.metrics.evaluators:InceptionScore',
    'stacked_modes': 'gan_jax.metrics.evaluators:StackedModes',
}


def names():
    """Sorted list of the registered evaluator names."""
    return sorted(_EVALUATORS)


def from_config(evals_config, info, config) -> Dict[str, object]:
    """{name: Evaluator} for every entry of config.evals.

    Args:
      evals_config: config.evals, {evaluator name: {argument: value}}.
      info: the dataset's DataInfo; config: the whole run config.

    Raises:
      ValueError: for an unknown evaluator name or argument.
    """
    evaluators = {}
    for name, kwargs in evals_config.items():
        if name not in _EVALUATORS:
            raise ValueError(f'unknown evaluator {name!r}; valid evaluators: '
                             f'{", ".join(names())}')
        module_name, class_name = _EVALUATORS[name].split(':')
        cls = getattr(importlib.import_module(module_name), class_name)
        try:
            evaluators[name] = cls(info, config, **dict(kwargs))
        except TypeError as e:
            raise ValueError(f'bad arguments for evaluator {name!r}: {e}') from None
    return evaluators
