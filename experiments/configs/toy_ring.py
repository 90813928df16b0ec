r"""PacGAN's 2-D ring: 8 Gaussians (σ = 0.01) on the unit circle.

Networks and optimizer of PacGAN's toy experiment (G 4x400 ReLU+BN, D 2 maxout
layers of 200 units x 5 pieces, z 2-D, batch 100, Adam β1 0.8), with a learning
rate that decays linearly to 0 and an EMA generator so that the samples settle
on the modes within a short CPU run.

  python experiments/train.py --config experiments/configs/toy_ring.py \
      --workdir /tmp/toy_ring

Runtime: see README (about 20k steps on a 2-core CPU).
Target (PacGAN's protocol, 400k steps at a constant rate, no EMA, 10 trials;
Lin et al. 2018, Table 1, as transcribed): GAN 6.3 ± 0.5 of 8 modes, 98.2 ± 0.2%
high quality, reverse KL 0.45 ± 0.09; PacGAN2 7.9 ± 0.1, 95.6 ± 2.0%,
0.07 ± 0.03. scripts/reproduce_pacgan_table1.py runs that protocol.
"""
from experiments.configs import common


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = common.default_config()
    config.dataset = 'ring'
    config.num_steps = 24_000
    config.batch_size = 100
    config.log_every = 500
    config.checkpoint_every = 4_000
    config.sample_every = 4_000
    config.eval_every = 4_000
    common.set_model(config, 'mlp')
    config.model.z_dim = 2
    config.model.g.hidden = (400, 400, 400, 400)
    config.model.d.hidden = (200, 200)
    config.model.d.maxout_pieces = 5
    for net in ('g', 'd'):
        config.opt[net].lr = 1e-4
        config.opt[net].b1 = 0.8
        config.opt[net].schedule = 'linear'
        config.opt[net].decay_steps = config.num_steps
    config.ema.decay = 0.999
    config.evals.modes = dict(num_samples=2500)
    if options['smoke']:
        common.apply_smoke(config)
    return config
