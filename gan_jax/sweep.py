"""Sweeps: K members of one GAN (seeds, and optionally learning rates or the
gradient-penalty weight) trained together in one compiled program.

`jax.vmap` over the whole update step turns K small GANs into one program with
a leading member axis on every array, so they share each kernel launch (or,
for convolutional networks on CPU, the K updates are written side by side in
one program: see `make_sweep_step`). Member
i trains with seed `config.seed + i` and, when swept, the i-th hyperparameter
values; with independent data (the default) it sees exactly the batches of a
single run with that seed. It is that run computed in another float32
summation order (XLA rounds batched and unrolled kernels differently), so the
two agree to rounding only over a short horizon: tested to 1e-5 relative
after 6 steps; on toy_ring, samples differed by 4.8e-7 after 50 steps and by
0.51 after 300, when training has amplified the rounding into a different
draw of the same random process (README, "Sweeps").

Hyperparameters enter the sweep step as per-member scalars (see
`train.train_step`'s `hparams`): a learning rate as the ratio of the member's
rate to the config's, applied to the optimizer's update; the penalty weight
directly. Members are processed in chunks of `chunk_size` (one compiled call
per chunk and call of `steps_per_call` steps) when K members' activations would not fit at once; every
chunk advances each step, so a checkpoint always holds all members at one step.

Workdir: config.json (the base config), sweep.json (this module's `Sweep`),
checkpoints/ (one Orbax checkpoint of the stacked state), metrics.jsonl and
eval.jsonl (one record per member with a `member` column), summary.json and
summary.md (mean ± standard error over members, per hyperparameter setting).
"""
import dataclasses
import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import data, train
from gan_jax.ops import xla_options
from gan_jax.state import GANState

log = logging.getLogger(__name__)

