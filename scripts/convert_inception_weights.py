"""Converts pytorch-fid's Inception weights into the .npz that gan_jax loads.

Download pytorch-fid's FID Inception weights (the TensorFlow FID graph
`inception-2015-12-05`, ported to PyTorch):

  https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

then run (needs PyTorch, only for reading the file)

  python scripts/convert_inception_weights.py \
      --input pt_inception-2015-12-05-6726825d.pth

which writes $GAN_JAX_INCEPTION, or ~/.cache/gan_jax/inception_fid.npz, where
`gan_jax.metrics.inception.load_weights` looks by default.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def convert(input_path: str, output_path: str) -> dict:
    """Reads the torch state dict at input_path, writes the flax .npz at
    output_path; returns the flax variables {'params', 'batch_stats'}."""
    # torch is needed only here, to read the pickle; gan_jax never imports it.
    import torch

    from gan_jax.metrics import inception

    state_dict = torch.load(input_path, map_location='cpu')
    if not isinstance(state_dict, dict):
        raise ValueError(f'{input_path}: expected a state dict, got '
                         f'{type(state_dict).__name__}')
    variables = inception.convert_torch_state_dict(
        {key: value.detach().cpu().numpy() for key, value in state_dict.items()})
    inception.save_weights(variables, output_path)
    return variables


def _count(tree) -> int:
    """Number of scalars in a nested dict of arrays."""
    if isinstance(tree, dict):
        return sum(_count(value) for value in tree.values())
    return int(tree.size)


def main(argv=None) -> None:
    """Command line entry point."""
    from gan_jax.metrics import inception

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input', required=True,
                        help=f'pytorch-fid weights ({inception.TORCH_WEIGHTS_FILE})')
    parser.add_argument('--output', default=inception.default_weights_path(),
                        help='.npz to write (default: %(default)s)')
    args = parser.parse_args(argv)
    variables = convert(args.input, args.output)
    print(f'wrote {args.output}: {_count(variables["params"]):,} parameters, '
          f'{_count(variables["batch_stats"]):,} BatchNorm statistics')


if __name__ == '__main__':
    main()
