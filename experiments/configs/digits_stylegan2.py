r"""StyleGAN2 with ADA on the 5,000 offline MNIST digits, padded to 32x32: a
CPU-sized StyleGAN2 (Karras et al. 2020) with every part of the recipe
(mapping network, modulated convolutions, noise, skip G, residual D with
minibatch stddev, lazy R1, path length, style mixing, EMA half-life, ADA).

  python experiments/train.py --config experiments/configs/digits_stylegan2.py \
      --workdir workdirs/digits_stylegan2

Narrow networks (at most 64 channels, w 128-d, 2 mapping layers, as
stylegan2-ada's CIFAR setting has 2) so that it trains on a 2-core CPU: 1,500
steps in 14 min 13 s on a 2-core Zen 4 EPYC, FID 560 (digit features), samples
collapsed onto a few digits (docs/results.md; not yet a good run). Every
750 steps FID and precision/recall of 5,000 EMA samples in digit-classifier
features (eval.jsonl). R1 γ 0.05 (stylegan2-ada's heuristic 0.0002·res²/batch
gives 0.006 at 32 px and batch 32; digits need more, see docs/results.md for
the measured run). ADA targets E[sign D(real)] = 0.6: 4,000 training images is
the limited-data regime ADA was made for.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.stylegan2(common.default_config(), 'digits', num_steps=1_500,
                              batch_size=32, image_size=32)
    config.model.z_dim = 128
    g, d = config.model.g, config.model.d
    g.channel_base, g.channel_max = 1024, 64
    d.channel_base, d.channel_max = 1024, 64
    g.w_dim, g.mapping_layers = 128, 2
    config.reg.r1_gamma = 0.05
    config.augment.ada_target = 0.6
    config.augment.ada_kimg = 100.0
    config.checkpoint_every = 500
    config.sample_every = 500
    digit_features = dict(features='digits', num_samples=5_000, split='train')
    config.evals.fid = dict(digit_features)
    config.evals.pr = dict(digit_features)
    config.eval_every = 750
    config.best_metric = 'fid/fid'
    if options['smoke']:
        common.apply_smoke(config)
        config.batch_size = 8
    return config
