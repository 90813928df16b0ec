"""Test setup: CPU only, repo root importable (for experiments.configs)."""
import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Tests compile many small programs once each: compile time dominates, so
# XLA's slower-to-compile optimisations do not pay off here.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
# Trained extractors and reference statistics go to a fresh cache per session
# (the digit classifier is trained once, by the first test that needs it).
if 'GAN_JAX_CACHE' not in os.environ:
    import tempfile
    os.environ['GAN_JAX_CACHE'] = tempfile.mkdtemp(prefix='gan_jax_test_cache_')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
