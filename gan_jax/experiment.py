"""Building a run from a config: the one place every launcher, script and test
turns a config (or a workdir) into networks, an update spec and a state.

`build(config)` gives the parts of a single run, `initial_state(config,
sweep)` the stacked state of a sweep, `load_run` / `load_member` the latest
(or best) checkpoint of a workdir, and `prepare` everything `loop.run` checks
before it writes a byte: the config, the mesh, the dataset, the evaluators.
"""
import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import checkpoint, config as config_lib, data, metrics, models, parallel
from gan_jax import state as state_lib, sweep as sweep_lib, train, workdir as workdir_lib


def build(config: ml_collections.ConfigDict
          ) -> Tuple[data.DataInfo, Any, Any, train.UpdateSpec, state_lib.GANState]:
    """(info, G, D, spec, initial state) for a config; nothing is restored.

    Raises:
      ConfigError: an unknown model or model argument.
    """
    info = data.get_info(config)
    # Class-conditional models take one integer label per sample.
    num_classes = info.num_classes if info.label_shape == () else 0
    try:
        G, D = models.build(config, info.shape, num_classes)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    spec = train.make_spec(config, G, D)
    init_state = state_lib.create_state(
        jax.random.PRNGKey(config.seed), G, D, spec.g_tx, spec.d_tx,
        z_dim=config.model.z_dim, data_shape=info.shape,
        labels=jnp.zeros((1,), jnp.int32) if num_classes else None)
    # Running statistics the update carries (lazy penalties, path length).
    extra = train.initial_stats(spec)
    if extra:
        init_state = init_state.replace(stats={**init_state.stats, **extra})
    return info, G, D, spec, init_state


def initial_state(config: ml_collections.ConfigDict, sweep: sweep_lib.Sweep
                  ) -> Tuple[data.DataInfo, Any, Any, train.UpdateSpec,
                             state_lib.GANState]:
    """(info, G, D, spec, stacked GANState with leading axis K): member i's
    entry is the initial state of `sweep_lib.member_config(config, sweep, i)`."""
    info, G, D, spec, _ = build(config)
    states = [build(sweep_lib.member_config(config, sweep, i))[4]
              for i in range(sweep.num_members)]
    return info, G, D, spec, sweep_lib.stack(states)


def _restore_latest(directory: str, template: state_lib.GANState, hint: str = ''
                    ) -> state_lib.GANState:
    ckpt = checkpoint.Checkpointer(directory)
    try:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f'no checkpoint in {directory}{hint}')
        return ckpt.restore_or_init(template)
    finally:
        ckpt.close()


def load_run(workdir: str, *, best: bool = False
             ) -> Tuple[ml_collections.ConfigDict, data.DataInfo, Any, Any,
                        state_lib.GANState]:
    """(config, info, G, D, state) of the latest checkpoint of a single run's
    workdir, or of the best one by config.best_metric when `best`.

    Raises:
      FileNotFoundError: the workdir has no config.json or no checkpoint.
    """
    config = workdir_lib.read_config(workdir)
    info, G, D, _, template = build(config)
    directory = os.path.join(workdir, 'checkpoints_best' if best else 'checkpoints')
    hint = (' (best checkpoints are kept when config.best_metric is set)'
            if best else '')
    return config, info, G, D, _restore_latest(directory, template, hint)


def load_sweep(workdir: str) -> Optional[sweep_lib.Sweep]:
    """The Sweep of a sweep workdir, or None for a single run's workdir."""
    saved = workdir_lib.read_sweep(workdir)
    return None if saved is None else sweep_lib.Sweep.from_json(saved)


def load_member(workdir: str, i: int, *, best: bool = False
                ) -> Tuple[ml_collections.ConfigDict, data.DataInfo, Any, Any,
                           state_lib.GANState]:
    """(member config, info, G, D, GANState of member i) from the latest (or
    best) checkpoint of a sweep workdir.

    Raises:
      FileNotFoundError: not a sweep workdir, or no checkpoint.
      ValueError: i is not a member.
    """
    sweep = load_sweep(workdir)
    if sweep is None:
        raise FileNotFoundError(f'{workdir} has no {workdir_lib.SWEEP_FILE}: not a '
                                'sweep workdir')
    config = workdir_lib.read_config(workdir)
    member = sweep_lib.member_config(config, sweep, i)  # checks the range
    info, G, D, _, template = initial_state(config, sweep)
    directory = os.path.join(workdir, 'checkpoints_best' if best else 'checkpoints')
    state = _restore_latest(directory, template)
    return member, info, G, D, sweep_lib.member_of(state, i)


