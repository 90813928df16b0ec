"""FID InceptionV3: equal to torch-fidelity's PyTorch port of the FID network
(same architecture as pytorch-fid's `fid_inception_v3`) under random weights,
PyTorch-bilinear resizing, weight conversion and file round trips, batched
extraction that drops no image, and features, FID, KID, precision/recall and
IS equal on 1, 3 and 8 devices and with 2 processes."""
import importlib
import importlib.util
import os
import socket
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from flax import traverse_util

from gan_jax.metrics import inception


def random_variables(seed):
    """Flax variables with He-scaled kernels and BatchNorm statistics near the
    identity, so activations stay O(1) through all 94 conv layers."""
    rng = np.random.default_rng(seed)
    flat = {}
    for key, shape in inception.expected_shapes().items():
        name = key.rsplit('/', 1)[1]
        if name == 'kernel':
            fan_in = int(np.prod(shape[:-1]))
            value = rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / fan_in)
        elif name in ('scale', 'var'):
            value = 0.8 + 0.4 * rng.random(shape, np.float32)
        else:  # bias, mean
            value = rng.standard_normal(shape, np.float32) * 0.1
        flat[key] = value.astype(np.float32)
    return traverse_util.unflatten_dict(flat, sep='/')


@pytest.fixture(scope='module')
def torch():
    return pytest.importorskip('torch')


@pytest.fixture(scope='module')
def reference(torch):
    """torch-fidelity's FeatureExtractorInceptionV3 with seeded random weights.

    Its module is imported without running torch_fidelity/__init__.py, which
    imports torchvision (not importable next to this torch); the pretrained
    download is replaced by random weights.
    """
    if 'torch_fidelity' not in sys.modules:
        spec = importlib.util.find_spec('torch_fidelity')
        if spec is None:
            pytest.skip('torch-fidelity is not installed')
        added_before = set(sys.modules)
        package = types.ModuleType('torch_fidelity')
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules['torch_fidelity'] = package
        try:
            module = importlib.import_module(
                'torch_fidelity.feature_extractor_inceptionv3')
        finally:
            # Leave no stub behind for other tests that import the real package.
            for name in set(sys.modules) - added_before:
                if name.split('.')[0] == 'torch_fidelity':
                    del sys.modules[name]
    else:
        module = importlib.import_module(
            'torch_fidelity.feature_extractor_inceptionv3')
    cls = module.FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, 'load_state_dict_from_url', lambda *a, **k: None)
        patch.setattr(cls, 'load_state_dict', lambda self, *a, **k: None)
        model = cls('inception-v3-compat', ['2048', 'logits'])
    generator = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(shape, generator=generator)

    def uniform(low, high, size):
        return low + (high - low) * torch.rand(size, generator=generator)

    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(randn(*layer.weight.shape) * (2.0 / fan_in) ** 0.5)
            elif isinstance(layer, torch.nn.BatchNorm2d):
                size = layer.num_features
                layer.weight.copy_(uniform(0.8, 1.2, size))
                layer.bias.copy_(randn(size) * 0.1)
                layer.running_mean.copy_(randn(size) * 0.1)
                layer.running_var.copy_(uniform(0.8, 1.2, size))
            elif isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(randn(*layer.weight.shape)
                                   / layer.in_features ** 0.5)
                layer.bias.copy_(randn(layer.out_features) * 0.1)
    model.eval()
    return model


def test_network_matches_torch_fidelity(torch, reference):
    # torch-fidelity takes uint8 and computes (x - 128) / 128 (exact in float32);
    # at 299×299 its resize is the identity, so both networks see the same input.
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 299, 299), generator=generator,
                           dtype=torch.uint8)
    with torch.no_grad():
        pool_ref, logits_ref = (t.numpy() for t in reference(images))
    state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
    variables = inception.convert_torch_state_dict(state_dict)
    x = (images.numpy().astype(np.float32) - 128) / 128
    out = jax.jit(inception.InceptionV3().apply)(variables, x.transpose(0, 2, 3, 1))
    pool, logits = np.asarray(out['pool']), np.asarray(out['logits'])
    assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
    assert pool.dtype == np.float32 and logits.dtype == np.float32
    # Relative errors only mean something if activations neither vanish nor blow
    # up through the random network.
    assert 0.5 < np.abs(pool_ref).max() < 50 and 0.5 < np.abs(logits_ref).max() < 50
    assert (pool_ref > 0).mean() > 0.5
    for ours, ref in [(pool, pool_ref), (logits, logits_ref)]:
        scale = np.abs(ref).max()
        assert np.abs(ours - ref).max() / scale <= 1e-4
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize('shape', [(2, 32, 32, 3), (2, 28, 28, 1), (1, 320, 320, 3),
                                   (1, 299, 299, 3)])
