"""The files of a run's workdir: config.json and its changed-keys check,
sweep.json, the write probe, the metrics.jsonl / eval.jsonl logs, best.json,
TensorBoard events and a sweep's summary. Every write happens on process 0
only (`Workdir.is_main`); checkpoints are Orbax's (`gan_jax.checkpoint`).

Layout:
  config.json     the config, plus `_runtime` (devices, processes, batch split)
  sweep.json      a sweep's `Sweep` (what varies across members)
  metrics.jsonl   one JSON object per logged step (and member), with "step"
  eval.jsonl      one JSON object per evaluation (and member)
  best.json       {'metric', 'value', 'step'} of checkpoints_best/
  summary.json, summary.md   a sweep's last evaluation, mean ± s.e. over members
  tensorboard/    event files (tensorboard/member_I/ for sweep member I)
  samples/        sample figures
  checkpoints/, checkpoints_best/   Orbax
"""
import json
import os
from typing import Any, Dict, List, Optional

import jax
import ml_collections

from gan_jax import config as config_lib

CONFIG_FILE = 'config.json'
SWEEP_FILE = 'sweep.json'
METRICS_FILE = 'metrics.jsonl'
EVAL_FILE = 'eval.jsonl'
BEST_FILE = 'best.json'
SUMMARY_FILE = 'summary.json'
SUMMARY_MARKDOWN = 'summary.md'
LOG_FILES = (METRICS_FILE, EVAL_FILE)


class WorkdirError(OSError):
    """The workdir cannot be created or written."""


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config saved in a workdir, on top of today's defaults.

    Raises:
      FileNotFoundError: the workdir has no config.json.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path} not found: is {workdir} a training workdir?')
    with open(path) as f:
        return config_lib.from_json_dict(json.load(f))


def read_sweep(workdir: str) -> Optional[Dict[str, Any]]:
    """The JSON of a sweep workdir's sweep.json, or None for a single run."""
    path = os.path.join(workdir, SWEEP_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def check(config: ml_collections.ConfigDict, workdir: str,
          sweep_json: Optional[Dict[str, Any]] = None) -> None:
    """Refuses a workdir that holds another run, and probes that it is
    writable; writes nothing else.

    Another run: a saved config that differs in a key that changes the run
    (unless config.allow_config_change), or a saved sweep.json that differs
    from `sweep_json` (a sweep's `Sweep.to_json()`, None for a single run).

    Raises:
      ConfigError: the workdir holds another run (the message says what to do).
      WorkdirError: the workdir cannot be written.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        changed = config_lib.changed_keys(saved, config)
        if changed and not config.allow_config_change:
            raise config_lib.ConfigError(
                f'{workdir} holds a run whose config differs in '
                f'{", ".join(changed)}; use a new --workdir, or pass '
                '--config.allow_config_change=True to resume anyway')
        saved_sweep = read_sweep(workdir)
        if saved_sweep is not None and sweep_json is None:
            raise config_lib.ConfigError(
                f'{workdir} holds a sweep; resume it with experiments/sweep.py and '
                'the same sweep options, or use a new --workdir')
        if sweep_json is not None and saved_sweep is None:
            raise config_lib.ConfigError(
                f'{workdir} holds a single run, not a sweep; use a new --workdir')
        if sweep_json is not None and (
                saved_sweep != json.loads(json.dumps(sweep_json))):
            raise config_lib.ConfigError(
                f'{workdir} holds a different sweep ({saved_sweep}); use a new '
                '--workdir or the same sweep options to resume')
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, '.write_probe')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(f'workdir {workdir} is not writable ({e}); choose another '
                           '--workdir or free the disk') from None


class Workdir:
    """Writes a run's files; on processes other than 0 every write is a no-op.

    Attributes:
      root: the workdir path.
      is_main: whether this process writes.
    """

    def __init__(self, root: str, *, is_main: Optional[bool] = None):
        self.root = root
        self.is_main = jax.process_index() == 0 if is_main is None else is_main
        self._writers: Dict[Optional[int], Any] = {}
        if self.is_main:
            os.makedirs(os.path.join(root, 'samples'), exist_ok=True)

    def path(self, *parts: str) -> str:
        """A path inside the workdir."""
        return os.path.join(self.root, *parts)

    def write_config(self, config: ml_collections.ConfigDict,
                     runtime: Dict[str, Any],
                     sweep_json: Optional[Dict[str, Any]] = None) -> None:
        """config.json (with `runtime` under config.RUNTIME_KEY) and, for a
        sweep, sweep.json."""
        if not self.is_main:
            return
        saved = dict(json.loads(config.to_json_best_effort()),
                     **{config_lib.RUNTIME_KEY: runtime})
        self._write_json(CONFIG_FILE, saved, sort_keys=True)
        if sweep_json is not None:
            self._write_json(SWEEP_FILE, sweep_json)

    def truncate_logs(self, last_step: int) -> None:
        """Drops log records after `last_step`: a run killed after its last
        checkpoint had logged steps that the resumed run will log again."""
        if not self.is_main:
            return
        for name in LOG_FILES:
            path = self.path(name)
            if not os.path.exists(path):
                continue
            with open(path) as f:
                lines = [line for line in f if line.strip()]
            kept = [line for line in lines
                    if json.loads(line).get('step', 0) <= last_step]
            if len(kept) != len(lines):
                with open(path + '.tmp', 'w') as f:
                    f.writelines(kept)
                os.replace(path + '.tmp', path)

    def append(self, name: str, record: Dict[str, Any]) -> None:
        """One JSON line appended to `name` (metrics.jsonl or eval.jsonl)."""
        if self.is_main:
            with open(self.path(name), 'a') as f:
                f.write(json.dumps(record) + '\n')

    def scalars(self, record: Dict[str, Any], step: int,
                member: Optional[int] = None) -> None:
        """Every numeric entry of `record` but 'step'/'member'/'seed' as a
        TensorBoard scalar at `step` (sweep member i: tensorboard/member_i)."""
        if not self.is_main:
            return
        writer = self._writers.get(member)
        if writer is None:
            from tensorboardX import SummaryWriter
            sub = 'tensorboard' if member is None else f'tensorboard/member_{member}'
            writer = self._writers[member] = SummaryWriter(self.path(sub))
        for key, value in record.items():
            if key not in ('step', 'member', 'seed') and isinstance(
                    value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(key, value, step)

    def read_best(self, metric: str) -> Optional[float]:
        """The value recorded in best.json for `metric`, or None."""
        path = self.path(BEST_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            saved = json.load(f)
        return saved['value'] if saved.get('metric') == metric else None

    def write_best(self, metric: str, value: float, step: int) -> None:
        """best.json, atomically (it must never point at an unfinished save:
        write it after the checkpoint is on disk)."""
        if self.is_main:
            self._write_json(BEST_FILE, {'metric': metric, 'value': value, 'step': step})

    def write_summary(self, step: int, rows: List[Dict[str, Any]],
                      markdown: str) -> None:
        """A sweep's summary.json ({'step', 'rows'}) and summary.md."""
        if not self.is_main:
            return
        self._write_json(SUMMARY_FILE, {'step': step, 'rows': rows})
        with open(self.path(SUMMARY_MARKDOWN), 'w') as f:
            f.write(markdown)

    def close(self) -> None:
        """Flushes and closes the TensorBoard writers."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _write_json(self, name: str, obj: Any, **kwargs) -> None:
        path = self.path(name)
        with open(path + '.tmp', 'w') as f:
            json.dump(obj, f, indent=2, **kwargs)
        os.replace(path + '.tmp', path)
