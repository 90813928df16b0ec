r"""DCGAN on CIFAR-10: the DCGAN-32 of the benchmarks (G dense -> 4x4x256, then
transposed convs 256 -> 128 -> 64 -> 3; D convs 64/128/256), non-saturating
loss, Adam 2e-4 (0.5, 0.999), batch 64.

  python experiments/train.py --config experiments/configs/cifar10_dcgan.py \
      --workdir workdirs/cifar10_dcgan --config.data.data_dir=~/tensorflow_datasets

Needs TFDS cifar10. Estimated runtime on one modern GPU: about 1 hour for 100k
steps (not yet measured here). Radford et al. 2016 report no CIFAR-10 FID; the
closest published number is Miyato et al. 2018, Table 2, "standard CNN" with
spectral norm: Inception score 7.42, FID 29.3.

Evaluates FID and IS in Inception features every 5,000 steps (needs the
converted weights, see README "Metrics"); NAME.py:noeval trains without.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.dcgan(common.default_config(), 'cifar10')
    common.add_inception_evals(config, options)
    if options['smoke']:
        common.apply_smoke(config)
    return config
