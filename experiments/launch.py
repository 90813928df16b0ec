"""Shared launcher plumbing: absl flags, logging, and one-line errors.

Every failure a user can fix (a bad config, an unknown name, a missing
workdir, a non-finite loss) ends the process with one line on stderr and a
non-zero exit code instead of a traceback.
"""
import logging
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS

# Exit codes: 2 = bad input (config, flags, workdir), 3 = training diverged.
EXIT_BAD_INPUT = 2
EXIT_NONFINITE = 3
# `--config.evals=none` turns in-loop evaluation off for any config (and the
# best checkpoint, which an evaluation judges): config_flags cannot parse a
# word as a ConfigDict, so the flag becomes `--config.evals={}`.
EVALS_NONE = '--config.evals=none'
_evals_off = []


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Prints `error: message` on stderr and exits with `code`."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(code)


def _run_guarded(fn):
    from gan_jax import checkpoint, config as config_lib, data, loop
    try:
        return fn()
    except config_lib.ConfigError as e:
        fail(str(e))
    except (checkpoint.CheckpointError, data.DataError, loop.WorkdirError) as e:
        fail(str(e))
    except loop.NonFiniteError as e:
        fail(str(e), EXIT_NONFINITE)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as e:
        fail(str(e))


def main(fn, *, needs_config: bool, needs_workdir: bool = True) -> None:
    """Parses flags and calls fn(config, workdir) (or fn(workdir))."""
    if needs_config:
        config_flags.DEFINE_config_file(
            'config', None, 'Path to an experiment config file '
            '(experiments/configs/NAME.py, optionally NAME.py:smoke).',
            lock_config=True)
    flags.DEFINE_string('workdir', None, 'Directory of the run.')
    if needs_workdir:
        flags.mark_flags_as_required(['workdir'])

    def flags_parser(argv):
        if any(a.lower() == EVALS_NONE for a in argv):
            _evals_off.append(True)
            argv = ['--config.evals={}' if a.lower() == EVALS_NONE else a for a in argv]
        try:
            return FLAGS(argv)
        except flags.Error as e:
            fail(str(e).splitlines()[0])
        except (KeyError, AttributeError, TypeError, ValueError) as e:
            inner = e.args[0] if e.args else e
            if isinstance(e, KeyError) or isinstance(inner, KeyError):
                # config_flags' way of saying the config has no such key.
                key = (inner.args[0] if isinstance(inner, KeyError) else inner)
                overrides = [a for a in argv if a.startswith('--config.')]
                fail(f'unknown config key {str(key).strip(chr(39))!r} '
                     f'(overrides: {" ".join(overrides)}); see the config '
                     'file and gan_jax/config.py for the valid keys')
            fail(f'bad config override: {inner}')

    def app_main(argv):
        if len(argv) > 1:
            fail(f'unexpected arguments: {" ".join(argv[1:])}')
        # Our messages at INFO, the libraries' (Orbax is chatty) at WARNING.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%H:%M:%S'))
        ours = logging.getLogger('gan_jax')
        ours.setLevel(logging.INFO)
        ours.addHandler(handler)
        ours.propagate = False
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.WARNING)
        from gan_jax import parallel
        try:
            parallel.initialize_distributed()  # a no-op unless the env asks
        except ValueError as e:
            fail(str(e))
        if needs_config:
            if _evals_off:
                FLAGS.config.best_metric = ''
            _run_guarded(lambda: fn(FLAGS.config, FLAGS.workdir))
        else:
            _run_guarded(lambda: fn(FLAGS.workdir))

    app.run(app_main, flags_parser=flags_parser)