def test_resize_is_pytorch_bilinear(torch, shape):
    images = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    ours = np.asarray(inception.resize_to_inception(images))
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299),
        mode='bilinear', align_corners=False).permute(0, 2, 3, 1).numpy()
    assert ours.shape == (shape[0], 299, 299, 3)
    np.testing.assert_allclose(ours, np.broadcast_to(ref, ours.shape), rtol=0,
                               atol=1e-5)


def test_average_pool_excludes_padding_like_torch(torch):
    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype(np.float32)
    ref = torch.nn.functional.avg_pool2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), 3, stride=1, padding=1,
        count_include_pad=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(inception.avg_pool_3x3_exclude_pad(x)),
                               ref, rtol=1e-6, atol=1e-6)


def test_torch_state_dict_round_trip(reference):
    state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
    back = inception.to_torch_state_dict(inception.convert_torch_state_dict(state_dict))
    expected = {k: v for k, v in state_dict.items()
                if not k.endswith('num_batches_tracked')}
    assert sorted(back) == sorted(expected)
    for key, value in expected.items():
        assert back[key].dtype == value.dtype
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_convert_rejects_foreign_keys():
    state_dict = inception.to_torch_state_dict(random_variables(0))
    with pytest.raises(ValueError, match='AuxLogits'):
        inception.convert_torch_state_dict(
            {**state_dict, 'AuxLogits.fc.weight': np.zeros((1000, 768))})
    del state_dict['Mixed_7c.branch_pool.bn.running_var']
    with pytest.raises(ValueError, match='Mixed_7c/branch_pool/bn/var'):
        inception.convert_torch_state_dict(state_dict)


def test_save_load_round_trip(tmp_path, monkeypatch):
    variables = random_variables(0)
    path = str(tmp_path / 'weights.npz')
    assert inception.save_weights(variables, path) == path
    loaded = inception.load_weights(path)
    flat, flat_loaded = (traverse_util.flatten_dict(v, sep='/')
                         for v in (variables, loaded))
    assert sorted(flat) == sorted(flat_loaded)
    for key in flat:
        np.testing.assert_array_equal(flat_loaded[key], flat[key], err_msg=key)
    # The environment variable names the default file.
    monkeypatch.setenv('GAN_JAX_INCEPTION', str(tmp_path / 'env.npz'))
    inception.save_weights(variables)
    assert (tmp_path / 'env.npz').exists()
    assert sorted(traverse_util.flatten_dict(inception.load_weights(), sep='/')) == \
        sorted(flat)


def test_damaged_weight_files_give_clear_errors(tmp_path):
    variables = random_variables(0)
    good = tmp_path / 'good.npz'
    inception.save_weights(variables, str(good))
    truncated = tmp_path / 'truncated.npz'
    truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    garbage = tmp_path / 'garbage.npz'
    garbage.write_bytes(b'this is not an npz file' * 10)
    for path in (truncated, garbage):
        with pytest.raises(ValueError, match='unreadable FID Inception weights'):
            inception.load_weights(str(path))
    flat = traverse_util.flatten_dict(variables, sep='/')
    flat['params/fc/kernel'] = flat['params/fc/kernel'][:, :1000]
    wrong_shape = tmp_path / 'wrong_shape.npz'
    np.savez(wrong_shape, **flat)
    with pytest.raises(ValueError,
                       match=r"'params/fc/kernel' has shape \(2048, 1000\)"):
        inception.load_weights(str(wrong_shape))
    del flat['params/fc/kernel']
    missing_key = tmp_path / 'missing_key.npz'
    np.savez(missing_key, **flat)
    with pytest.raises(ValueError, match='params/fc/kernel'):
        inception.load_weights(str(missing_key))


def test_missing_weights_say_how_to_convert(tmp_path, monkeypatch):
    path = str(tmp_path / 'absent.npz')
    monkeypatch.setenv('GAN_JAX_INCEPTION', path)
    for load in (inception.load_weights, inception.FeatureExtractor):
        with pytest.raises(FileNotFoundError) as info:
            load()
        message = str(info.value)
        assert path in message
        assert inception.TORCH_WEIGHTS_URL in message
        assert ('python scripts/convert_inception_weights.py --input '
                'pt_inception-2015-12-05-6726825d.pth') in message


def test_feature_extractor_keeps_every_image():
    variables = random_variables(1)
    # 7 images in batches of 4: the last batch is padded with one zero image.
    images = np.random.default_rng(2).uniform(-1, 1, (7, 24, 24, 3)).astype(np.float32)
    extractor = inception.FeatureExtractor(variables, batch_size=4)
    assert extractor.name == 'inception_fid_pt' and extractor.dim == 2048
    features = extractor(images)
    whole = jax.jit(lambda v, x: inception.InceptionV3().apply(
        v, inception.resize_to_inception(x)))(variables, images)
    assert features['pool'].shape == (7, 2048)
    assert features['logits'].shape == (7, 1008)
    assert features['pool'].dtype == np.float32
    for key in ('pool', 'logits'):
        ref = np.asarray(whole[key])
        np.testing.assert_allclose(features[key], ref, rtol=1e-5,
                                   atol=1e-5 * np.abs(ref).max(), err_msg=key)
    # Rows are distinct images, not copies of one.
    assert np.abs(features['pool'][0] - features['pool'][6]).max() > 1e-3


