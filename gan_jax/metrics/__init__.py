"""Evaluators as plug-ins (after big_vision's evaluators and StyleGAN2-ADA's
metric_main): `config.evals` maps an evaluator name to its arguments, and
`from_config` builds them. Each evaluator has `run(sample_fn)` yielding
(metric name, value); sample_fn(num, seed) -> np.ndarray of generated samples.
"""
import importlib
from typing import Dict

_EVALUATORS = {
    'modes': 'gan_jax.metrics.modes',
}


def names():
    """Sorted list of the registered evaluator names."""
    return sorted(_EVALUATORS)


def from_config(evals_config, info) -> Dict[str, object]:
    """{name: Evaluator} for every entry of config.evals.

    Raises:
      ValueError: for an unknown evaluator name or argument.
    """
    evaluators = {}
    for name, kwargs in evals_config.items():
        if name not in _EVALUATORS:
            raise ValueError(f'unknown evaluator {name!r}; valid evaluators: '
                             f'{", ".join(names())}')
        module = importlib.import_module(_EVALUATORS[name])
        try:
            evaluators[name] = module.Evaluator(info, **dict(kwargs))
        except TypeError as e:
            raise ValueError(f'bad arguments for evaluator {name!r}: {e}') from None
    return evaluators
