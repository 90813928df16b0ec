r"""StyleGAN2 on 64x64 CelebA (center crop 140, as the other CelebA configs),
stylegan2-ada's 'auto' setting for 64 px.

  python experiments/train.py --config experiments/configs/celeba64_stylegan2.py \
      --workdir workdirs/celeba64_stylegan2 --config.data.data_dir=~/tensorflow_datasets

Needs TFDS celeb_a (README "Data": the manual download path) and the
converted Inception weights for its evaluations (NAME.py:noeval trains
without). channel_base 16384 (256 channels at 64 px, 512 below), 8 mapping
layers, batch 64, R1 γ 0.0002·64²/64 = 0.0128 every 16 steps, path length 2
every 4 steps, style mixing 0.9, EMA half-life 20 kimg. No published target
at this exact protocol; compare with celeba64_dcgan/wgangp under the same
evaluation. Estimated GPU time for 25M images (390k steps): about a day on
one H200-class GPU; not yet measured here.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.stylegan2(common.default_config(), 'celeb_a',
                              num_steps=390_000, batch_size=64, image_size=64)
    config.reg.r1_gamma = 0.0128
    config.ema.half_life_kimg = 20.0
    config.checkpoint_every = 10_000
    config.sample_every = 5_000
    common.add_inception_evals(config, options, every=20_000)
    if options['smoke']:
        common.apply_smoke(config)
    return config