# The sweepable config keys (one table, next to train_step's `hparams`).
SWEEPABLE = train.SWEEPABLE


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What varies across the members of a sweep.

    Attributes:
      num_members: K.
      values: ((config key, (value of member 0, ..., member K-1)), ...) for
        keys in SWEEPABLE; empty for a seeds-only sweep.
      shared_data: all members see the same batches (those of config.seed)
        instead of each its own seed's.
      chunk_size: members per compiled call; 0 = all K at once.
    """
    num_members: int
    values: Tuple[Tuple[str, Tuple[float, ...]], ...] = ()
    shared_data: bool = False
    chunk_size: int = 0

    @classmethod
    def build(cls, *, seeds: int = 0, values: Optional[Dict[str, Sequence[float]]] = None,
              repeats: int = 1, shared_data: bool = False, chunk_size: int = 0
              ) -> 'Sweep':
        """A sweep of `seeds` members, or of every value in `values` repeated
        `repeats` times (member i takes value i // repeats), e.g. values
        {'opt.d.lr': [1e-4, 2e-4]} and repeats 5 give 10 members.

        Raises:
          ValueError: an unsweepable key, lists of different lengths, or a
            member count that does not match `seeds`.
        """
        values = {k: [float(v) for v in vs] for k, vs in (values or {}).items()}
        for key in values:
            if key not in SWEEPABLE:
                raise ValueError(f'cannot sweep {key!r}; sweepable keys: '
                                 f'{", ".join(SWEEPABLE)}')
        lengths = {len(v) for v in values.values()}
        if len(lengths) > 1:
            raise ValueError(f'swept value lists differ in length: '
                             f'{ {k: len(v) for k, v in values.items()} }')
        if repeats < 1:
            raise ValueError(f'repeats must be >= 1, got {repeats}')
        num = lengths.pop() * repeats if values else seeds
        if values and seeds and seeds != num:
            raise ValueError(f'{seeds} seeds but {num} members from the swept values '
                             f'x {repeats} repeats; give one or make them agree')
        if num < 1:
            raise ValueError('a sweep needs at least one member: pass --seeds K or '
                             'values to sweep')
        if chunk_size < 0:
            raise ValueError(f'chunk_size must be >= 0, got {chunk_size}')
        expanded = tuple((k, tuple(v[i // repeats] for i in range(num)))
                         for k, v in sorted(values.items()))
        return cls(num, expanded, shared_data, chunk_size)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-able dict (sweep.json)."""
        return {'num_members': self.num_members,
                'values': {k: list(v) for k, v in self.values},
                'shared_data': self.shared_data, 'chunk_size': self.chunk_size}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> 'Sweep':
        """Inverse of to_json."""
        return cls(d['num_members'],
                   tuple((k, tuple(v)) for k, v in sorted(d['values'].items())),
                   d['shared_data'], d['chunk_size'])

    def chunks(self) -> List[Tuple[int, int]]:
        """[(first member, end member)) of each compiled chunk."""
        size = self.chunk_size or self.num_members
        return [(lo, min(lo + size, self.num_members))
                for lo in range(0, self.num_members, size)]


def member_config(config: ml_collections.ConfigDict, sweep: Sweep, i: int
                  ) -> ml_collections.ConfigDict:
    """The single-run config equivalent to member i: seed config.seed + i and
    member i's swept values."""
    if not 0 <= i < sweep.num_members:
        raise ValueError(f'member {i} out of range: the sweep has members '
                         f'0..{sweep.num_members - 1}')
    member = ml_collections.ConfigDict(config.to_dict())
    member.seed = config.seed + i
    for key, values in sweep.values:
        section, name = key.rsplit('.', 1)
        target = member
        for part in section.split('.'):
            target = target[part]
        target[name] = values[i]
    return member


def member_hparams(config: ml_collections.ConfigDict, sweep: Sweep
                   ) -> Dict[str, np.ndarray]:
    """The per-member scalars of train_step's `hparams`: {name: float32 [K]}."""
    return {SWEEPABLE[key].hparam: train.member_hparam_values(config, key, values)
            for key, values in sweep.values}


def stack(trees: Sequence[Any]) -> Any:
    """Stacks pytrees of identical structure along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def member_of(tree: Any, i: int) -> Any:
    """Entry i of the leading axis of every leaf."""
    return jax.tree.map(lambda x: x[i], tree)


MEMBER_MODES = ('auto', 'vmap', 'unroll')


def make_sweep_step(spec: train.UpdateSpec, *, shared_data: bool, steps: int = 1,
                    members: str = 'vmap'):
    """The compiled sweep step: (stacked state, batch, hparams) -> (state, metrics).

    The batch has a leading member axis unless shared_data; hparams leaves are
    [K]. The state argument is donated. With steps > 1 the function takes a
    tuple of `steps` batches and runs that many updates per member as one
    `lax.scan` (see train.make_multi_step), returning the last step's metrics.

    members: 'vmap' batches the K members' update into one program with a
    leading member axis on every array (one kernel launch per layer for all
    members); 'unroll' writes the K updates side by side in one program, and
    takes and returns the state and metrics as tuples of K member trees.
    Both compute each member's own update. 'unroll' exists because vmapping
    a convolution over per-member kernels makes it a grouped convolution, which
    XLA:CPU runs far slower than K plain ones (see `choose_member_mode`).
    """
    if members not in ('vmap', 'unroll'):
        raise ValueError(f"members must be 'vmap' or 'unroll', got {members!r}")
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')

    def one(state, batch, hparams):
        return train.train_step(state, batch, spec=spec, hparams=hparams or None)

    if members == 'vmap':
        all_members = jax.vmap(one, in_axes=(0, None if shared_data else 0, 0))
    else:
        # The state is a tuple of K member states, and so are the new state
        # and the metrics: nothing is stacked inside the program (XLA:CPU
        # without optimisations, as in the tests, wrote NaNs into stacked
        # outputs of the update step).
        def all_members(states, batch, hparams):
            outs = [one(member_state, batch if shared_data else member_of(batch, i),
                        member_of(hparams, i)) for i, member_state in enumerate(states)]
            return tuple(o[0] for o in outs), tuple(o[1] for o in outs)

    if steps == 1:
        return xla_options.jit(all_members, donate_argnums=0)

    def several(state, batches, hparams):
        return train.scan_steps(lambda s, b: all_members(s, b, hparams), state, batches)

    return xla_options.jit(several, donate_argnums=0)


def as_step_state(stacked: GANState, members: str) -> Any:
    """A stacked state [K, ...] in the form make_sweep_step(members=...)
    takes: as is for 'vmap', a tuple of the K member states for 'unroll'."""
    if members == 'unroll':
        count = jax.tree.leaves(stacked)[0].shape[0]
        return tuple(member_of(stacked, i) for i in range(count))
    return stacked


def _has_convolution(jaxpr) -> bool:
    """Whether a jaxpr, or any jaxpr nested in its equations, convolves."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == 'conv_general_dilated':
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                sub = getattr(sub, 'jaxpr', sub)  # a ClosedJaxpr's Jaxpr
                if hasattr(sub, 'eqns') and _has_convolution(sub):
                    return True
    return False


def choose_member_mode(spec: train.UpdateSpec, member_state: GANState,
                       batch: Dict[str, Any]) -> str:
    """'auto' resolved: 'unroll' on CPU when the update convolves, else 'vmap'.

    Measured on the 2-core CPU (`scripts/bench_sweep.py --scaling
    digits_dcgan`, ms per member and step): vmap 117, 319 and 399 at K = 1,
    3 and 6 members; unrolled 97, 98 and 94. For the dense toy networks vmap
    and unroll run equally fast and vmap compiles K times faster, so it stays
    the default there and on accelerators.
    """
    if jax.default_backend() != 'cpu':
        return 'vmap'
    jaxpr = jax.make_jaxpr(lambda s, b: train.train_step(s, b, spec=spec))(
        member_state, batch)
    return 'unroll' if _has_convolution(jaxpr.jaxpr) else 'vmap'


def member_batches(config: ml_collections.ConfigDict, sweep: Sweep, lo: int, hi: int,
                   start_step: int, *, raw: bool = False
                   ) -> Iterator[Dict[str, np.ndarray]]:
    """Batches of members lo..hi-1 from start_step: each member's own seed's
    stream stacked on a leading axis, or the base config's stream when shared.
    `raw`: image batches as stored (uint8 and flip masks, see
    data.host_batches), for `data.images.finish_on_device`."""
    if sweep.shared_data:
        yield from data.host_batches(config, start_step=start_step, raw=raw)
        return
    streams = [data.host_batches(member_config(config, sweep, i), start_step=start_step,
                                 raw=raw)
               for i in range(lo, hi)]
    while True:
        batches = [next(s) for s in streams]
        yield {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def summarize(records: List[Dict[str, Any]], sweep: Sweep) -> List[Dict[str, Any]]:
    """Mean and standard error over members of every metric in `records` (one
    per member, the same step), grouped by the swept values.

    Returns:
      [{'values': {key: value}, 'members': n, METRIC: {'mean', 'sem'}}, ...];
      'sem' is the sample standard deviation / sqrt(n) (nan for n = 1);
      non-finite member values are left out and counted in 'excluded'.
    """
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in records:
        key = tuple((k, v[r['member']]) for k, v in sweep.values)
        groups.setdefault(key, []).append(r)
    rows = []
    for key, members in groups.items():
        row: Dict[str, Any] = {'values': dict(key), 'members': len(members)}
        names = sorted({k for r in members for k in r if k.startswith('eval/')})
        for name in names:
            vals = np.asarray([r[name] for r in members if name in r], np.float64)
            good = vals[np.isfinite(vals)]
            sem = float(np.std(good, ddof=1) / np.sqrt(len(good))) \
                if len(good) > 1 else float('nan')
            row[name] = {'mean': float(np.mean(good)) if len(good) else float('nan'),
                         'sem': sem, 'excluded': int(len(vals) - len(good))}
        rows.append(row)
    return rows


def summary_markdown(rows: List[Dict[str, Any]]) -> str:
    """The summary as a markdown table: one row per swept setting, metric
    columns 'mean ± sem'."""
    metric_names = sorted({k for r in rows for k in r if k.startswith('eval/')})
    value_names = sorted({k for r in rows for k in r['values']})
    head = value_names + ['members'] + [m[len('eval/'):] for m in metric_names]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [f'{r["values"][k]:g}' for k in value_names] + [str(r['members'])]
        for m in metric_names:
            s = r.get(m)
            cells.append('' if s is None else f'{s["mean"]:.4g} ± {s["sem"]:.2g}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def check_names(names: Sequence[str], valid: Sequence[str], what: str) -> None:
    """Raises ValueError naming any of `names` not in `valid` (script flags)."""
    for name in names:
        if name not in valid:
            raise ValueError(f'unknown {what} {name!r}; valid: {", ".join(valid)}')
