"""Hardware-specific forms of standard operations, kept apart from the models
behind one policy (after stylegan2-ada's torch_utils/ops, whose networks just
call conv2d_gradfix).

  policy       FORMS (each operation's forms), resolve(op, impl): 'auto' is
               the form measured fastest on the default backend, 'xla' plain
               XLA, else a named form.
  conv         the convolution forms, and the entry points models call:
               conv_general_dilated(impl) and upsampled_conv_general_dilated(
               impl) (drop-ins for nn.Conv's `conv_general_dilated`), and
               conv_transpose(x, kernel, impl=...).
  xla_options  compiler options of our compiled steps, and the jit that sets
               them.

Models pass an impl string through from a constructor field and never look at
the backend.
"""
from gan_jax.ops.conv import (conv_general_dilated, conv_transpose, upsample_nearest,
                              upsampled_conv_general_dilated)
from gan_jax.ops.policy import FORMS, resolve

__all__ = ['FORMS', 'conv_general_dilated', 'conv_transpose', 'resolve',
           'upsample_nearest', 'upsampled_conv_general_dilated']
