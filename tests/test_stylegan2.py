"""StyleGAN2 (gan_jax/models/stylegan2.py): modulated convolution against the
per-sample closed form, equalized learning rate, FIR resampling, truncation,
style mixing, w_avg, minibatch stddev, projection D, shapes, and a G -> D
forward and backward pass. Tiny networks (8-16 channels, 32 px); larger
resolutions are only traced (jax.eval_shape)."""
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from gan_jax import config as config_lib, experiment, models
from gan_jax.models import stylegan2 as sg

DN = ('NHWC', 'HWIO', 'NHWC')
RNGS = lambda seed=0: {'noise': jax.random.PRNGKey(seed),  # noqa: E731
                       'mixing': jax.random.PRNGKey(seed + 1)}


def small_g(**kwargs):
    kwargs = dict(dict(out_shape=(32, 32, 3), w_dim=16, mapping_layers=2,
                       channel_base=256, channel_max=16), **kwargs)
    return sg.Generator(**kwargs)


def small_d(**kwargs):
    return sg.Discriminator(**dict(dict(channel_base=256, channel_max=16,
                                        mapping_layers=2), **kwargs))


def init_g(G, batch=4, z_dim=8, labels=None, seed=0):
    z = jax.random.normal(jax.random.PRNGKey(100 + seed), (batch, z_dim))
    variables = jax.jit(lambda k, z, y: G.init(k, z, y, train=False))(
        jax.random.PRNGKey(seed), z, labels)
    return jax.tree.map(np.asarray, dict(variables)), z


