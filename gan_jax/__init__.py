"""gan_jax: generative adversarial networks in JAX.

Pure-functional Flax linen generators and discriminators (`gan_jax.models`),
losses, regularizers, one `GANState` pytree (`gan_jax.state`), pure update
functions `(state, batch) -> (state, metrics)` (`gan_jax.train`), the
training driver (`gan_jax.loop`), sweeps (`gan_jax.sweep`) and evaluation
(`gan_jax.metrics`). Submodules are imported on use, so that `import gan_jax`
stays cheap.
"""
__version__ = '0.1.0'
