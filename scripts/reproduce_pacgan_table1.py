r"""PacGAN (Lin et al. 2018) Table 1: GAN and PacGAN2/3/4 on the 2-D ring and
grid, trials trained together as one vmapped sweep per method.

  # the paper's protocol (400,000 steps per trial; days on a 2-core CPU)
  python scripts/reproduce_pacgan_table1.py --workdir_root workdirs/pacgan
  # a shorter budget, labelled as such in the table
  python scripts/reproduce_pacgan_table1.py --workdir_root workdirs/pacgan_short \
      --budget 20000 --datasets ring --methods gan,pacgan2 --trials 10

Protocol (PacGAN, section 5.1 and appendix): 100,000 training points; Adam,
learning rate 1e-4 constant, β1 0.8; G 4x400 ReLU+BN, D two maxout layers of
200 units x 5 pieces, z 2-D; batches of 100 discriminator inputs, i.e. 100·m
samples for PacGANm, whose discriminator sees packs of m samples concatenated;
400 epochs of the 100,000 points = 400,000 steps; the raw generator (no EMA) is
scored on 2,500 samples: modes captured, share of high-quality samples (within
3σ of a mode), reverse KL over modes; mean ± standard error over 10 trials
(member i has seed i). Writes WORKDIR_ROOT/table1.md (our rows beside the
paper's) and WORKDIR_ROOT/samples.png (member 0 of every run). Runs resume.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PAPER_STEPS = 400_000
# Lin et al. 2018, Table 1 (mean ± standard error over 10 trials), as
# transcribed: (modes, high-quality %, reverse KL).
PAPER = {
    ('ring', 'gan'): ('6.3 ± 0.5', '98.2 ± 0.2', '0.45 ± 0.09'),
    ('ring', 'pacgan2'): ('7.9 ± 0.1', '95.6 ± 2.0', '0.07 ± 0.03'),
    ('ring', 'pacgan3'): ('7.8 ± 0.1', '97.7 ± 0.3', '0.10 ± 0.02'),
    ('ring', 'pacgan4'): ('7.8 ± 0.1', '95.9 ± 1.4', '0.07 ± 0.02'),
    ('grid', 'gan'): ('17.3 ± 0.8', '94.8 ± 0.7', '0.70 ± 0.07'),
    ('grid', 'pacgan2'): ('23.8 ± 0.7', '91.3 ± 0.8', '0.13 ± 0.04'),
    ('grid', 'pacgan3'): ('24.6 ± 0.4', '94.2 ± 0.4', '0.06 ± 0.02'),
    ('grid', 'pacgan4'): ('24.8 ± 0.2', '93.6 ± 0.6', '0.04 ± 0.01'),
}
PACK = {'gan': 1, 'pacgan2': 2, 'pacgan3': 3, 'pacgan4': 4}


def protocol_config(dataset: str, method: str, steps: int):
    """The toy config set to PacGAN's protocol for `method` and `steps`."""
    from experiments.configs import toy_grid, toy_ring
    config = (toy_ring if dataset == 'ring' else toy_grid).get_config()
    pack = PACK[method]
    config.model.d.pack = pack
    config.batch_size = 100 * pack
    config.num_steps = steps
    config.data.num_train = 100_000
    for net in ('g', 'd'):
        config.opt[net].lr = 1e-4
        config.opt[net].b1 = 0.8
        config.opt[net].b2 = 0.999
        config.opt[net].schedule = 'constant'
    config.ema.decay = 0.0  # the raw generator is scored, as in the paper
    config.evals = {'modes': {'num_samples': 2500}}
    config.eval_every = 0
    config.checkpoint_every = max(steps // 10, 1)
    config.log_every = max(steps // 100, 1)
    config.sample_every = 0
    config.progress = False
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workdir_root', required=True)
    parser.add_argument('--budget', type=int, default=PAPER_STEPS,
                        help='steps per trial (the paper: 400,000)')
    parser.add_argument('--trials', type=int, default=10)
    parser.add_argument('--datasets', default='ring,grid')
    parser.add_argument('--methods', default='gan,pacgan2,pacgan3,pacgan4')
    args = parser.parse_args(argv)
    from gan_jax import loop, sweep as sweep_lib
    datasets = args.datasets.split(',')
    methods = args.methods.split(',')
    try:
        sweep_lib.check_names(methods, list(PACK), 'method')
        sweep_lib.check_names(datasets, ['ring', 'grid'], 'dataset')
    except ValueError as e:
        raise SystemExit(str(e)) from None
    os.makedirs(args.workdir_root, exist_ok=True)
    rows, times = [], {}
    for dataset in datasets:
        for method in methods:
            summary, times[(dataset, method)] = loop.run_trials(
                protocol_config(dataset, method, args.budget), args.trials,
                os.path.join(args.workdir_root, f'{dataset}_{method}'))
            rows.append((dataset, method, summary))
    budget_note = ('the paper\'s 400,000 steps' if args.budget == PAPER_STEPS else
                   f'**shortened budget: {args.budget:,} steps per trial** (the paper '
                   f'trains {PAPER_STEPS:,})')
    lines = [f'{args.trials} trials per row, {budget_note}; ours: mean ± standard '
             'error over trials (seeds 0..{}); paper: Lin et al. 2018, Table 1.'.format(
                 args.trials - 1), '',
             '| data | method | modes (ours) | modes (paper) | high quality % (ours) | '
             'high quality % (paper) | reverse KL (ours) | reverse KL (paper) | '
             'wall time |', '|' + '---|' * 9]

    def cell(summary, key, scale=1.0):
        s = summary[f'eval/modes/{key}']
        excluded = f' ({s["excluded"]} n/a)' if s['excluded'] else ''
        return f'{s["mean"] * scale:.3g} ± {s["sem"] * scale:.2g}{excluded}'

    for dataset, method, summary in rows:
        paper = PAPER[(dataset, method)]
        lines.append(f'| {dataset} | {method} | {cell(summary, "modes")} | {paper[0]} | '
                     f'{cell(summary, "high_quality", 100)} | {paper[1]} | '
                     f'{cell(summary, "reverse_kl")} | {paper[2]} | '
                     f'{times[(dataset, method)] / 60:.1f} min |')
    table = '\n'.join(lines) + '\n'
    with open(os.path.join(args.workdir_root, 'table1.md'), 'w') as f:
        f.write(table)
    print(table)
    _figure(args.workdir_root, rows)


def _figure(root, rows):
    """Scatter of 2,500 samples of member 0 of every run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from gan_jax import experiment, sampling
    from gan_jax.data import mixtures
    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3), dpi=100,
                             squeeze=False)
    for ax, (dataset, method, _) in zip(axes[0], rows):
        config, _, G, _, state = experiment.load_member(
            os.path.join(root, f'{dataset}_{method}'), 0)
        points = sampling.sample(G, state.ema_params, state.g_state,
                                 sampling.latents(0, 2500, config.model.z_dim))
        centers, _ = mixtures.centers_and_std(dataset)
        ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.3)
        ax.scatter(centers[:, 0], centers[:, 1], s=20, marker='x', c='red')
        ax.set_title(f'{dataset}, {method}', fontsize=9)
        ax.set_aspect('equal')
    fig.tight_layout()
    fig.savefig(os.path.join(root, 'samples.png'))
    plt.close(fig)


if __name__ == '__main__':
    main()
