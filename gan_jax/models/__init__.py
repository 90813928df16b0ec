"""Model registry: `get(name) -> (Generator class, Discriminator class)`.

Every generator maps (z [B, z_dim], labels [B] or None, *, train) to samples
[B, *out_shape] and has an `out_shape` field; every discriminator maps
(x [B, ...], labels, *, train) to logits [B // pack].
"""
import importlib
from typing import Tuple, Type

import flax.linen as nn

# name -> module path; imported lazily so that a toy run does not build image
# models.
_FAMILIES = {
    'mlp': 'gan_jax.models.mlp',
    'dcgan': 'gan_jax.models.dcgan',
    'resnet': 'gan_jax.models.resnet',
}


def names():
    """Sorted list of the registered model names."""
    return sorted(_FAMILIES)


def get(name: str) -> Tuple[Type[nn.Module], Type[nn.Module]]:
    """Returns the (Generator, Discriminator) classes registered under `name`.

    Raises:
      ValueError: naming the unknown model and listing the valid ones.
    """
    if name not in _FAMILIES:
        raise ValueError(
            f'unknown model {name!r}; valid models: {", ".join(names())}')
    module = importlib.import_module(_FAMILIES[name])
    return module.Generator, module.Discriminator


def _hashable(value):
    """Lists (as they come back from config.json) become tuples, so that the
    modules stay hashable for jit."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def build(config, data_shape, num_classes: int = 0):
    """Instantiates G and D from config.model for data of `data_shape`.

    Args:
      config: run config; uses model.name, model.g, model.d.
      data_shape: shape of one sample; becomes the generator's out_shape.
      num_classes: > 0 for conditional models (passed when the model takes it).
    Returns:
      (G, D) module instances.
    Raises:
      ValueError: unknown model name or constructor argument.
    """
    G_cls, D_cls = get(config.model.name)
    g_kwargs = {k: _hashable(v) for k, v in dict(config.model.g).items()}
    d_kwargs = {k: _hashable(v) for k, v in dict(config.model.d).items()}
    g_kwargs['out_shape'] = tuple(data_shape)
    for cls, kwargs in ((G_cls, g_kwargs), (D_cls, d_kwargs)):
        if num_classes and 'num_classes' in cls.__dataclass_fields__:
            kwargs.setdefault('num_classes', num_classes)
    modules = []
    for part, cls, kwargs in (('g', G_cls, g_kwargs), ('d', D_cls, d_kwargs)):
        fields = [f for f in cls.__dataclass_fields__ if f not in ('parent', 'name')]
        unknown = sorted(set(kwargs) - set(fields))
        if unknown:
            raise ValueError(
                f'unknown model.{part} key {unknown[0]!r} for model '
                f'{config.model.name!r}; valid keys: {", ".join(sorted(fields))}')
        modules.append(cls(**kwargs))
    return tuple(modules)