@dataclasses.dataclass
class Prepared:
    """What `prepare` checked and built: all a runner needs.

    Attributes:
      config: the validated config.
      sweep: the Sweep, or None for a single run.
      mesh: the device mesh (single runs; a sweep runs on one device).
      info, G, D, spec: as `build`.
      init_state: the initial state (stacked for a sweep), not yet restored.
      evaluators: {name: evaluator} from config.evals.
      runtime: the machine facts recorded in config.json.
    """
    config: ml_collections.ConfigDict
    sweep: Optional[sweep_lib.Sweep]
    mesh: jax.sharding.Mesh
    info: data.DataInfo
    G: Any
    D: Any
    spec: train.UpdateSpec
    init_state: state_lib.GANState
    evaluators: Dict[str, Any]
    runtime: Dict[str, Any]


def prepare(config: ml_collections.ConfigDict, workdir: str,
            sweep: Optional[sweep_lib.Sweep] = None, *,
            members: str = 'auto') -> Prepared:
    """Checks everything that can be checked before a run writes anything:
    the config (and a sweep's first and last member configs), the mesh, the
    model, the evaluators, the dataset (a missing one fails here with its
    instructions) and the workdir (another run in it, or not writable).
    `members` is a sweep's member mode (see sweep.make_sweep_step).

    Raises:
      ConfigError, DataError, WorkdirError: one line naming the problem.
    """
    config_lib.validate(config)
    if members not in sweep_lib.MEMBER_MODES:
        raise config_lib.ConfigError(
            f'members must be one of {", ".join(sweep_lib.MEMBER_MODES)}, '
            f'got {members!r}')
    if sweep is not None:
        if jax.process_count() > 1:
            raise config_lib.ConfigError(
                'sweeps run in one process (each member on one device); start '
                'experiments/sweep.py without the multi-process variables')
        for i in (0, sweep.num_members - 1):
            config_lib.validate(sweep_lib.member_config(config, sweep, i))
    try:
        mesh = parallel.make_mesh(num_devices=1 if sweep else config.parallel.num_devices)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    config_lib.validate(config, device_count=mesh.size)
    if sweep is None:
        info, G, D, spec, init_state = build(config)
    else:
        info, G, D, spec, init_state = initial_state(config, sweep)
    try:
        evaluators = metrics.from_config(config.evals, info, config)
    except ValueError as e:
        raise config_lib.ConfigError(str(e)) from None
    data.check_available(config)
    workdir_lib.check(config, workdir, None if sweep is None else sweep.to_json())
    runtime = {'devices': mesh.size, 'platform': jax.devices()[0].platform,
               'processes': jax.process_count(),
               'per_device_batch': config.batch_size // mesh.size}
    if sweep is not None:
        runtime['members'] = sweep.num_members
    if config.dataset == data.folder.NAME:  # its class mapping and content key
        runtime['folder'] = data.folder.record(config.data)
        _check_folder_unchanged(workdir, runtime['folder'], config)
    return Prepared(config, sweep, mesh, info, G, D, spec,
                    jax.tree.map(np.asarray, init_state), evaluators, runtime)


def _check_folder_unchanged(workdir: str, folder_record: Dict[str, Any],
                            config: ml_collections.ConfigDict) -> None:
    """Refuses to resume a folder run whose images changed since it started
    (same data.path, another content key): the config alone cannot tell."""
    path = os.path.join(workdir, workdir_lib.CONFIG_FILE)
    if not os.path.exists(path) or config.allow_config_change:
        return
    import json
    with open(path) as f:
        saved = json.load(f).get(config_lib.RUNTIME_KEY, {}).get('folder', {})
    if saved.get('key') not in (None, folder_record['key']):
        raise config_lib.ConfigError(
            f'{workdir} was trained on the images of {config.data.path} with content '
            f'key {saved["key"]}; they have changed since (key {folder_record["key"]}): '
            'use a new --workdir, or pass --config.allow_config_change=True to '
            'resume on the new images')
