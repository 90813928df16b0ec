r"""SNGAN on CIFAR-10: ResNet G/D, spectral norm in D, hinge loss, n_critic 5.

  python experiments/train.py --config experiments/configs/cifar10_sngan.py \
      --workdir workdirs/cifar10_sngan --config.data.data_dir=~/tensorflow_datasets

Needs TFDS cifar10 prepared (`tfds build cifar10`). Estimated runtime on one
modern GPU (H100 class): about 3 hours for 50k generator steps (not yet
measured here). Target: Miyato et al. 2018, Table 2, SN-GANs (ResNet), CIFAR-10
unconditional: Inception score 8.22 ± .05, FID 21.7 ± .21 (their FID protocol:
10k samples vs 5k/10k test images; record ours next to it).

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.resnet_cifar10(common.default_config())
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
