r"""Stacked MNIST (1,000 modes): DCGAN against PacDCGAN2/3/4, as in VEEGAN
(Srivastava et al. 2017) and PacGAN (Lin et al. 2018, Table 3), trials trained
together as one sweep per method (members unrolled side by side on CPU,
vmapped on accelerators: gan_jax.sweep, members='auto').

  python scripts/reproduce_stacked_mnist.py --workdir_root workdirs/stacked
  # a CPU budget (labelled as such in the table):
  python scripts/reproduce_stacked_mnist.py --workdir_root workdirs/stacked_cpu \
      --budget 1500 --trials 2 --width 32 --methods dcgan,pacdcgan2

Protocol: three digits drawn independently as the R, G, B channels (the
offline `digits` by default, `--source mnist` with TFDS mnist prepared),
28x28; the DCGAN of experiments/configs/stacked_mnist_dcgan.py (Adam 2e-4,
β1 0.5, batch 64 discriminator inputs, i.e. 64·m samples for PacDCGANm);
26,000 samples of the EMA generator, each channel read by the digit classifier
(gan_jax/metrics/classifier.py); a mode (digit triple) is covered when one
sample falls in it; KL(p_gen ‖ uniform over 1,000). Mean ± standard error
over trials (member i has seed i). Writes WORKDIR_ROOT/table.md beside the
paper's numbers. Runs resume.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The reference code (PacGAN's VEEGAN experiment): 128,000 stacked training
# images, 50 epochs at batch 64 = 100,000 iterations, each one D update and
# two G updates; uniform latents in [-1, 1]^100; G and D with four stride-2
# layers (base width 64, to 512 channels); the raw generator scored on 26,000
# samples. Ours differs in the networks (stacked_mnist_dcgan: two stride-2
# layers from 7x7), normal latents, one G update per D update and the EMA
# generator; docs/results.md lists the differences beside the numbers.
FULL_STEPS = 100_000
# Lin et al. 2018, Table 3 (the VEEGAN setup), as transcribed: (modes, KL).
PAPER = {
    'dcgan': ('99.0', '3.40'),
    'pacdcgan2': ('1000.0 ± 0.0', '0.06 ± 0.01'),
    'pacdcgan3': ('1000.0 ± 0.0', '0.06 ± 0.01'),
    'pacdcgan4': ('1000.0 ± 0.0', '0.07 ± 0.01'),
}
PACK = {'dcgan': 1, 'pacdcgan2': 2, 'pacdcgan3': 3, 'pacdcgan4': 4}


def protocol_config(method: str, steps: int, width: int, source: str):
    """stacked_mnist_dcgan set to `method`, `steps` and base width `width`."""
    from experiments.configs import stacked_mnist_dcgan
    config = stacked_mnist_dcgan.get_config()
    pack = PACK[method]
    config.model.d.pack = pack
    config.batch_size = 64 * pack
    config.num_steps = steps
    config.model.g.base_channels = width
    config.model.d.base_channels = width
    config.data.stacked_source = source
    config.ema.start_step = min(config.ema.start_step, steps // 2)
    config.evals = {'stacked_modes': {'num_samples': 26_000}}
    config.eval_every = 0
    config.checkpoint_every = max(steps // 5, 1)
    config.log_every = max(steps // 50, 1)
    config.sample_every = 0
    config.progress = False
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workdir_root', required=True)
    parser.add_argument('--budget', type=int, default=FULL_STEPS, help='steps per trial')
    parser.add_argument('--trials', type=int, default=10)
    parser.add_argument('--width', type=int, default=64, help='G and D base channels')
    parser.add_argument('--source', default='digits', choices=('digits', 'mnist'))
    parser.add_argument('--methods', default='dcgan,pacdcgan2')
    parser.add_argument('--members', default='auto', choices=('auto', 'vmap', 'unroll'),
                        help='how the trials share the program (gan_jax.sweep.run)')
    args = parser.parse_args(argv)
    from gan_jax import loop, sweep as sweep_lib
    methods = args.methods.split(',')
    try:
        sweep_lib.check_names(methods, list(PACK), 'method')
    except ValueError as e:
        raise SystemExit(str(e)) from None
    os.makedirs(args.workdir_root, exist_ok=True)
    lines = [f'{args.trials} trials per row, '
             + (f'{args.budget:,} steps' if args.budget == FULL_STEPS else
                f'**CPU budget: {args.budget:,} steps per trial**')
             + f', base width {args.width}, source `{args.source}`; ours: mean ± '
             'standard error over trials; paper: Lin et al. 2018, Table 3.', '',
             '| method | modes (ours) | modes (paper) | KL (ours) | KL (paper) | '
             'wall time |', '|---|---|---|---|---|---|']
    for method in methods:
        row, seconds = loop.run_trials(
            protocol_config(method, args.budget, args.width, args.source),
            args.trials, os.path.join(args.workdir_root, method), members=args.members)
        minutes = seconds / 60
        modes, kl = row['eval/stacked_modes/modes'], row['eval/stacked_modes/kl']
        lines.append(f'| {method} | {modes["mean"]:.1f} ± {modes["sem"]:.2g} | '
                     f'{PAPER[method][0]} | {kl["mean"]:.2f} ± {kl["sem"]:.2g} | '
                     f'{PAPER[method][1]} | {minutes:.1f} min |')
    table = '\n'.join(lines) + '\n'
    with open(os.path.join(args.workdir_root, 'table.md'), 'w') as f:
        f.write(table)
    print(table)


if __name__ == '__main__':
    main()