# ---------------------------------------------------------------------------
# Several devices and several processes (tests/scripts/eval_equivalence.py).

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tests', 'scripts', 'eval_equivalence.py')
# Relative to each array's largest magnitude. Features differ from one
# device's only through the convolutions' batch size per device (measured:
# 2.7e-7 on 8 devices); statistics merged over processes through the order
# of float64 sums (5e-16).
FEATURE_TOLERANCE = 1e-5


def script_env(**extra):
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env.pop('XLA_FLAGS', None)
    env.update(extra)
    return env


def run_script(out, tmp_path, devices=1, **extra):
    flags = f'--xla_force_host_platform_device_count={devices}'
    done = subprocess.run([sys.executable, SCRIPT, str(out)], capture_output=True,
                          text=True, timeout=900,
                          env=script_env(XLA_FLAGS=flags,
                                         GAN_JAX_CACHE=str(tmp_path / 'cache'),
                                         **extra))
    assert done.returncode == 0, done.stderr[-3000:]


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('one_device')
    run_script(tmp / 'out.npz', tmp)
    return load(tmp / 'out.npz')


def assert_same_evaluation(result, reference):
    """Features, statistics and every metric as on one device: float arrays
    to FEATURE_TOLERANCE of their scale, counts and the data batches exact."""
    for key, expected in reference.items():
        if key in ('devices', 'local_devices', 'processes', 'call_batch',
                   'fake/rows', 'data/collectives'):
            continue
        got = result[key]
        assert got.shape == expected.shape and got.dtype == expected.dtype, key
        if key.startswith('data/') or not np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_array_equal(got, expected, err_msg=key)
            continue
        scale = np.max(np.abs(expected))
        if key.startswith('eval/is/is_std'):  # 1e-3 of a spread of scores near 1
            scale = reference['eval/is/is']
        np.testing.assert_allclose(got, expected, rtol=0,
                                   atol=FEATURE_TOLERANCE * scale, err_msg=key)
    for k in range(3):  # the on-device flip and scaling equal the host's
        for key in ('x', 'label'):
            np.testing.assert_array_equal(result[f'data/{k}/{key}'],
                                          result[f'data/{k}/{key}_host'])


@pytest.mark.slow
@pytest.mark.parametrize('devices, call_batch', [(3, 6), (8, 8)])
def test_inception_features_and_fid_equal_on_several_devices(
        tmp_path, one_device, devices, call_batch):
    run_script(tmp_path / 'out.npz', tmp_path, devices=devices)
    result = load(tmp_path / 'out.npz')
    assert int(result['devices']) == devices
    # Batches of 4 images are rounded up to fill every device; the padding
    # rows are dropped (10 samples, 12 reference images: both padded).
    assert int(result['call_batch']) == call_batch and int(one_device['call_batch']) == 4
    assert int(result['data/collectives']) == 0
    assert result['fake/pool'].shape == (10, 2048)
    assert_same_evaluation(result, one_device)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_inception_features_and_fid_equal_with_two_processes(tmp_path, one_device):
    """Two processes of 2 devices each (gloo): each featurizes its 5 of the 10
    samples and its 6 of the 12 reference images on its own devices; the
    statistics merge and the features gather into the one-device values on
    both processes."""
    port = free_port()
    cache = tmp_path / 'cache'
    procs = [subprocess.Popen(
        [sys.executable, SCRIPT, str(tmp_path / 'out.npz')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=script_env(XLA_FLAGS='--xla_force_host_platform_device_count=2',
                       GAN_JAX_CACHE=str(cache),
                       GAN_JAX_COORDINATOR=f'127.0.0.1:{port}',
                       GAN_JAX_NUM_PROCESSES='2', GAN_JAX_PROCESS_ID=str(i)))
        for i in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    results = [load(tmp_path / f'out_{i}.npz') for i in range(2)]
    for i, result in enumerate(results):
        assert int(result['processes']) == 2 and int(result['local_devices']) == 2
        assert result['fake/rows'].tolist() == [[0, 5], [5, 10]][i]
        assert_same_evaluation(result, one_device)
    # Both processes hold the same numbers, so process 0's record is theirs.
    for key in results[0]:
        if key.startswith(('eval/', 'fake/mean', 'fake/cov', 'reference/')):
            np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)
    # One cache file, no temporary left behind.
    assert os.listdir(cache / 'reference') == [
        'digits-test[:12]-28x28x1-inception_fid_pt.npz']
