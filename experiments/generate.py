r"""Writes PNG images of a trained run into a folder, for any FID tool
(clean-fid, torch-fidelity, pytorch-fid) or for `evaluate.py --images`.

  python experiments/generate.py --workdir workdirs/digits_dcgan --num 1000 \
      --out workdirs/digits_dcgan/png [--seeds A-B] [--truncation PSI] \
      [--class K] [--batch B] [--best] [--raw]

Image i of seed s is `seedSSSSSS.png`: uint8, level = round((x + 1) * 127.5)
of the generator's output x in [-1, 1] (`images.to_uint8`, the inverse of the
pipeline's uint8 -> float map, so a PNG reads back as exactly the floats a
real image of that level feeds the networks). Its latent is
normal(PRNGKey(s), [z_dim]) (`sampling.seed_latents`), its class (conditional
models) `--class K` or s mod K: the same seed always gives the same image,
whatever the other seeds, --num or --batch. Seeds: `--num N` alone is
0..N-1; `--seeds A-B` is A..B inclusive (with --num it must count N).

`manifest.json` records the checkpoint step, the generator (EMA or raw), the
seeds, the truncation and the class. Run again with the same arguments and
files already written are skipped (each is written whole, then renamed, so an
interrupted run leaves none half-written); a folder holding images of another
checkpoint or setting is refused.
"""
import inspect
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from experiments import launch  # noqa: E402


def define_flags():
    """The launcher's flags (defined only when run as a script, so that tests
    can import `generate` without adding flags to their process)."""
    flags.DEFINE_integer('num', None,
                         'Number of images (seeds 0..N-1 unless --seeds).')
    flags.DEFINE_string('seeds', None, 'Seed range A-B, inclusive (or one seed A).')
    flags.DEFINE_string('out', None, 'Output folder (created).')
    flags.DEFINE_float('truncation', 1.0, 'Truncation psi (generators with a w_avg: '
                       'stylegan2); 1 = none.')
    flags.DEFINE_integer('class', None, 'Class of every image (conditional models); '
                         'default: seed mod K.')
    flags.DEFINE_integer('batch', 64, 'Images per generator call.')
    flags.DEFINE_bool('best', False, 'The best checkpoint (config.best_metric) '
                      'instead of the latest.')
    flags.DEFINE_bool('raw', False, 'The raw generator instead of its EMA.')
    flags.mark_flags_as_required(['out'])


MANIFEST = 'manifest.json'
# Settings that must match for a folder to be continued.
SETTINGS = ('workdir', 'checkpoint', 'step', 'generator', 'truncation', 'class',
            'shape')


class GenerateError(ValueError):
    """Bad arguments or an incompatible output folder (one line)."""


def choose_seeds(num, seeds_text):
    """The seeds of --num / --seeds (see the module docstring)."""
    if num is not None and num <= 0:
        raise GenerateError(f'--num must be positive, got {num}')
    if seeds_text is None:
        if num is None:
            raise GenerateError('give --num N or --seeds A-B')
        return range(num)
    from gan_jax import sampling
    try:
        seeds = sampling.parse_seed_range(seeds_text)
    except ValueError as e:
        raise GenerateError(f'--seeds: {e}') from None
    if num is not None and num != len(seeds):
        raise GenerateError(f'--seeds {seeds_text} holds {len(seeds)} seeds, but '
                            f'--num is {num}')
    return seeds


def file_name(seed: int) -> str:
    return f'seed{seed:06d}.png'


