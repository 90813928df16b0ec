r"""Trains a GAN; intentionally kept short, all logic lives in gan_jax.loop.

  python experiments/train.py --config experiments/configs/toy_ring.py \
      --workdir /tmp/toy_ring [--config.KEY=VALUE ...]

Run again with the same workdir to resume where it stopped.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import launch  # noqa: E402


def main(config, workdir):
    from gan_jax import loop
    loop.run(config, workdir)


if __name__ == '__main__':
    launch.main(main, needs_config=True)
