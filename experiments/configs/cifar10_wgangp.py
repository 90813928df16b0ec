r"""WGAN-GP on CIFAR-10 (Gulrajani et al. 2017): ResNet G/D (128 channels),
no normalisation in D, Wasserstein loss, gradient penalty 10, n_critic 5, Adam
2e-4 (0, 0.9), batch 64, 100k generator steps with linear decay.

  python experiments/train.py --config experiments/configs/cifar10_wgangp.py \
      --workdir workdirs/cifar10_wgangp --config.data.data_dir=~/tensorflow_datasets

Needs TFDS cifar10. Estimated runtime on one modern GPU: about 6 hours (not
yet measured here). Target: Gulrajani et al. 2017, Table 3, unsupervised
ResNet: Inception score 7.86 ± .07.

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.resnet_cifar10(common.default_config())
    config.num_steps = 100_000
    config.model.g.channels = (128, 128, 128)
    config.model.d.channels = (128, 128, 128, 128)
    config.model.d.spectral = False
    config.loss.name = 'wasserstein'
    config.reg.gp_weight = 10.0
    for net in ('g', 'd'):
        config.opt[net].decay_steps = config.num_steps
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