def generate(workdir: str, out: str, seeds, *, truncation: float = 1.0,
             class_index=None, batch: int = 64, best: bool = False,
             raw: bool = False, progress: bool = True) -> int:
    """Writes one PNG per seed of the run in `workdir` into `out` and its
    manifest.json; returns how many were written (0 when all were there).

    Raises:
      GenerateError: bad arguments, or `out` holds another run's images.
      FileNotFoundError: no run or checkpoint in workdir.
    """
    from PIL import Image
    from tqdm import tqdm

    from gan_jax import experiment, models, sampling
    from gan_jax.data import images as images_lib
    if batch <= 0:
        raise GenerateError(f'--batch must be positive, got {batch}')
    if experiment.load_sweep(workdir) is not None:
        raise GenerateError(f'{workdir} is a sweep: sample a member with '
                            'experiments/sample.py --member i')
    config, info, G, _, state = experiment.load_run(workdir, best=best)
    if info.kind != 'images':
        raise GenerateError(f'{workdir} trains on {config.dataset!r} (2-D points), '
                            'not images: use experiments/sample.py')
    k = models.num_classes_of(G)
    if class_index is not None and not 0 <= class_index < k:
        takes = f'classes 0..{k - 1}' if k else 'no class (unconditional)'
        raise GenerateError(f'--class {class_index}: the generator takes {takes}')
    if truncation != 1.0 and 'truncation_psi' not in inspect.signature(
            type(G).__call__).parameters:
        raise GenerateError(f'--truncation needs a generator with a w_avg '
                            f'(stylegan2); this run is {config.model.name!r}')
    settings = {'workdir': os.path.abspath(workdir),
                'checkpoint': 'best' if best else 'latest', 'step': int(state.step),
                'generator': 'raw' if raw else 'ema', 'truncation': float(truncation),
                'class': class_index, 'shape': list(info.shape)}
    manifest_path = os.path.join(out, MANIFEST)
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        differ = [key for key in SETTINGS if old.get(key) != settings[key]]
        if differ:
            raise GenerateError(
                f'{out} holds images of another setting ('
                + ', '.join(f'{key} {old.get(key)!r} here, {settings[key]!r} now'
                            for key in differ) + '); use a new --out')
    elif os.path.isdir(out) and os.listdir(out):
        raise GenerateError(f'{out} is not empty and has no {MANIFEST}: use a new '
                            'or empty --out')
    os.makedirs(out, exist_ok=True)

    def present():
        return {s for s in seeds if os.path.exists(os.path.join(out, file_name(s)))}

    def write_manifest():
        done = sorted(int(n[4:-4]) for n in os.listdir(out)
                      if n.startswith('seed') and n.endswith('.png'))
        record = dict(settings, seeds=done, num_images=len(done),
                      latents='jax.random.normal(PRNGKey(seed), (z_dim,))',
                      labels=('none' if not k else 'class' if class_index is not None
                              else 'seed mod num_classes'),
                      pixels='uint8 round((x + 1) * 127.5), x in [-1, 1]')
        tmp = manifest_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, manifest_path)

    write_manifest()  # the settings first: an interrupted folder can be continued
    todo = [s for s in seeds if s not in present()]
    params = state.g_params if raw else state.ema_params
    bar = tqdm(total=len(seeds), initial=len(seeds) - len(todo), unit='img',
               disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            # Every call has `batch` rows (the last chunk padded with its last
            # seed), so each seed is computed by the same compiled program.
            padded = chunk + [chunk[-1]] * (batch - len(chunk))
            z = sampling.seed_latents(padded, config.model.z_dim)
            labels = sampling.seed_labels(G, padded, class_index)
            x = sampling.sample(G, params, state.g_state, z, labels, batch_size=batch,
                                truncation_psi=truncation)[:len(chunk)]
            for seed, pixels in zip(chunk, images_lib.to_uint8(x)):
                path = os.path.join(out, file_name(seed))
                image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1
                                        else pixels)
                image.save(path + '.tmp', format='PNG')
                os.replace(path + '.tmp', path)
            bar.update(len(chunk))
    finally:
        bar.close()
        write_manifest()
    return len(todo)


def main(workdir):
    FLAGS = flags.FLAGS
    try:
        seeds = choose_seeds(FLAGS.num, FLAGS.seeds)
        written = generate(workdir, FLAGS.out, seeds, truncation=FLAGS.truncation,
                           class_index=FLAGS['class'].value, batch=FLAGS.batch,
                           best=FLAGS.best, raw=FLAGS.raw)
    except GenerateError as e:
        launch.fail(str(e))
    print(f'wrote {written} images ({len(seeds) - written} already there) to '
          f'{FLAGS.out}')


if __name__ == '__main__':
    define_flags()
    launch.main(main, needs_config=False)
