"""gan_jax: generative adversarial networks in JAX.

Pure-functional Flax linen generators and discriminators (`gan_jax.models`),
losses, regularizers, one `GANState` pytree (`gan_jax.state`), pure update
functions `(state, batch) -> (state, metrics)` (`gan_jax.train`), the
training driver (`gan_jax.loop`), sweeps (`gan_jax.sweep`) and evaluation
(`gan_jax.metrics`). Submodules are imported on use, so that `import gan_jax`
stays cheap.
"""
import os

# TensorFlow serves only the data pipeline (reading and decoding TFDS
# records), but at import it writes start-up notices to stderr from C++: the
# oneDNN notice, absl's "before InitializeLog" warning and cpu_feature_guard's
# list of instructions (seen on AVX-512 CPUs). They would break our launchers'
# promise of one line on stderr for bad input. Both settings must be in the
# environment before TensorFlow is first imported, which any of our code
# paths does only after importing this package. Level 2 still shows errors;
# oneDNN's custom kernels matter only for TF's own convolutions and matmuls,
# which the pipeline does not run. A user's own setting of either wins.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

__version__ = '0.1.0'
