"""The one policy that picks how gan_jax.ops computes an operation: 'auto'
(the form measured fastest on this backend), 'xla' (plain XLA, what
flax computes) or a named form.

Models pass the string through from a constructor field (e.g.
`conv_impl: str = 'auto'`, so `--config.model.d.conv_impl=xla` selects it) and
never look at the backend; `resolve` is called by the ops at trace time.
"""
import jax

# Operation -> its forms, plain XLA first. Every form computes the same
# function with the same parameters (tests/test_layers.py, test_dcgan.py).
FORMS = {
    # 4x4 stride-2 convolution padded by one pixel (DCGAN's D).
    'strided_conv4x4': ('xla', 'space_to_depth'),
    # 4x4 stride-2 'SAME' transposed convolution (DCGAN's G).
    'conv_transpose4x4': ('xla', 'adjoint', 'subpixel'),
    # 3x3 'SAME' convolution of a nearest-upsampled input (SNGAN's G).
    'upsample_conv3x3': ('xla', 'coarse'),
}

# 'auto' per backend: a form other than 'xla' only where a measurement on
# that backend says it wins (docs/performance.md); off CPU nothing was
# measured, so plain XLA. On CPU (with gan_jax.ops.xla_options' compiler
# options) both CPUs measured, an AVX2 EPYC and an AVX-512 EPYC (Zen 5), agree
# on every form, so no CPU property is needed:
#   strided_conv4x4 'space_to_depth': its input gradient as a stride-1
#     convolution plus depth-to-space (Zen 5: DCGAN-32 step 3% less CPU time
#     than plain XLA; AVX2: 2.9x faster input gradient per layer);
#   conv_transpose4x4 'adjoint': XLA's own gradient of a transposed
#     convolution is a window-dilated convolution, 10-20x slower per layer;
#   upsample_conv3x3 'coarse': 2.25x fewer multiply-adds (Zen 5: 1.4x over
#     the three ResNet-32 up-convolutions, forward and gradients).
_AUTO = {
    'cpu': {'strided_conv4x4': 'space_to_depth',
            'conv_transpose4x4': 'adjoint',
            'upsample_conv3x3': 'coarse'},
}


def auto(op: str) -> str:
    """The form 'auto' stands for, for `op` on the default backend."""
    _check_op(op)
    return _AUTO.get(jax.default_backend(), {}).get(op, 'xla')


def resolve(op: str, impl: str) -> str:
    """The form `impl` ('auto', 'xla' or one of FORMS[op]) names for `op`.

    Raises:
      ValueError: an unknown op or a form `op` does not have, listing the
        choices.
    """
    _check_op(op)
    if impl == 'auto':
        return auto(op)
    if impl not in FORMS[op]:
        raise ValueError(f'{op} has no form {impl!r}; choose from '
                         f'{", ".join(("auto",) + FORMS[op])}')
    return impl


def _check_op(op: str) -> None:
    if op not in FORMS:
        raise ValueError(f'unknown op {op!r}; valid: {", ".join(FORMS)}')
