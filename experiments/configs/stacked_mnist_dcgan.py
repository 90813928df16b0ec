r"""DCGAN on Stacked MNIST (three digits as RGB channels, 1,000 modes), the
setup of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), built
from the offline `digits` by default (`--config.data.stacked_source=mnist`
when TFDS mnist is prepared).

  python experiments/train.py --config experiments/configs/stacked_mnist_dcgan.py \
      --workdir workdirs/stacked_mnist_dcgan

Runs offline. Estimated runtime on one modern GPU: about 15 minutes for 20k
steps (not yet measured here). Target: PacGAN, Table 3: DCGAN captures 99
modes (KL 3.40); PacDCGAN2 (--config.model.d.pack=2) all 1,000 (KL 0.06).
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.default_config()
    config.dataset = 'stacked_mnist'
    config.data.image_size = 28
    config.num_steps = 20_000
    config.batch_size = 64
    config.log_every = 100
    config.checkpoint_every = 5_000
    config.sample_every = 2_000
    common.set_model(config, 'dcgan')
    config.model.z_dim = 100
    config.model.g.base_channels = 64
    config.model.d.base_channels = 64
    for net in ('g', 'd'):
        config.opt[net].lr = 2e-4
        config.opt[net].b1 = 0.5
    config.ema.decay = 0.999
    config.ema.start_step = 1_000
    if options['smoke']:
        common.apply_smoke(config)
    return config
