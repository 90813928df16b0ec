r"""Conditional StyleGAN2-ADA on CIFAR-10: stylegan2-ada's `cfg=cifar` setting
(Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data", its CIFAR-10 experiments).

  python experiments/train.py --config experiments/configs/cifar10_stylegan2_ada.py \
      --workdir workdirs/cifar10_stylegan2_ada --config.data.data_dir=~/tensorflow_datasets

Needs TFDS cifar10 prepared (`tfds build cifar10`) and the converted Inception
weights for its evaluations (README "Metrics"; NAME.py:noeval trains without).
The setting, as stylegan2-ada's train.py defines `cifar`: 512 channels at every
resolution (channel_base 32768), a 2-layer mapping network, minibatch-stddev
groups of 32, batch 64, Adam 2.5e-3 (0, 0.99), R1 γ 0.01 every 16 steps, no
path length and no style mixing, EMA half-life 500 kimg with 5% ramp-up, ADA
toward 0.6, class labels (conditional G mapping and projection D).
Target (the issue's; check the table before citing): FID 2.92 / IS 10.02 for
50k samples against train. Estimated GPU time for the paper's 100M images
(1.56M steps of 64): several days on one H200-class GPU; not yet measured here.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.stylegan2(common.default_config(), 'cifar10',
                              num_steps=1_562_500, batch_size=64)
    config.data.labels = True
    config.data.random_flip = True  # stylegan2-ada's --mirror=1 for CIFAR-10
    g, d = config.model.g, config.model.d
    g.channel_base = d.channel_base = 32768
    g.mapping_layers = 2
    g.style_mixing_prob = 0.0
    d.mbstd_group_size = 32
    config.reg.r1_gamma = 0.01
    config.reg.pl_weight = 0.0
    config.ema.half_life_kimg = 500.0
    config.augment.ada_target = 0.6
    config.checkpoint_every = 10_000
    config.sample_every = 10_000
    common.add_inception_evals(config, options, every=50_000, num_samples=50_000)
    if options['smoke']:
        common.apply_smoke(config)
        config.model.d.mbstd_group_size = 4
    return config
