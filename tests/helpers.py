"""Helpers shared by the tests."""


def override(config, **values):
    """Sets dotted keys, e.g. override(c, **{'opt.d.lr': 0.0}); returns config."""
    for key, value in values.items():
        target = config
        *path, last = key.split('.')
        for part in path:
            target = target[part]
        target[last] = value
    return config
