"""experiments/generate.py: PNG folders of a trained run (per-seed latents,
uint8 quantisation of the pipeline, skip-and-resume, manifest), sample.py's
--seeds, and evaluate.py --images on such a folder."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from experiments import generate as generate_lib
from experiments.configs import digits_dcgan
from gan_jax import experiment, loop, sampling
from gan_jax.data import images
import helpers


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
    """A 6-step digits DCGAN (smoke widths) and its workdir."""
    base = tmp_path_factory.mktemp('digits_run')
    config = digits_dcgan.get_config('smoke')
    config.data.data_dir = str(base / 'tfds')
    config.evals = {}
    config.best_metric = ''
    config.progress = False
    workdir = str(base / 'run')
    loop.run(config, workdir)
    return workdir


def read_pngs(folder, seeds):
    out = []
    for s in seeds:
        with Image.open(os.path.join(folder, generate_lib.file_name(s))) as im:
            a = np.asarray(im)
        out.append(a[..., None] if a.ndim == 2 else a)
    return np.stack(out)


def file_bytes(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith('.png'))
    return {n: open(os.path.join(folder, n), 'rb').read() for n in names}


def test_quantisation_is_the_exact_inverse_of_the_pipeline():
    levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(images.to_uint8(images.to_float(levels)), levels)
    # Nearest level; the ends clip.
    x = np.array([-1.0, -1.0 + 0.49 / 127.5, -1.0 + 0.51 / 127.5, 1.0, 1.5, -3.0])
    np.testing.assert_array_equal(images.to_uint8(x), [0, 0, 1, 255, 255, 0])


def test_seed_latents_are_a_function_of_each_seed_alone():
    a = np.asarray(sampling.seed_latents([3, 7, 9], 5))
    b = np.asarray(sampling.seed_latents([9, 3], 5))
    np.testing.assert_array_equal(a[[2, 0]], b)
    np.testing.assert_array_equal(a[0], np.asarray(sampling.latents(3, 1, 5))[0])
    assert sampling.parse_seed_range('4-6') == range(4, 7)
    assert sampling.parse_seed_range('5') == range(5, 6)
    for bad in ('6-4', '-3', 'a-b', '1-2-3'):
        with pytest.raises(ValueError, match='seeds must be A-B'):
            sampling.parse_seed_range(bad)


def test_generate_writes_the_quantised_samples_and_skips_what_is_there(digits_run,
                                                                      tmp_path):
    out = str(tmp_path / 'png')
    seeds = range(40)
    assert generate_lib.generate(digits_run, out, seeds, batch=16, progress=False) == 40
    pngs = read_pngs(out, seeds)
    assert pngs.shape == (40, 28, 28, 1) and pngs.dtype == np.uint8
    # sample.py --seeds 0-39: the same generator, latents and classes, in one call.
    config, _, G, _, state = experiment.load_run(digits_run)
    floats = sampling.sample(G, state.ema_params, state.g_state,
                             sampling.seed_latents(seeds, config.model.z_dim),
                             sampling.seed_labels(G, seeds))
    np.testing.assert_array_equal(pngs, images.to_uint8(floats))
    manifest = json.load(open(os.path.join(out, generate_lib.MANIFEST)))
    assert manifest['step'] == 6 and manifest['seeds'] == list(seeds)
    assert manifest['generator'] == 'ema' and manifest['truncation'] == 1.0
    assert manifest['class'] is None and manifest['shape'] == [28, 28, 1]
    before = file_bytes(out)
    # Run again: nothing written. Interrupted (files gone): only those come back,
    # the same bytes, also with another batch size.
    assert generate_lib.generate(digits_run, out, seeds, batch=16, progress=False) == 0
    for s in (3, 17, 39):
        os.remove(os.path.join(out, generate_lib.file_name(s)))
    assert generate_lib.generate(digits_run, out, seeds, batch=7, progress=False) == 3
    assert file_bytes(out) == before
    # A seed's image is the same whatever else is drawn with it.
    other = str(tmp_path / 'other')
    generate_lib.generate(digits_run, other, range(30, 45), batch=16, progress=False)
    np.testing.assert_array_equal(read_pngs(other, range(30, 40)), pngs[30:])


def test_generate_refuses_another_setting_and_bad_arguments(digits_run, tmp_path):
    out = str(tmp_path / 'png')
    generate_lib.generate(digits_run, out, range(4), batch=4, progress=False)
    with pytest.raises(generate_lib.GenerateError,
                       match=r"holds images of another setting \(generator 'ema' here, "
                       r"'raw' now\); use a new --out"):
        generate_lib.generate(digits_run, out, range(4), raw=True, progress=False)
    with pytest.raises(generate_lib.GenerateError,
                       match=r'--class 3: the generator takes no class \(unconditional\)'):
        generate_lib.generate(digits_run, str(tmp_path / 'c'), range(4), class_index=3)
    with pytest.raises(generate_lib.GenerateError,
                       match="--truncation needs a generator with a w_avg"):
        generate_lib.generate(digits_run, str(tmp_path / 't'), range(4), truncation=0.5)
    with pytest.raises(generate_lib.GenerateError, match='holds 3 seeds, but --num is 4'):
        generate_lib.choose_seeds(4, '0-2')
    assert generate_lib.choose_seeds(None, '10-12') == range(10, 13)
    assert generate_lib.choose_seeds(5, None) == range(5)
    assert not os.path.exists(str(tmp_path / 'c'))


@pytest.mark.slow
def test_cli_generate_twice_equals_sample_py_and_scores_like_the_evaluator(
        digits_run, tmp_path):
    """The launchers end to end; FID in digit features (trains the classifier)."""
    from gan_jax import data, metrics
    out = str(tmp_path / 'png')
    first = helpers.launch('generate.py', '--workdir', digits_run, '--num', '300',
                           '--out', out)
    assert first.returncode == 0, first.stderr
    assert 'wrote 300 images (0 already there)' in first.stdout
    before = file_bytes(out)
    second = helpers.launch('generate.py', '--workdir', digits_run, '--num', '300',
                            '--out', out)
    assert second.returncode == 0
    assert 'wrote 0 images (300 already there)' in second.stdout
    assert file_bytes(out) == before
    npz = str(tmp_path / 's.npz')
    sampled = helpers.launch('sample.py', '--workdir', digits_run, '--seeds', '0-299',
                             '--out', npz)
    assert sampled.returncode == 0, sampled.stderr
    floats = np.load(npz)['samples']
    np.testing.assert_array_equal(read_pngs(out, range(300)), images.to_uint8(floats))
    bad = helpers.launch('generate.py', '--workdir', digits_run, '--seeds', '9-2',
                         '--out', out)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --seeds: seeds must be A-B with 0 <= A <= B < 2**32, got '9-2'"]

    scored = helpers.launch('evaluate.py', '--images', out, '--workdir', digits_run,
                            '--metrics', 'fid', '--features', 'digits')
    assert scored.returncode == 0, scored.stderr
    record = json.loads(scored.stdout.strip().splitlines()[-1])
    assert record['n_fake'] == 300 and record['features'] == 'digits_lenet'
    # The in-loop evaluator on the same samples: equal to the PNGs' FID when
    # given the quantised samples, within quantisation of the float ones.
    config = experiment.load_run(digits_run)[0]
    info = data.get_info(config)
    fid = metrics.from_config({'fid': dict(features='digits', num_samples=300)},
                              info, config)['fid']
    quantised = images.to_float(images.to_uint8(floats))
    in_loop_quantised = dict(fid.run(lambda n, seed: quantised[:n]))['fid']
    in_loop_float = dict(fid.run(lambda n, seed: floats[:n]))['fid']
    png_fid = record['eval/fid/fid']
    assert abs(png_fid - in_loop_quantised) <= 1e-9 * png_fid
    assert abs(png_fid - in_loop_float) <= 1e-3 * png_fid, (png_fid, in_loop_float)
