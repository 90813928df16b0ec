r"""WGAN with weight clipping (Arjovsky et al. 2017, Algorithm 1) on
PacGAN's 2-D grid: 25 Gaussians (σ = 0.05) at {-4,-2,0,2,4}².

The paper's defaults: Wasserstein loss, every D parameter clipped to
[-0.01, 0.01] after each D update (reg.weight_clip), RMSProp with learning
rate 5e-5 for both networks (as PyTorch's RMSprop, which the reference code
uses: mean-square decay 0.99, no momentum), n_critic 5, batch 64; no EMA of G
(the paper samples the raw generator). G is toy_grid's (4x400 ReLU+BN);
D is the critic of Gulrajani et al.'s toy code (three layers of 512, with
leaky ReLU 0.2 for its ReLU) instead of toy_grid's maxout: clipping drives
every weight onto the box's faces, where a maxout unit's pieces become
equal and tie. The paper trained images, not this toy:
what the critic learns here is in docs/results.md (WGAN critics), drawn by
scripts/figure_wgan_critics.py.

  python experiments/train.py --config experiments/configs/toy_grid_wgan_clip.py \
      --workdir /tmp/toy_grid_wgan_clip

Runtime: not yet measured end to end (five critic updates per step: about
five times toy_grid's step). Target: none published for this toy; weight
clipping is expected to train slowly and to fit a critic far simpler than
the data (Gulrajani et al. 2017, Fig. 1): compare with the WGAN-GP row of
scripts/figure_mode_collapse.py.
"""
from experiments.configs import common, toy_grid


def get_config(arg=None):
    options = common.parse_arg(arg)
    config = toy_grid.get_config()
    config.loss.name = 'wasserstein'
    config.reg.weight_clip = 0.01
    config.n_critic = 5
    config.batch_size = 64
    for net in ('g', 'd'):
        config.opt[net].name = 'rmsprop'
        config.opt[net].lr = 5e-5
        config.opt[net].b1 = 0.0   # RMSProp's momentum: none
        config.opt[net].b2 = 0.99  # its mean-square decay (PyTorch's alpha)
        config.opt[net].schedule = 'constant'
    config.model.d.hidden = (512, 512, 512)
    config.model.d.maxout_pieces = 1
    config.ema.decay = 0.0
    if options['smoke']:
        common.apply_smoke(config)
    return config
