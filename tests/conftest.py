"""Test setup: CPU only, repo root importable (for experiments.configs)."""
import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Tests compile many small programs once each: compile time dominates, so
# XLA's slower-to-compile optimisations do not pay off here.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
