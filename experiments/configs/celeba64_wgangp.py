r"""WGAN-GP on CelebA at 64x64: SNGAN's 64x64 ResNet without normalisation in
D, Wasserstein loss, gradient penalty 10, n_critic 5, Adam 1e-4 (0, 0.9).

  python experiments/train.py --config experiments/configs/celeba64_wgangp.py \
      --workdir workdirs/celeba64_wgangp --config.data.data_dir=~/tensorflow_datasets

Needs TFDS celeb_a. Estimated runtime on one modern GPU: about 8 hours for
100k generator steps (not yet measured here). No agreed published FID for this
exact setup; compare against runs of this config.

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.resnet_cifar10(common.default_config())
    config.dataset = 'celeb_a'
    config.data.image_size = 64
    config.data.crop = 140
    config.data.random_flip = True
    config.num_steps = 100_000
    config.model.g.channels = (512, 256, 128, 64)
    config.model.d.channels = (64, 128, 256, 512, 1024)
    config.model.d.spectral = False
    config.loss.name = 'wasserstein'
    config.reg.gp_weight = 10.0
    for net in ('g', 'd'):
        config.opt[net].lr = 1e-4
        config.opt[net].decay_steps = config.num_steps
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
