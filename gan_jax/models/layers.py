"""Building blocks shared by the model families: maxout (Goodfellow et al. 2013),
packing (PacGAN, Lin et al. 2018), a 4x4 stride-2 transposed convolution and
a convolution of the nearest-upsampled input with flax's parameters, spectral
and conditional batch norm, self-attention (SAGAN). How a convolution is
computed is gan_jax.ops's business: blocks take an `impl` string and pass it
on."""
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import ops

# Nearest-neighbour 2x upsampling, [B, H, W, C] -> [B, 2H, 2W, C] (ResNet
# shortcuts); defined in ops beside the convolutions that fold it in.
upsample_nearest = ops.upsample_nearest


class MaxoutDense(nn.Module):
    """Dense layer with `pieces` linear pieces per unit, max-pooled.

    x [B, D_in] -> [B, features].
    """
    features: int
    pieces: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Dense(self.features * self.pieces)(x)
        return jnp.max(h.reshape(x.shape[0], self.features, self.pieces), axis=-1)


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
    """Concatenates `pack` consecutive samples: [B, ...] -> [B // pack, pack * prod(...)].

    The discriminator of PacGAN judges `pack` samples jointly, which penalises a
    generator whose samples lack diversity.
    """
    if x.shape[0] % pack:
        raise ValueError(f'batch of {x.shape[0]} does not split into packs of {pack}')
    return x.reshape(x.shape[0] // pack, -1)


def upsample_conv(features: int, kernel_size: Tuple[int, int] = (3, 3), *,
                  impl: str = 'auto', **kwargs: Any) -> nn.Conv:
    """nn.Conv(features, kernel_size, **kwargs) of the nearest-upsampled
    input: [B, H, W, C_in] -> [B, 2H, 2W, features], with nn.Conv's
    parameters and name. A 3x3 kernel is computed in the form `impl` names
    (gan_jax.ops.policy, op 'upsample_conv3x3'), e.g. on the coarse grid."""
    return nn.Conv(features, kernel_size,
                   conv_general_dilated=ops.upsampled_conv_general_dilated(impl),
                   **kwargs)


class UpConv(nn.Module):
    """4x4 stride-2 'SAME' transposed convolution, [B, H, W, C_in] ->
    [B, 2H, 2W, features], with the parameters of `nn.ConvTranspose(features,
    (4, 4), (2, 2), padding='SAME')` ('kernel' [4, 4, C_in, features], 'bias')
    and the same function, in the form `impl` names (gan_jax.ops.policy, op
    'conv_transpose4x4': 'auto', 'xla' (lax.conv_transpose, what
    nn.ConvTranspose computes), 'adjoint' or 'subpixel').
    """
    features: int
    impl: str = 'auto'
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Same names and initialisers as nn.ConvTranspose, so parameters of
        # every form load into the others.
        scope = _ParamsLike(self.features, x.shape[-1], self.use_bias,
                            name='ConvTranspose_0')
        kernel, bias = scope()
        y = ops.conv_transpose(x, kernel.astype(x.dtype), impl=self.impl)
        return y + bias if bias is not None else y


class _ParamsLike(nn.Module):
    """Holds 'kernel' and 'bias' exactly as nn.ConvTranspose would."""
    features: int
    in_features: int
    use_bias: bool

    @nn.compact
    def __call__(self):
        kernel = self.param('kernel', nn.initializers.lecun_normal(),
                            (4, 4, self.in_features, self.features))
        bias = (self.param('bias', nn.initializers.zeros_init(), (self.features,))
                if self.use_bias else None)
        return kernel, bias


def in_input_dtype(*args, dtype=None, inexact=True):
    """A `promote_dtype` for nn.Conv / nn.Dense that computes in the dtype of
    the input (args[0]), or `dtype` when given: under bfloat16 compute the
    spectrally normalised kernel (a bfloat16 kernel divided by a float32
    sigma) would otherwise promote the whole convolution to float32."""
    target = dtype if dtype is not None else args[0].dtype
    return tuple(None if a is None else jnp.asarray(a, target) for a in args)


def maybe_sn(module: nn.Module, spectral: bool):
    """Wraps `module` in flax's SpectralNorm (Miyato et al. 2018) when asked.

    The power-iteration vector u and the estimate sigma live in the
    'batch_stats' collection, so they travel with the discriminator's state in
    GANState.d_state; they are updated only in training mode.
    Returns a callable (x, *, train) -> y.
    """
    if spectral:
        wrapped = nn.SpectralNorm(module)
        return lambda x, *, train: wrapped(x, update_stats=train)
    return lambda x, *, train: module(x)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al.
    2017; used by SNGAN/BigGAN generators). x [B, ..., C], labels [B] int ->
    same shape. With num_classes = 0 it is a plain batch norm."""
    num_classes: int = 0
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, labels, *, train: bool) -> jax.Array:
        if not self.num_classes:
            return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
        h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                         use_scale=False, use_bias=False)(x)
        c = x.shape[-1]
        gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones,
                         name='gamma')(labels)
        beta = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros,
                        name='beta')(labels)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
        return h * gamma.reshape(shape) + beta.reshape(shape)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): x + γ·attention(x), γ starting
    at 0. x [B, H, W, C] -> same shape. Query/key use C/8 channels, values C/2,
    keys and values on a 2x max-pooled grid, as in BigGAN's implementation."""
    spectral: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        b, h, w, c = x.shape

        def conv(features, name):
            return maybe_sn(nn.Conv(features, (1, 1), use_bias=False, name=name),
                            self.spectral)

        query = conv(max(1, c // 8), 'query')(x, train=train).reshape(b, h * w, -1)
        key = nn.max_pool(conv(max(1, c // 8), 'key')(x, train=train), (2, 2), (2, 2))
        value = nn.max_pool(conv(max(1, c // 2), 'value')(x, train=train), (2, 2), (2, 2))
        key = key.reshape(b, -1, key.shape[-1])
        value = value.reshape(b, -1, value.shape[-1])
        attention = jax.nn.softmax(query @ key.transpose(0, 2, 1), axis=-1)
        out = (attention @ value).reshape(b, h, w, -1)
        out = conv(c, 'out')(out, train=train)
        gamma = self.param('gamma', nn.initializers.zeros_init(), ())
        return x + gamma * out
