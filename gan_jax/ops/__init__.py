"""Hardware-specific forms of standard operations, kept apart from the models
(after stylegan2-ada's torch_utils/ops): XLA compiler options
(`gan_jax.ops.xla_options`)."""
