"""Orbax checkpointing of the whole GANState as one item.

The state is stored as its flax state dict (nested dicts of arrays), so the
EMA, both optimizers, the RNG and the stats always travel together and a
checkpoint never depends on Python class names.
"""
import logging
import os
from typing import Optional

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.state import GANState

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """No checkpoint in a workdir could be read."""


class Checkpointer:
    """Keeps the last `max_to_keep` states of a run under `directory`."""

    def __init__(self, directory: str, *, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                 create=True))

    def latest_step(self) -> Optional[int]:
        """Step of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, state: GANState) -> None:
        """Saves `state` under its own step (asynchronously; the arrays are
        copied first, so the caller may donate them to the next step). A
        sweep's stacked state (step [K], all equal) is saved under that step."""
        step = int(np.max(jax.device_get(state.step)))
        if step in self.manager.all_steps():
            return
        try:
            # Also raises what an earlier asynchronous save ran into.
            self.manager.save(step, args=ocp.args.StandardSave(
                flax.serialization.to_state_dict(state)))
        except Exception as e:  # disk full, permissions, ...
            raise CheckpointError(
                f'could not write the checkpoint of step {step} to '
                f'{self.directory} ({type(e).__name__}: {e}); the newest '
                f'checkpoint on disk is step {self.latest_step()}. Free disk space '
                'or fix the directory, then run again to resume from it') from e

    def restore_or_init(self, state: GANState) -> GANState:
        """The newest readable checkpoint restored into `state`'s structure
        and shardings, or `state` itself when there is none.

        A checkpoint that fails to load is reported and skipped in favour of
        the one before it; nothing is deleted.

        Raises:
          CheckpointError: checkpoints exist but none could be read.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            return state
        target = flax.serialization.to_state_dict(state)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        failures = []
        for step in steps:
            try:
                restored = self.manager.restore(
                    step, args=ocp.args.StandardRestore(abstract))
            except Exception as e:  # Orbax raises many types for bad files.
                failures.append(f'step {step}: {type(e).__name__}: {e}')
                log.warning('checkpoint %s/%d is unreadable (%s); trying the '
                            'previous one', self.directory, step, e)
                continue
            return flax.serialization.from_state_dict(state, restored)
        raise CheckpointError(
            f'no readable checkpoint in {self.directory}; nothing was deleted. '
            'Move the directory away to start afresh. Errors: ' + '; '.join(failures))

    def wait(self) -> None:
        """Blocks until pending saves are on disk.

        Raises:
          CheckpointError: a pending save failed.
        """
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            raise CheckpointError(
                f'a checkpoint save to {self.directory} failed ({type(e).__name__}: '
                f'{e}); the newest complete checkpoint is step '
                f'{self.latest_step()}') from e

    def close(self) -> None:
        """Waits for pending saves and releases the manager; a failed save is
        logged here (call `wait` first to have it raised)."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            log.error('a checkpoint save to %s failed: %s', self.directory, e)
        self.manager.close()