def per_sample_modconv(x, kernel, styles, *, demodulate, padding):
    """The paper's form: one normalised weight per sample, one conv each."""
    outs = []
    for b in range(x.shape[0]):
        w = kernel * styles[b][None, None, :, None]
        if demodulate:
            w = w / np.sqrt(np.sum(w ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        outs.append(lax.conv_general_dilated(x[b:b + 1], w, (1, 1), padding,
                                             dimension_numbers=DN,
                                             precision='highest'))
    return np.concatenate(outs)


# ---------------------------------------------------------------------------
# Layers.

def test_demodulated_conv_equals_per_sample_normalised_conv_with_unit_norm():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (3, 7, 7, 5))
    kernel = jax.random.normal(keys[1], (3, 3, 5, 4))
    styles = jax.random.normal(keys[2], (3, 5)) + 1.0
    with jax.default_matmul_precision('highest'):
        y = sg.modulated_conv2d(x, kernel, styles, demodulate=True)
        expected = per_sample_modconv(x, kernel, styles, demodulate=True,
                                      padding=[(1, 1), (1, 1)])
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
        # Without demodulation: plain per-sample modulation.
        y = sg.modulated_conv2d(x, kernel, styles, demodulate=False)
        expected = per_sample_modconv(x, kernel, styles, demodulate=False,
                                      padding=[(1, 1), (1, 1)])
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)

        # The effective weight of the function itself (its Jacobian at an
        # interior pixel): the closed form, with unit L2 norm per output channel.
        def centre(xb, b):
            return sg.modulated_conv2d(xb[None], kernel, styles[b:b + 1])[0, 3, 3]
        for b in range(3):
            jac = jax.jacrev(centre)(x[b], b)  # [O, H, W, I]
            w_eff = np.asarray(jac[:, 2:5, 2:5, :]).transpose(1, 2, 3, 0)
            w = kernel * styles[b][None, None, :, None]
            w = w / np.sqrt(np.sum(w ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
            np.testing.assert_allclose(w_eff, w, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(np.sqrt(np.sum(w_eff ** 2, axis=(0, 1, 2))),
                                       np.ones(4), rtol=1e-5)
            assert np.all(jac[:, :2] == 0) and np.all(jac[:, 5:] == 0)


def test_upsampling_modconv_is_fir_upsample_then_per_sample_conv():
    # The transposed-convolution fast path equals the reference algorithm:
    # zero-upsample, FIR (gain 4), then the per-sample 3x3 'valid' convolution
    # (a true convolution, as stylegan2-ada's up layers: the kernel flipped).
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(keys[0], (2, 5, 5, 3))
    kernel = jax.random.normal(keys[1], (3, 3, 3, 4))
    styles = jax.random.normal(keys[2], (2, 3)) + 1.0
    with jax.default_matmul_precision('highest'):
        y = sg.modulated_conv2d(x, kernel, styles, demodulate=True, up=2)
        up = sg.upfirdn2d(x, up=2, padding=(3, 2), gain=4.0)  # [2, 12, 12, 3]
        expected = per_sample_modconv(up, kernel[::-1, ::-1], styles,
                                      demodulate=True, padding='VALID')
    assert y.shape == (2, 10, 10, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_fir_resampling_is_bilinear_and_keeps_the_mean():
    x = jax.random.normal(jax.random.PRNGKey(2), (1, 6, 6, 2))
    up = np.asarray(sg.upsample2d(x))
    assert up.shape == (1, 12, 12, 2)
    xs = np.asarray(x)
    # Along both axes [1,3,3,1]/4 polyphase: y[2k] = x[k-1]/4 + 3x[k]/4,
    # y[2k+1] = 3x[k]/4 + x[k+1]/4 (zeros outside).
    pad = np.pad(xs, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = np.zeros((1, 12, 8, 2))
    rows[:, 0::2] = 0.25 * pad[:, :-2] + 0.75 * pad[:, 1:-1]
    rows[:, 1::2] = 0.75 * pad[:, 1:-1] + 0.25 * pad[:, 2:]
    expected = np.zeros((1, 12, 12, 2))
    expected[:, :, 0::2] = 0.25 * rows[:, :, :-2] + 0.75 * rows[:, :, 1:-1]
    expected[:, :, 1::2] = 0.75 * rows[:, :, 1:-1] + 0.25 * rows[:, :, 2:]
    np.testing.assert_allclose(up, expected, rtol=1e-5, atol=1e-6)
    # A constant stays constant away from the border; downsampling: (x[2k-1] +
    # 3x[2k] + 3x[2k+1] + x[2k+2]) / 8 per axis.
    ones = jnp.ones((1, 8, 8, 1))
    np.testing.assert_allclose(sg.upsample2d(ones)[0, 1:-1, 1:-1], 1.0, rtol=1e-6)
    down = np.asarray(sg.downsample2d(x))
    f = np.array([1, 3, 3, 1]) / 8
    p = pad[0]  # [8, 8, 2]
    rows = np.stack([np.einsum('t,twc->wc', f, p[2 * k:2 * k + 4]) for k in range(3)])
    expected = np.stack([np.einsum('t,htc->hc', f, rows[:, 2 * k:2 * k + 4])
                         for k in range(3)], axis=1)
    assert down.shape == (1, 3, 3, 2)
    np.testing.assert_allclose(down[0], expected, rtol=1e-5, atol=1e-6)


def test_equalized_dense_forward_and_gradients_scale_with_lr_multiplier():
    lr, fan_in = 0.01, 64
    layer = sg.EqualDense(5, lr_multiplier=lr, bias_init=0.5)
    x = jax.random.normal(jax.random.PRNGKey(3), (7, fan_in))
    params = layer.init(jax.random.PRNGKey(4), x)['params']
    # Stored ~ N(0, 1) / lr_multiplier; the bias starts at bias_init.
    assert 80 < np.std(params['kernel']) < 120
    np.testing.assert_array_equal(params['bias'], 0.5)
    scale = lr / math.sqrt(fan_in)
    out = layer.apply({'params': params}, x)
    expected = x @ (params['kernel'] * scale) + params['bias'] * lr
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # d loss / d stored = scale * d loss / d effective weight.
    g_out = jax.random.normal(jax.random.PRNGKey(5), out.shape)
    grads = jax.grad(lambda p: jnp.sum(layer.apply({'params': p}, x) * g_out))(params)
    np.testing.assert_allclose(grads['kernel'], scale * (x.T @ g_out), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(grads['bias'], lr * g_out.sum(0), rtol=1e-5)
    # lrelu: leaky ReLU (0.2) times sqrt(2).
    act = sg.EqualDense(5, activation='lrelu')
    p = act.init(jax.random.PRNGKey(6), x)['params']
    pre = x @ (p['kernel'] / math.sqrt(fan_in))
    np.testing.assert_allclose(act.apply({'params': p}, x),
                               np.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2),
                               rtol=1e-5, atol=1e-6)


def test_equalized_conv_forward_and_gradients_scale():
    conv = sg.EqualConv(4, 3, lr_multiplier=0.5)
    x = jax.random.normal(jax.random.PRNGKey(7), (2, 6, 6, 3))
    params = conv.init(jax.random.PRNGKey(8), x)['params']
    scale = 0.5 / math.sqrt(3 * 3 * 3)

    def plain(kernel):
        return lax.conv_general_dilated(x, kernel, (1, 1), [(1, 1), (1, 1)],
                                        dimension_numbers=DN, precision='highest')
    with jax.default_matmul_precision('highest'):
        out = conv.apply({'params': params}, x)
        np.testing.assert_allclose(out, plain(params['kernel'] * scale), rtol=1e-4,
                                   atol=1e-5)
        g_out = jax.random.normal(jax.random.PRNGKey(9), out.shape)
        grads = jax.grad(
            lambda p: jnp.sum(conv.apply({'params': p}, x) * g_out))(params)
        ref = jax.grad(lambda k: jnp.sum(plain(k) * g_out))(params['kernel'] * scale)
    np.testing.assert_allclose(grads['kernel'], scale * ref, rtol=1e-4, atol=1e-5)
    # down=2: FIR low-pass then the stride-2 conv; 1x1 down: downsample first.
    down = sg.EqualConv(4, 3, down=2)
    p = down.init(jax.random.PRNGKey(10), x)['params']
    with jax.default_matmul_precision('highest'):
        ref = lax.conv_general_dilated(sg.upfirdn2d(x, padding=(2, 2)),
                                       p['kernel'] / math.sqrt(27), (2, 2), 'VALID',
                                       dimension_numbers=DN, precision='highest')
        np.testing.assert_allclose(down.apply({'params': p}, x), ref, rtol=1e-4,
                                   atol=1e-5)
    assert sg.EqualConv(4, 1, down=2).init_with_output(
        jax.random.PRNGKey(0), x)[0].shape == (2, 3, 3, 4)


def test_minibatch_stddev_closed_form():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(11), (8, 2, 3, 4)))
    y = np.asarray(sg.minibatch_stddev(jnp.asarray(x), group_size=4, num_channels=2))
    assert y.shape == (8, 2, 3, 6)
    np.testing.assert_array_equal(y[..., :4], x)
    for i in range(8):
        members = x[i % 2::2]  # 4 samples: group i mod (8 / 4)
        for f in range(2):
            part = members[..., 2 * f:2 * f + 2]
            std = np.sqrt(np.mean((part - part.mean(0)) ** 2, axis=0) + 1e-8)
            np.testing.assert_allclose(y[i, :, :, 4 + f], std.mean(), rtol=1e-5)
    # The group shrinks to a smaller batch; it must divide the batch.
    two = np.asarray(sg.minibatch_stddev(jnp.asarray(x[:2])))
    std = np.sqrt(np.mean((x[:2] - x[:2].mean(0)) ** 2, axis=0) + 1e-8).mean()
    np.testing.assert_allclose(two[..., 4], std, rtol=1e-5)
    with pytest.raises(ValueError, match='batch of 6 is not a multiple of the group'):
        sg.minibatch_stddev(jnp.asarray(x[:6]))


# ---------------------------------------------------------------------------
# Generator.

def test_generator_shapes_collections_and_finite_images():
    G = small_g()
    variables, z = init_g(G)
    assert set(variables) == {'params', 'stats', 'noise_const'}
    assert variables['stats']['mapping_network']['w_avg'].shape == (16,)
    noise = variables['noise_const']['synthesis_network']
    assert noise['b32']['conv0']['noise'].shape == (32, 32)
    assert G.num_ws == sg.num_ws(32) == 8
    synth = variables['params']['synthesis_network']
    assert synth['b4']['const'].shape == (4, 4, 16)
    assert synth['b32']['conv1']['kernel'].shape == (3, 3, 8, 8)  # 256 // 32
    x = jax.jit(lambda v, z: G.apply(v, z, train=False))(variables, z)
    assert x.shape == (4, 32, 32, 3) and np.all(np.isfinite(x))
    # Inference is deterministic (const noise); 'none' drops the noise.
    x2 = jax.jit(lambda v, z: G.apply(v, z, train=False))(variables, z)
    np.testing.assert_array_equal(x, x2)
    gray = small_g(out_shape=(32, 32, 1))
    v, z = init_g(gray, batch=2)
    gray_images = jax.jit(lambda v, z: gray.apply(v, z, train=False))(v, z)
    assert gray_images.shape == (2, 32, 32, 1)
    assert isinstance(G, models.GeneratorProtocol)
    assert isinstance(small_d(), models.DiscriminatorProtocol)


@pytest.mark.parametrize('size', [64, 128, 256])
def test_default_networks_trace_at_larger_resolutions(size):
    G = sg.Generator(out_shape=(size, size, 3))
    D = sg.Discriminator()
    z = jax.ShapeDtypeStruct((2, 512), jnp.float32)
    key = jax.random.PRNGKey(0)
    g_vars = jax.eval_shape(lambda k, z: G.init(k, z, train=False), key, z)
    x = jax.eval_shape(lambda v, z: G.apply(v, z, train=False), g_vars, z)
    assert x.shape == (2, size, size, 3)
    g_train = jax.eval_shape(
        lambda v, z: G.apply(v, z, train=True, rngs=RNGS(), mutable=['stats']),
        g_vars, z)
    assert g_train[0].shape == (2, size, size, 3)
    d_vars = jax.eval_shape(lambda k, x: D.init(k, x, train=False), key, x)
    logits = jax.eval_shape(lambda v, x: D.apply(v, x, train=False), d_vars, x)
    assert logits.shape == (2,)
    # channels at r: min(16384 // r, 512).
    synth = g_vars['params']['synthesis_network']
    assert synth[f'b{size}']['conv1']['kernel'].shape[-1] == min(16384 // size, 512)
    assert d_vars['params']['fromrgb']['kernel'].shape[-1] == min(16384 // size, 512)
    assert G.num_ws == 2 * int(math.log2(size)) - 2


def test_resolution_must_be_a_power_of_two():
    with pytest.raises(ValueError, match='data.image_size=32'):
        sg.Generator(out_shape=(28, 28, 1))
    with pytest.raises(ValueError, match='power-of-two'):
        sg.Generator(out_shape=(48, 48, 3))
    with pytest.raises(ValueError, match='power-of-two'):
        small_d().init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)), train=False)


def test_training_needs_the_noise_and_mixing_streams():
    G = small_g()
    variables, z = init_g(G, batch=2)
    with pytest.raises(ValueError, match="rngs={'noise'"):
        G.apply(variables, z, train=True, rngs={'mixing': jax.random.PRNGKey(0)},
                mutable=['stats'])
    with pytest.raises(ValueError, match="rngs={'mixing'"):
        G.apply(variables, z, train=True, rngs={'noise': jax.random.PRNGKey(0)},
                mutable=['stats'])


def test_truncation_psi_zero_gives_the_w_avg_image():
    G = small_g()
    variables, z = init_g(G)
    w_avg = jax.random.normal(jax.random.PRNGKey(12), (16,))
    variables['stats'] = {'mapping_network': {'w_avg': w_avg}}
    images = jax.jit(lambda v, z: G.apply(v, z, train=False, truncation_psi=0.0))(
        variables, z)
    ws_avg = jnp.broadcast_to(w_avg, (4, G.num_ws, 16))
    expected = jax.jit(lambda v, ws: G.apply(v, ws, train=False, method=G.synthesis))(
        variables, ws_avg)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(images[1:], np.broadcast_to(images[:1], (3, 32, 32, 3)),
                               rtol=1e-5, atol=1e-6)
    # psi and cutoff: the first `cutoff` ws lerp toward w_avg, the rest stay.
    mapping = jax.jit(lambda v, z, psi: G.apply(
        v, z, train=False, truncation_psi=psi, truncation_cutoff=3, method=G.mapping))
    ws = np.asarray(mapping(variables, z, 1.0))
    half = np.asarray(mapping(variables, z, 0.5))
    np.testing.assert_allclose(half[:, :3], w_avg + 0.5 * (ws[:, :3] - w_avg),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(half[:, 3:], ws[:, 3:])


def test_style_mixing_switches_ws_at_the_crossover():
    # The helpers: mix_ws takes layers >= cutoff from the second ws; the
    # cutoff is num_ws (no mixing) at prob 0 and in [1, num_ws) at prob 1.
    a, b = jnp.zeros((2, 5, 3)), jnp.ones((2, 5, 3))
    np.testing.assert_array_equal(sg.mix_ws(a, b, 2)[:, :, 0], [[0, 0, 1, 1, 1]] * 2)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    cut1 = jax.vmap(lambda k: sg.style_mixing_cutoff(k, 8, 1.0))(keys)
    cut0 = jax.vmap(lambda k: sg.style_mixing_cutoff(k, 8, 0.0))(keys)
    assert set(np.asarray(cut1).tolist()) == set(range(1, 8))
    assert np.all(cut0 == 8)
    half = jax.vmap(lambda k: sg.style_mixing_cutoff(k, 8, 0.5))(keys)
    assert 60 < int(np.sum(half < 8)) < 140

    # In the generator: with prob 1 the ws are mapping(z) up to a crossover
    # c in [1, num_ws) and one other w (a second z's) from c on.
    G = small_g(style_mixing_prob=1.0)
    variables, z = init_g(G)
    ws_of = jax.jit(lambda v, z, key: G.apply(
        v, z, train=True, rngs={'mixing': key}, mutable=['stats'],
        method=G.sample_ws)[0])
    own = np.asarray(G.apply(variables, z, train=False, method=G.mapping))
    cutoffs = set()
    for seed in range(6):
        ws = np.asarray(ws_of(variables, z, jax.random.PRNGKey(seed)))
        same = np.all(np.isclose(ws, own, rtol=1e-6, atol=1e-7), axis=(0, 2))
        c = int(np.argmin(same))
        assert 1 <= c < G.num_ws and np.all(same[:c]) and not np.any(same[c:])
        np.testing.assert_array_equal(ws[:, c:], np.broadcast_to(ws[:, c:c + 1],
                                                                 ws[:, c:].shape))
        cutoffs.add(c)
    assert len(cutoffs) > 1
    # prob 0 (or inference): exactly the mapping.
    G0 = small_g(style_mixing_prob=0.0)
    ws = G0.apply(variables, z, train=True, mutable=['stats'], method=G0.sample_ws)[0]
    np.testing.assert_allclose(ws, own, rtol=1e-6)
    np.testing.assert_allclose(G.apply(variables, z, train=False, method=G.sample_ws),
                               own, rtol=1e-6)


def test_w_avg_moves_only_in_training():
    G = small_g(style_mixing_prob=1.0)
    variables, z = init_g(G)
    # init leaves it at zero.
    np.testing.assert_array_equal(variables['stats']['mapping_network']['w_avg'], 0)
    old = np.asarray(jax.random.normal(jax.random.PRNGKey(13), (16,)))
    variables['stats'] = {'mapping_network': {'w_avg': old}}
    w = np.asarray(G.apply(variables, z, train=False, method=G.mapping))[:, 0]

    def new_w_avg(train, **kwargs):
        _, state = jax.jit(lambda v, z: G.apply(v, z, train=train, rngs=RNGS(),
                                                mutable=['stats'], **kwargs))(
            variables, z)
        return np.asarray(state['stats']['mapping_network']['w_avg'])
    mean = w.mean(0)
    # lerp(mean, w_avg, 0.995), once per training call: the style-mixing
    # pass's second z does not count.
    np.testing.assert_allclose(new_w_avg(True), mean + 0.995 * (old - mean), rtol=1e-5)
    np.testing.assert_allclose(new_w_avg(True, method=G.mapping),
                               mean + 0.995 * (old - mean), rtol=1e-5)
    np.testing.assert_array_equal(new_w_avg(False, method=G.sample_ws), old)
    np.testing.assert_array_equal(new_w_avg(True, method=G.mapping, update_w_avg=False),
                                  old)


def test_conditional_mapping_uses_the_label():
    G = small_g(num_classes=3)
    labels = jnp.array([0, 1, 2, 0])
    variables, z = init_g(G, labels=labels)
    assert variables['params']['mapping_network']['embed']['kernel'].shape == (3, 16)
    ws = lambda y: np.asarray(G.apply(variables, z, y, train=False,  # noqa: E731
                                      method=G.mapping))
    assert not np.allclose(ws(labels), ws(jnp.array([1, 1, 2, 0])))
    np.testing.assert_allclose(ws(labels)[1:], ws(jnp.array([1, 1, 2, 0]))[1:],
                               rtol=1e-6)
    with pytest.raises(ValueError, match='needs labels'):
        G.apply(variables, z, train=False)


def test_generator_in_bfloat16():
    G = small_g()
    variables, z = init_g(G, batch=2)
    bf16 = dict(variables, params=jax.tree.map(lambda p: p.astype(jnp.bfloat16),
                                               variables['params']))
    out, state = jax.jit(lambda v, z: G.apply(v, z, train=True, rngs=RNGS(),
                                              mutable=['stats', 'noise_const']))(
        bf16, z.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(out, np.float32)))
    assert state['stats']['mapping_network']['w_avg'].dtype == jnp.float32


# ---------------------------------------------------------------------------
# Discriminator and the whole model.

def test_projection_discriminator_gives_label_dependent_per_sample_logits():
    D = small_d(num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(14), (4, 32, 32, 3))
    labels = jnp.array([0, 1, 2, 0])
    variables = jax.jit(lambda k, x, y: D.init(k, x, y, train=False))(
        jax.random.PRNGKey(15), x, labels)
    params = variables['params']
    assert set(variables) == {'params'}
    assert params['mapping']['embed']['kernel'].shape == (3, 16)  # cmap_dim = ch(4)
    assert params['out']['kernel'].shape == (16, 16)
    apply = jax.jit(lambda v, x, y: D.apply(v, x, y, train=False))
    logits = np.asarray(apply(variables, x, labels))
    assert logits.shape == (4,) and np.all(np.isfinite(logits))
    other = np.asarray(apply(variables, x, jnp.array([1, 1, 2, 0])))
    assert other[0] != logits[0]
    np.testing.assert_allclose(other[1:], logits[1:], rtol=1e-6)
    with pytest.raises(ValueError, match='needs labels'):
        D.apply(variables, x, train=False)
    unconditional = small_d()
    v = jax.eval_shape(lambda k, x: unconditional.init(k, x, train=False),
                       jax.random.PRNGKey(16), x)
    assert 'mapping' not in v['params']
    assert v['params']['out']['kernel'].shape == (16, 1)


def test_generator_to_discriminator_forward_and_backward_at_32px():
    G, D = small_g(num_classes=3), small_d(num_classes=3)
    labels = jnp.array([0, 1, 2, 1])
    g_vars, z = init_g(G, labels=labels)
    d_vars = D.init(jax.random.PRNGKey(17), jnp.zeros((4, 32, 32, 3)), labels,
                    train=False)
    g_params = g_vars.pop('params')
    g_state = g_vars

    @jax.jit
    def loss_and_grads(g_params, d_params, g_state):
        def loss(g_params, d_params):
            fake, new_state = G.apply({'params': g_params, **g_state}, z, labels,
                                      train=True, rngs=RNGS(3), mutable=list(g_state))
            logits = D.apply({'params': d_params}, fake, labels, train=True)
            return jnp.mean(jax.nn.softplus(-logits)), new_state
        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            g_params, d_params)

    (value, new_state), (g_grads, d_grads) = loss_and_grads(
        g_params, d_vars['params'], g_state)
    assert np.isfinite(value)
    for tree in (g_grads, d_grads):
        leaves = jax.tree.leaves(tree)
        assert all(np.all(np.isfinite(g)) for g in leaves)
        assert sum(float(np.sum(np.abs(g))) for g in leaves) > 0
    # The noise strengths (zero at init) get gradients from the random noise.
    assert np.abs(g_grads['synthesis_network']['b32']['conv1']['noise_strength']) > 0
    assert jax.tree.structure(new_state) == jax.tree.structure(g_state)


def test_experiment_build_on_digits_needs_32_pixels():
    config = config_lib.default_config()
    config.dataset = 'digits'
    config.model.name = 'stylegan2'
    config.model.z_dim = 8
    config.model.g.update(dict(w_dim=16, mapping_layers=2, channel_base=128,
                               channel_max=8))
    config.model.d.update(dict(channel_base=128, channel_max=8, mapping_layers=2))
    with pytest.raises(ValueError, match='data.image_size=32'):
        experiment.build(config)
    config.data.image_size = 32
    config.data.labels = True
    info, G, D, spec, state = experiment.build(config)
    assert info.shape == (32, 32, 1) and G.out_shape == (32, 32, 1)
    assert G.num_classes == D.num_classes == 10
    assert set(state.g_state) == {'stats', 'noise_const'}
    assert state.d_state == {}


def test_d_loss_runs_the_minibatch_stddev_d_on_reals_and_fakes_separately():
    """The real logits of d_loss_fn are D on the reals alone: in one call of
    real and fake concatenated, each minibatch-stddev group would hold both
    (sample i is in group i mod B/G), and a collapsed G's fakes would look as
    varied as the reals. Without the feature, D keeps the one mixed call."""
    from gan_jax import losses, train
    D = small_d()
    assert train.separate_real_and_fake(D)
    assert not train.separate_real_and_fake(small_d(mbstd_num_channels=0))
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    # A collapsed G: every fake the same image.
    fake = np.repeat(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32), 8, 0)
    params = D.init(jax.random.PRNGKey(0), real, train=False)['params']
    tx = optax.sgd(0.0)
    spec = train.UpdateSpec(G=small_g(), D=D, g_tx=tx, d_tx=tx,
                            loss=losses.get('non_saturating'), z_dim=8)
    loss, out = train.d_loss_fn(params, {}, real, fake, None, jax.random.PRNGKey(1),
                                spec=spec)
    alone = lambda x: D.apply({'params': params}, x, train=True)  # noqa: E731
    np.testing.assert_allclose(out['real_logits'], alone(real), rtol=1e-5, atol=1e-6)
    want = spec.loss.d_loss(real_logits=alone(real), fake_logits=alone(fake))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    mixed = D.apply({'params': params}, np.concatenate([real, fake]), train=True)
    assert not np.allclose(mixed[:8], alone(real), atol=1e-3)  # what it guards against


