"""Model registry (`get(name) -> (Generator class, Discriminator class)`) and
the protocol every model family follows.

The protocol, what the rest of the code may rely on:
  * a generator G is called G(z [B, z_dim] float32, labels [B] int32 or None,
    *, train: bool) -> samples [B, *out_shape], and has a field
    `out_shape: Tuple[int, ...]` (set by `build` from the data);
  * a discriminator D is called D(x [B, *out_shape], labels, *, train: bool)
    -> logits [B // pack] float32;
  * both are flax modules (hashable dataclasses) whose constructor arguments
    are the keys of config.model.g / config.model.d;
  * optional capabilities, declared per family in `Family` and read only
    through `pack_of` and `num_classes_of`:
      - packing (PacGAN): D has a field `pack: int` (default 1) and judges
        `pack` samples jointly; without it, pack is 1;
      - conditioning: G and D have a field `num_classes: int` (0 =
        unconditional), set by `build` from the data; without it, 0.

A new family is a module exporting `Generator` and `Discriminator`, plus one
entry in FAMILIES.
"""
import dataclasses
import importlib
from typing import Any, Optional, Protocol, Tuple, Type, runtime_checkable

import flax.linen as nn
import jax


@runtime_checkable
class GeneratorProtocol(Protocol):
    """What every generator provides (see the module docstring)."""
    out_shape: Tuple[int, ...]

    def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        ...


@runtime_checkable
class DiscriminatorProtocol(Protocol):
    """What every discriminator provides (see the module docstring)."""

    def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, *,
                 train: bool) -> jax.Array:
        ...


@dataclasses.dataclass(frozen=True)
class Family:
    """A registered model family and its optional capabilities.

    Attributes:
      module: import path of the module exporting Generator and Discriminator
        (imported lazily, so that a toy run does not build image models).
      conditional: G and D take `num_classes` and use labels.
      packing: D takes `pack` (PacGAN).
    """
    module: str
    conditional: bool = False
    packing: bool = False


FAMILIES = {
    'mlp': Family('gan_jax.models.mlp', packing=True),
    'dcgan': Family('gan_jax.models.dcgan', packing=True),
    'resnet': Family('gan_jax.models.resnet', conditional=True),
    'stylegan2': Family('gan_jax.models.stylegan2', conditional=True),
}

# Constructor fields flax adds to every module: not model arguments.
_FLAX_FIELDS = ('parent', 'name')


def names():
    """Sorted list of the registered model names."""
    return sorted(FAMILIES)


def family(name: str) -> Family:
    """The registry entry of model `name`.

    Raises:
      ValueError: naming the unknown model and listing the valid ones.
    """
    if name not in FAMILIES:
        raise ValueError(
            f'unknown model {name!r}; valid models: {", ".join(names())}')
    return FAMILIES[name]


def get(name: str) -> Tuple[Type[nn.Module], Type[nn.Module]]:
    """Returns the (Generator, Discriminator) classes registered under `name`.

    Raises:
      ValueError: naming the unknown model and listing the valid ones.
    """
    module = importlib.import_module(family(name).module)
    return module.Generator, module.Discriminator


def pack_of(D: nn.Module) -> int:
    """How many samples D judges jointly (PacGAN): D maps [B, ...] to logits
    [B // pack]; 1 for a discriminator without packing."""
    return int(getattr(D, 'pack', 1))


def num_classes_of(module: nn.Module) -> int:
    """The number of classes a conditional G or D takes labels from; 0 for an
    unconditional one."""
    return int(getattr(module, 'num_classes', 0))


def configured_pack(config) -> int:
    """The discriminator's pack as config.model.d sets it (1 when unset), for
    checks made before the networks are built."""
    return int(config.model.d.get('pack', 1))


def constructor_fields(cls: Type[nn.Module]) -> Tuple[str, ...]:
    """The constructor arguments of a G or D class (its config keys)."""
    return tuple(f.name for f in dataclasses.fields(cls)
                 if f.name not in _FLAX_FIELDS)


def _hashable(value: Any) -> Any:
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
      num_classes: > 0 for conditional models (passed to families that are
        conditional; the others ignore it).
    Returns:
      (G, D) module instances.
    Raises:
      ValueError: unknown model name or constructor argument.
    """
    fam = family(config.model.name)
    G_cls, D_cls = get(config.model.name)
    g_kwargs = {k: _hashable(v) for k, v in dict(config.model.g).items()}
    d_kwargs = {k: _hashable(v) for k, v in dict(config.model.d).items()}
    g_kwargs['out_shape'] = tuple(data_shape)
    if num_classes and fam.conditional:
        for kwargs in (g_kwargs, d_kwargs):
            kwargs.setdefault('num_classes', num_classes)
    modules = []
    for part, cls, kwargs in (('g', G_cls, g_kwargs), ('d', D_cls, d_kwargs)):
        fields = constructor_fields(cls)
        unknown = sorted(set(kwargs) - set(fields))
        if unknown:
            raise ValueError(
                f'unknown model.{part} key {unknown[0]!r} for model '
                f'{config.model.name!r}; valid keys: {", ".join(sorted(fields))}')
        modules.append(cls(**kwargs))
    return tuple(modules)
