r"""Class-conditional SNGAN on CIFAR-10: conditional batch norm in G and a
projection discriminator (Miyato & Koyama 2018), hinge loss, n_critic 5.

  python experiments/train.py --config experiments/configs/cifar10_cond_sngan.py \
      --workdir workdirs/cifar10_cond_sngan --config.data.data_dir=~/tensorflow_datasets

Needs TFDS cifar10. Estimated runtime on one modern GPU: about 3 hours for 50k
generator steps (not yet measured here). Target: Miyato & Koyama 2018, Table 1,
CIFAR-10 projection cGAN: Inception score 8.62, FID 17.5.

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.resnet_cifar10(common.default_config(), conditional=True)
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