# ---------------------------------------------------------------------------
# Against the reference implementation (optional: needs torch and a checkout).

def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = jnp.asarray(value)


def port_stylegan2_ada(G_torch=None, D_torch=None):
    """Variables of our Generator / Discriminator holding the weights of
    stylegan2-ada-pytorch's networks.Generator / networks.Discriminator:
    dense weights [out, in] -> kernel [in, out]; conv weights [O, I, k, k] ->
    [k, k, I, O]; the constant [C, 4, 4] -> [4, 4, C]; D's fc input is
    flattened (c, h, w) there and (h, w, c) here."""
    out = []
    if G_torch is not None:
        variables = {'params': {}, 'stats': {}, 'noise_const': {}}
        for name, p in G_torch.named_parameters():
            parts, a = name.split('.'), p.detach().numpy()
            if parts[0] == 'mapping':
                path = ['mapping_network', parts[1]]
            elif parts[2] == 'const':
                path, a = ['synthesis_network', parts[1]], a.transpose(1, 2, 0)
            else:
                path = ['synthesis_network'] + parts[1:-1]
            leaf = {'weight': 'kernel'}.get(parts[-1], parts[-1])
            a = a.T if a.ndim == 2 else a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
            _set(variables['params'], path + [leaf], a)
        for name, b in G_torch.named_buffers():
            parts = name.split('.')
            if parts[-1] == 'noise_const':
                _set(variables['noise_const'],
                     ['synthesis_network'] + parts[1:3] + ['noise'], b.numpy())
            elif parts[-1] == 'w_avg':
                _set(variables['stats'], ['mapping_network', 'w_avg'], b.numpy())
        out.append(variables)
    if D_torch is not None:
        params = {}
        for name, p in D_torch.named_parameters():
            parts, a = name.split('.'), p.detach().numpy()
            if parts[:2] == ['b4', 'fc']:
                if a.ndim == 2:
                    c = a.shape[0]
                    a = a.reshape(c, -1, 4, 4).transpose(0, 2, 3, 1).reshape(c, -1)
            a = a.T if a.ndim == 2 else a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
            path = parts[1:-1] if parts[0] == 'b4' else (
                ['fromrgb'] if parts[1] == 'fromrgb' else parts[:-1])
            _set(params, path + [{'weight': 'kernel'}.get(parts[-1], parts[-1])], a)
        out.append({'params': params})
    return out


