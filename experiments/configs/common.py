"""Shared config fragments. Every experiment config starts from
`gan_jax.config.default_config()` (the schema of all keys) and changes values.

`get_config('smoke')` in any config shrinks the run for tests and quick checks.
"""
from gan_jax.config import default_config  # noqa: F401  (re-exported)


def parse_arg(arg):
    """'smoke' or '' -> {'smoke': bool}; unknown words raise ValueError."""
    words = [w for w in (arg or '').split(',') if w]
    unknown = [w for w in words if w != 'smoke']
    if unknown:
        raise ValueError(f'unknown config argument {unknown[0]!r}; valid: smoke')
    return {'smoke': 'smoke' in words}


def apply_smoke(config):
    """A few steps of everything: for tests and quick local runs."""
    config.num_steps = 6
    config.log_every = 2
    config.checkpoint_every = 3
    config.sample_every = 3
    config.eval_every = 6
    for evaluator in config.evals.values():
        if 'num_samples' in evaluator:
            evaluator.num_samples = 200
    return config
