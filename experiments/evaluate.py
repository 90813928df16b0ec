r"""Scores a trained run, a folder of PNG images, or a real split, and prints
one JSON object (also appended to WORKDIR/eval.jsonl for a run).

  # the latest (or --best) checkpoint of a run, EMA generator
  python experiments/evaluate.py --workdir workdirs/digits_dcgan \
      [--metrics fid,kid,pr] [--features digits] [--num_samples 10000]
  # images from any codebase, against a dataset split
  python experiments/evaluate.py --images DIR --dataset cifar10 --split train
  # images (e.g. experiments/generate.py's) against a run's own dataset,
  # such as the images of a dataset=folder run
  python experiments/evaluate.py --images DIR --workdir workdirs/my_folder_run
  # against a folder of images of your own
  python experiments/evaluate.py --images DIR --dataset folder \
      --data_path MY_IMAGES --image_size 64
  # a real held-out split as the "generated" set: the floor of each metric
  python experiments/evaluate.py --real_split test --dataset digits

Features: 'inception' (pytorch-fid's InceptionV3, PyTorch-bilinear resize to
299; comparable with published FIDs) or 'digits' (the offline digit
classifier); default 'digits' for digit datasets, else 'inception'. Every
record names the features, the reference split and the sample counts.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from experiments import launch  # noqa: E402

flags.DEFINE_list('metrics', ['fid', 'kid', 'pr'],
                  'Evaluators to run: fid, kid, pr, is, modes, stacked_modes.')
flags.DEFINE_enum('features', None, ['inception', 'digits'],
                  'Feature extractor (default: digits for digit datasets, '
                  'else inception).')
flags.DEFINE_integer('num_samples', 10_000, 'Generated samples to score.')
flags.DEFINE_string('split', 'train', 'Real split the samples are compared with.')
flags.DEFINE_integer('seed', 0, 'Latent seed of the samples.')
flags.DEFINE_bool('best', False, 'Score the best checkpoint (config.best_metric) '
                  'instead of the latest.')
flags.DEFINE_bool('raw', False, 'Score the raw generator instead of its EMA.')
flags.DEFINE_string('images', None, 'Score the PNG images in this folder '
                    '(needs --dataset) instead of a run.')
flags.DEFINE_string('real_split', None, 'Score this real split of --dataset '
                    '(or of the run\'s dataset) instead of a generator.')
flags.DEFINE_string('dataset', None, 'Dataset of the reference split for '
                    '--images / --real_split without --workdir.')
flags.DEFINE_integer('image_size', 0, 'Reference image size for --dataset '
                     '(0 = the dataset default).')
flags.DEFINE_string('data_dir', '', 'TFDS data directory for --dataset.')
flags.DEFINE_string('data_path', '', 'The images of --dataset folder (a directory '
                    'or .zip; needs --image_size).')


def _load_pngs(folder):
    """uint8 [N, H, W, C] of every *.png in folder (sorted by name)."""
    import numpy as np
    from PIL import Image
    if not os.path.isdir(folder):
        launch.fail(f'--images {folder} is not a directory')
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith('.png'))
    if not names:
        launch.fail(f'no .png files in {folder}')
    images = []
    for n in names:
        with Image.open(os.path.join(folder, n)) as im:
            a = np.asarray(im)
        images.append(a[..., None] if a.ndim == 2 else a[..., :3])
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        launch.fail(f'the images in {folder} have different shapes {sorted(shapes)}; '
                    'resize them to one size first')
    return np.stack(images)


def main(workdir):
    import json

    from gan_jax import config as config_lib, data, metrics, sampling
    from gan_jax import experiment, workdir as workdir_lib
    from gan_jax.data import images as images_lib
    FLAGS = flags.FLAGS
    if FLAGS.num_samples <= 0:
        launch.fail(f'--num_samples must be positive, got {FLAGS.num_samples}')
    if FLAGS.images and FLAGS.real_split:
        launch.fail('give --images or --real_split, not both')
    record = {}
    if workdir and not FLAGS.images:
        config, info, G, _, state = experiment.load_run(workdir, best=FLAGS.best)
        record.update(step=int(state.step),
                      checkpoint='best' if FLAGS.best else 'latest',
                      generator='raw' if FLAGS.raw else 'ema')
    elif workdir:  # --images against the run's own dataset (its data.* keys)
        config = workdir_lib.read_config(workdir)
        info = data.get_info(config)
        record['reference_run'] = os.path.abspath(workdir)
    else:
        if not FLAGS.dataset:
            launch.fail('--images and --real_split without --workdir need --dataset')
        config = config_lib.default_config()
        config.dataset = FLAGS.dataset
        config.data.image_size = FLAGS.image_size
        config.data.data_dir = FLAGS.data_dir
        config.data.path = FLAGS.data_path
        config_lib.validate(config)
        info = data.get_info(config)
    if config.dataset == 'stacked_mnist':
        features = 'digits'
    else:
        features = FLAGS.features or (
            'digits' if config.dataset in images_lib.DIGIT_DATASETS else 'inception')

    if FLAGS.images or FLAGS.real_split:
        if FLAGS.images:
            pool = _load_pngs(FLAGS.images)
            record['images'] = os.path.abspath(FLAGS.images)
            if info.kind == 'images' and pool.shape[1:] != tuple(info.shape):
                launch.fail(f'the images in {FLAGS.images} are '
                            f'{"x".join(map(str, pool.shape[1:]))}, the reference '
                            f'dataset\'s {"x".join(map(str, info.shape))}')
        else:
            pool, _ = images_lib.load_split(config.data, config.dataset,
                                            FLAGS.real_split)
            record['real_split'] = FLAGS.real_split
        pool = images_lib.to_float(pool)
        num = len(pool)

        def sample_fn(n, seed):
            return pool[:n]
    else:
        num = FLAGS.num_samples
        params = state.g_params if FLAGS.raw else state.ema_params
        sample_fn = sampling.sample_fn(G, params, state.g_state, config.model.z_dim)

    feature_args = dict(features=features, num_samples=num, split=FLAGS.split,
                        seed=FLAGS.seed)
    evals = {}
    for name in FLAGS.metrics:
        if name in ('fid', 'kid', 'pr', 'is'):
            evals[name] = feature_args
        elif name in ('modes', 'stacked_modes'):
            evals[name] = dict(num_samples=num, seed=FLAGS.seed)
        else:
            launch.fail(f'unknown metric {name!r}; valid: fid, kid, pr, is, modes, '
                        'stacked_modes')
    try:
        evaluators = metrics.from_config(evals, info, config)
    except ValueError as e:
        launch.fail(str(e))
    record.update(dataset=config.dataset, n_fake=num)
    if any(n in evals for n in ('fid', 'kid', 'pr', 'is')):
        from gan_jax.metrics import features as features_lib
        extractor = features_lib.get_extractor(features)
        reference = features_lib.reference_stats(config.data, config.dataset,
                                                 FLAGS.split, extractor)
        record.update(features=extractor.name, reference_split=FLAGS.split,
                      n_real=int(reference['count']))
    for name, evaluator in evaluators.items():
        for key, value in evaluator.run(sample_fn):
            record[f'eval/{name}/{key}'] = value
    record['source'] = 'evaluate.py'
    line = json.dumps(record)
    print(line)
    if workdir and not FLAGS.images:
        with open(os.path.join(workdir, workdir_lib.EVAL_FILE), 'a') as f:
            f.write(line + '\n')


if __name__ == '__main__':
    launch.main(main, needs_config=False, needs_workdir=False)