def test_equals_stylegan2_ada_pytorch(monkeypatch):
    """Mapping (truncation, w_avg update), synthesis (const noise) and the
    conditional D equal NVlabs/stylegan2-ada-pytorch's networks.py with the
    same weights. Set STYLEGAN2_ADA_PYTORCH to a checkout (training/,
    torch_utils/, dnnlib/) to run it; checked with commit d72cc7d0."""
    root = os.environ.get('STYLEGAN2_ADA_PYTORCH')
    if not root:
        pytest.skip('STYLEGAN2_ADA_PYTORCH (a stylegan2-ada-pytorch checkout) unset')
    torch = pytest.importorskip('torch')
    monkeypatch.syspath_prepend(root)
    from training import networks
    torch.manual_seed(0)
    size, k = 16, 3
    G_t = networks.Generator(z_dim=8, c_dim=k, w_dim=16, img_resolution=size,
                             img_channels=3, mapping_kwargs=dict(num_layers=2),
                             synthesis_kwargs=dict(channel_base=128, channel_max=16))
    D_t = networks.Discriminator(c_dim=k, img_resolution=size, img_channels=3,
                                 channel_base=128, channel_max=16,
                                 mapping_kwargs=dict(num_layers=2))
    G_t.eval()
    D_t.eval()
    with torch.no_grad():  # biases and noise strengths start at 0 or 1 there
        for name, p in list(G_t.named_parameters()) + list(D_t.named_parameters()):
            if name.endswith(('bias', 'noise_strength')):
                p.copy_(torch.randn_like(p) * 0.3 + p)
        G_t.mapping.w_avg.copy_(torch.randn(16))
    G = sg.Generator(out_shape=(size, size, 3), num_classes=k, w_dim=16,
                     mapping_layers=2, channel_base=128, channel_max=16)
    D = sg.Discriminator(num_classes=k, channel_base=128, channel_max=16,
                         mapping_layers=2)
    g_vars, d_vars = port_stylegan2_ada(G_t, D_t)
    z = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    labels = np.array([0, 2, 1, 0])
    onehot = torch.from_numpy(np.eye(k, dtype=np.float32)[labels])
    ours = jax.eval_shape(lambda: G.init(jax.random.PRNGKey(0), z, labels, train=False))
    assert jax.tree.map(lambda a: a.shape, dict(ours)) == jax.tree.map(
        lambda a: a.shape, g_vars)
    with torch.no_grad():
        ws_t = G_t.mapping(torch.from_numpy(z), onehot, truncation_psi=0.7,
                           truncation_cutoff=3)
        images_t = G_t.synthesis(ws_t, noise_mode='const')
        logits_t = D_t(images_t, onehot)[:, 0].numpy()
        G_t.mapping.train()
        G_t.mapping(torch.from_numpy(z), onehot)
        w_avg_t = G_t.mapping.w_avg.numpy()
    images_t = images_t.numpy().transpose(0, 2, 3, 1)
    with jax.default_matmul_precision('highest'):
        ws = G.apply(g_vars, z, labels, train=False, truncation_psi=0.7,
                     truncation_cutoff=3, method=G.mapping)
        images = G.apply(g_vars, jnp.asarray(ws_t.numpy()), train=False,
                         method=G.synthesis)
        logits = D.apply(d_vars, jnp.asarray(images_t), labels, train=False)
        _, state = G.apply(g_vars, z, labels, train=True, mutable=['stats'],
                           method=G.mapping)
    np.testing.assert_allclose(ws, ws_t.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(images, images_t, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, logits_t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state['stats']['mapping_network']['w_avg'], w_avg_t,
                               rtol=1e-5, atol=1e-6)
