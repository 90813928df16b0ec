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
    config = common.dcgan(common.default_config(), 'stacked_mnist',
                          num_steps=20_000, z_dim=100)
    config.data.image_size = 28
    config.sample_every = 2_000
    # Modes of 26,000 samples read by the digit classifier (PacGAN's protocol).
    config.evals.stacked_modes = dict(num_samples=26_000)
    config.eval_every = 5_000
    if options['smoke']:
        common.apply_smoke(config)
    return config
