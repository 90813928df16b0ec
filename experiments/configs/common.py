"""Shared config fragments. Every experiment config starts from
`gan_jax.config.default_config()` (the schema of all keys) and changes values.

`get_config('smoke')` in any config shrinks the run for tests and quick checks.
"""
import dataclasses

from gan_jax import models
from gan_jax.config import default_config  # noqa: F401  (re-exported)

# Set from the data (out_shape) or from data.labels (num_classes), or flax's own.
_DERIVED_FIELDS = ('parent', 'name', 'out_shape', 'num_classes')


def set_model(config, name):
    """Selects model `name` and writes every constructor argument of its G and
    D, with its default, into config.model.g / .d, so each one can be changed
    from the command line (--config.model.d.norm=batch)."""
    config.model.name = name
    for part, cls in zip(('g', 'd'), models.get(name)):
        for field in dataclasses.fields(cls):
            if field.name in _DERIVED_FIELDS or field.default is dataclasses.MISSING:
                continue
            value = field.default
            config.model[part][field.name] = tuple(value) if isinstance(
                value, (list, tuple)) else value
    return config


ARGUMENTS = ('smoke', 'noeval')


def parse_arg(arg):
    """Comma-separated words after the config path (NAME.py:smoke,noeval) ->
    {'smoke': bool, 'noeval': bool}; unknown words raise ValueError."""
    words = [w for w in (arg or '').split(',') if w]
    unknown = [w for w in words if w not in ARGUMENTS]
    if unknown:
        raise ValueError(f'unknown config argument {unknown[0]!r}; valid: '
                         f'{", ".join(ARGUMENTS)}')
    return {name: name in words for name in ARGUMENTS}


def add_inception_evals(config, options, *, every=5_000, num_samples=10_000):
    """FID and IS of `num_samples` EMA samples in pytorch-fid Inception features
    every `every` steps (against the training split, as most GAN papers), and
    the best checkpoint by FID. Skipped for `smoke` and `noeval` (training then
    needs no Inception weights)."""
    if options['smoke'] or options['noeval']:
        return config
    inception = dict(features='inception', num_samples=num_samples, split='train')
    config.evals.fid = dict(inception)
    config.evals['is'] = dict(inception)
    config.eval_every = every
    config.best_metric = 'fid/fid'
    return config


def apply_smoke(config):
    """A few steps of everything, on narrow networks: for tests and quick
    local runs."""
    config.num_steps = 6
    config.log_every = 2
    config.checkpoint_every = 3
    config.sample_every = 3
    config.eval_every = 6
    for evaluator in config.evals.values():
        if 'num_samples' in evaluator:
            evaluator.num_samples = 200
    config.batch_size = min(config.batch_size, 8)
    for net in ('g', 'd'):
        part = config.model[net]
        if 'base_channels' in part:
            part.base_channels = 8
        if 'channels' in part:
            part.channels = tuple(8 for _ in part.channels)
        if 'channel_base' in part:  # StyleGAN2: 16 channels at most
            part.channel_base, part.channel_max = 256, 16
        if 'w_dim' in part:
            part.w_dim, part.mapping_layers = 32, 2
    return config


def stylegan2(config, dataset, *, num_steps, batch_size=32, image_size=0):
    """StyleGAN2 (Karras et al. 2020) as stylegan2-ada trains it: the
    non-saturating loss, Adam 2.5e-3 (0, 0.99), lazy R1 every 16 D steps, the
    path-length penalty (weight 2) every 4 G steps with batch shrink 2, style
    mixing 0.9, the generator EMA with a 10 kimg half-life and 5% ramp-up
    (stylegan2-ada's 'auto' config); z and w 512-d."""
    config.dataset = dataset
    config.data.image_size = image_size
    config.num_steps = num_steps
    config.batch_size = batch_size
    config.log_every = 100
    set_model(config, 'stylegan2')
    config.model.z_dim = 512
    config.loss.name = 'non_saturating'
    for net in ('g', 'd'):
        config.opt[net].lr = 2.5e-3
        config.opt[net].b1 = 0.0
        config.opt[net].b2 = 0.99
    config.reg.d_reg_interval = 16
    config.reg.g_reg_interval = 4
    config.reg.pl_weight = 2.0
    config.reg.pl_decay = 0.01
    config.reg.pl_batch_shrink = 2
    config.ema.half_life_kimg = 10.0
    config.ema.rampup = 0.05
    config.ema.start_step = 0
    return config


def resnet_cifar10(config, *, conditional=False):
    """SNGAN's CIFAR-10 ResNet (G 256 channels, D 128, z 128), hinge loss,
    Adam 2e-4 (0, 0.9), n_critic 5, batch 64, linear decay (Miyato et al. 2018)."""
    config.dataset = 'cifar10'
    config.data.random_flip = False
    config.data.labels = conditional
    config.num_steps = 50_000
    config.batch_size = 64
    config.log_every = 100
    config.checkpoint_every = 5_000
    config.sample_every = 2_500
    set_model(config, 'resnet')
    config.model.z_dim = 128
    config.model.g.channels = (256, 256, 256)
    config.model.d.channels = (128, 128, 128, 128)
    config.model.d.spectral = True
    config.loss.name = 'hinge'
    config.n_critic = 5
    for net in ('g', 'd'):
        config.opt[net].lr = 2e-4
        config.opt[net].b1 = 0.0
        config.opt[net].b2 = 0.9
        config.opt[net].schedule = 'linear'
        config.opt[net].decay_steps = config.num_steps
    config.ema.decay = 0.9999
    config.ema.start_step = 1_000
    return config


def dcgan(config, dataset, *, num_steps=100_000, z_dim=128, width=64):
    """DCGAN recipe of Radford et al. 2016: Adam 2e-4 (0.5, 0.999), batch 64,
    non-saturating loss, base width `width` in G and D, EMA 0.999 from step
    1,000."""
    config.dataset = dataset
    config.num_steps = num_steps
    config.batch_size = 64
    config.log_every = 100
    config.checkpoint_every = 5_000
    config.sample_every = 2_500
    set_model(config, 'dcgan')
    config.model.z_dim = z_dim
    config.model.g.base_channels = width
    config.model.d.base_channels = width
    for net in ('g', 'd'):
        config.opt[net].lr = 2e-4
        config.opt[net].b1 = 0.5
    config.ema.decay = 0.999
    config.ema.start_step = 1_000
    return config
