r"""DCGAN on CelebA at 64x64 (center crop 140, then resize): G dense -> 4x4x512,
transposed convs to 64x64; D convs 64/128/256/512; non-saturating loss, Adam
2e-4 (0.5, 0.999), batch 64.

  python experiments/train.py --config experiments/configs/celeba64_dcgan.py \
      --workdir workdirs/celeba64_dcgan --config.data.data_dir=~/tensorflow_datasets

Needs TFDS celeb_a (see README: scripts/prepare_celeba.py when Google Drive
refuses). Estimated runtime on one modern GPU: about 2 hours for 100k steps
(not yet measured here). There is no agreed CelebA-64 DCGAN FID (papers differ
in crop and resize); compare against runs of this config.

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.dcgan(common.default_config(), 'celeb_a')
    config.data.image_size = 64
    config.data.crop = 140
    config.data.random_flip = True
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
