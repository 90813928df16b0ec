r"""DCGAN on the 5,000 offline MNIST digits (`digits`): the default image run.

  python experiments/train.py --config experiments/configs/digits_dcgan.py \
      --workdir workdirs/digits_dcgan

Runs offline on a 2-core CPU in under 10 minutes (see README for the measured
time) and writes 8x8 sample grids to samples/; every 1,250 steps it scores
FID and precision/recall of 5,000 EMA samples in digit-classifier features
(eval.jsonl) and keeps the best checkpoint by FID in checkpoints_best/. Architecture and optimizer of
Radford et al. 2016 (Adam 2e-4, β1 0.5, batch 64) at 28x28: G
64/128 channels, D 32/64 (half DCGAN's width, to fit the CPU budget); non-saturating loss; EMA generator for samples.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.dcgan(common.default_config(), 'digits', num_steps=2_500,
                          z_dim=100)
    config.checkpoint_every = 500
    config.sample_every = 500
    config.model.d.base_channels = 32  # half width: fits the CPU budget
    config.ema.decay = 0.995
    config.ema.start_step = 500
    # Offline feature metrics in the digit classifier's features (trained once
    # and cached; see gan_jax/metrics/classifier.py), and the best checkpoint.
    digit_features = dict(features='digits', num_samples=5_000, split='train')
    config.evals.fid = dict(digit_features)
    config.evals.pr = dict(digit_features)
    config.eval_every = 1_250
    config.best_metric = 'fid/fid'
    if options['smoke']:
        common.apply_smoke(config)
        config.batch_size = 8
    return config
