r"""Builds the TFDS `celeb_a` dataset from files downloaded by hand.

TFDS downloads CelebA from Google Drive, which often refuses with a quota
error. Download these five files from the CelebA site (Google Drive or Baidu
mirrors) into one directory:

  img_align_celeba.zip  list_eval_partition.txt  list_attr_celeba.txt
  list_landmarks_align_celeba.txt  identity_CelebA.txt

then run

  python scripts/prepare_celeba.py --manual_dir DIR --data_dir ~/tensorflow_datasets

and train with --config.data.data_dir=~/tensorflow_datasets. The result is the
same dataset (same features, splits and version) that `tfds build celeb_a`
writes; nothing is fetched from the network.
"""
import argparse
import os
import sys

import gan_jax  # noqa: F401  (before TensorFlow: quiets its start-up notices)

MANUAL_FILES = {
    'img_align_celeba': 'img_align_celeba.zip',
    'list_eval_partition': 'list_eval_partition.txt',
    'list_attr_celeba': 'list_attr_celeba.txt',
    'landmarks_celeba': 'list_landmarks_align_celeba.txt',
    'identity_celeba': 'identity_CelebA.txt',
}


def build(manual_dir: str, data_dir: str) -> str:
    """Prepares celeb_a in data_dir from the files in manual_dir; returns the
    dataset directory."""
    missing = [f for f in MANUAL_FILES.values()
               if not os.path.exists(os.path.join(manual_dir, f))]
    if missing:
        raise FileNotFoundError(f'missing in {manual_dir}: {", ".join(missing)}')
    import tensorflow as tf
    tf.config.set_visible_devices([], 'GPU')
    import tensorflow_datasets as tfds

    base = tfds.builder_cls('celeb_a')

    class ManualCelebA(base, skip_registration=True):
        name = 'celeb_a'  # same name, files and directory as TFDS' own build

        def _split_generators(self, dl_manager):
            paths = {k: os.path.join(manual_dir, f) for k, f in MANUAL_FILES.items()}
            dl_manager.download = lambda urls: {k: paths[k] for k in urls}
            return super()._split_generators(dl_manager)

    builder = ManualCelebA(data_dir=os.path.expanduser(data_dir))
    builder.download_and_prepare()
    return builder.data_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--manual_dir', required=True)
    parser.add_argument('--data_dir', default='~/tensorflow_datasets')
    args = parser.parse_args(argv)
    try:
        print('prepared', build(args.manual_dir, args.data_dir))
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
