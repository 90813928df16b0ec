r"""Training curves of one or several workdirs: chosen metrics against step,
one subplot per metric, every workdir overlaid.

  python scripts/figure_losses.py --workdirs DIR1,DIR2,... \
      [--metrics loss/d,loss/g,eval/fid/fid] [--labels a,b] \
      [--out docs/img/losses.png] [--per_member]

Metrics are the keys of WORKDIR/metrics.jsonl (logged every log_every steps:
loss/d, loss/g, grad_norm/d, scores/real, ...) and of WORKDIR/eval.jsonl
(eval/EVALUATOR/NAME, e.g. eval/fid/fid, eval/modes/modes); an unknown name
ends the script with one line listing the available ones. A metric that only
some workdirs have is drawn for those. When eval.jsonl holds several records of
one step (experiments/evaluate.py appends its own), the last one is drawn.

A sweep workdir (experiments/sweep.py; records carry a `member` column) is
drawn as the mean over its members with a band of ± one standard error (sample
standard deviation / sqrt(n), over the members with a finite value at that
step), one curve per swept setting (e.g. each opt.d.lr); --per_member adds
every member as a thin line.
"""
import argparse
import json
import math
import os
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

FILES = ('metrics.jsonl', 'eval.jsonl')
# Numeric record fields that are bookkeeping, not metrics.
NOT_METRICS = {'step', 'member', 'seed', 'n_fake', 'n_real'}

# {metric: {member (None for a single run): {step: value}}}
Series = Dict[str, Dict[object, Dict[int, float]]]


def read_workdir(workdir: str) -> Series:
    """Every numeric metric of a workdir's metrics.jsonl and eval.jsonl.

    Raises:
      SystemExit: the workdir does not exist or has neither file.
    """
    if not os.path.isdir(workdir):
        raise SystemExit(f'error: workdir {workdir} does not exist')
    paths = [os.path.join(workdir, f) for f in FILES]
    if not any(os.path.exists(p) for p in paths):
        raise SystemExit(f'error: {workdir} has no {" or ".join(FILES)}: is it a '
                         'training workdir?')
    series: Series = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                record = json.loads(line)
                step, member = int(record['step']), record.get('member')
                for key, value in record.items():
                    if key in NOT_METRICS or isinstance(value, bool) or not isinstance(
                            value, (int, float)):
                        continue
                    # Later records of a step replace earlier ones.
                    by_step = series.setdefault(key, {}).setdefault(member, {})
                    by_step[step] = float(value)
    return series


def member_groups(workdir: str, members: List[object]
                  ) -> List[Tuple[str, List[object]]]:
    """[(setting label, members)] of a workdir: one group per swept setting of
    a sweep ('' for a seeds-only sweep), or [('', [None])] for a single run."""
    if members == [None]:
        return [('', [None])]
    from gan_jax import experiment
    sweep = experiment.load_sweep(workdir)
    if sweep is None or not sweep.values:
        return [('', sorted(members))]
    groups: Dict[str, List[object]] = {}
    for m in sorted(members):
        label = ', '.join(f'{k}={v[m]:g}' for k, v in sweep.values)
        groups.setdefault(label, []).append(m)
    return list(groups.items())


def mean_and_sem(curves: List[Dict[int, float]]) -> Tuple[np.ndarray, np.ndarray,
                                                          np.ndarray]:
    """(steps [S], mean [S], standard error [S]) over curves {step: value}; at
    each step only finite values count; the error is 0 with one value."""
    steps = sorted({s for c in curves for s in c})
    means, sems = [], []
    for s in steps:
        vals = np.asarray([c[s] for c in curves if s in c], np.float64)
        vals = vals[np.isfinite(vals)]
        means.append(vals.mean() if len(vals) else np.nan)
        sems.append(vals.std(ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else 0.0)
    return np.asarray(steps), np.asarray(means), np.asarray(sems)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workdirs', required=True,
                        help='Comma-separated training or sweep workdirs.')
    parser.add_argument('--metrics', default='loss/d,loss/g',
                        help='Comma-separated metric names (keys of metrics.jsonl '
                        'or eval.jsonl).')
    parser.add_argument('--labels', default='',
                        help='Comma-separated legend labels, one per workdir '
                        '(default: the workdir names).')
    parser.add_argument('--out', default='docs/img/losses.png', help='PNG path.')
    parser.add_argument('--per_member', action='store_true',
                        help='Also draw every member of a sweep as a thin line.')
    args = parser.parse_args(argv)

    workdirs = [w for w in args.workdirs.split(',') if w]
    wanted = [m for m in args.metrics.split(',') if m]
    if not workdirs or not wanted:
        raise SystemExit('error: give at least one workdir and one metric')
    labels = [a for a in args.labels.split(',')] if args.labels else [
        os.path.basename(os.path.normpath(w)) for w in workdirs]
    if len(labels) != len(workdirs):
        raise SystemExit(f'error: {len(labels)} labels for {len(workdirs)} workdirs')
    runs = [read_workdir(w) for w in workdirs]
    available = sorted({k for r in runs for k in r})
    for name in wanted:
        if name not in available:
            raise SystemExit(f'error: unknown metric {name!r}; available metrics: '
                             f'{", ".join(available)}')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    cols = len(wanted) if len(wanted) <= 3 else (2 if len(wanted) == 4 else 3)
    rows = math.ceil(len(wanted) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), dpi=110,
                             squeeze=False)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, name in zip(axes.flat, wanted):
        curve_index = 0
        for workdir, label, run in zip(workdirs, labels, runs):
            if name not in run:
                print(f'note: {label} has no {name}')
                continue
            by_member = run[name]
            for setting, members in member_groups(workdir, list(by_member)):
                color = colors[curve_index % len(colors)]
                curve_index += 1
                name_here = f'{label} {setting}'.strip()
                if members == [None]:
                    steps = sorted(by_member[None])
                    ax.plot(steps, [by_member[None][s] for s in steps], color=color,
                            lw=1.4, label=name_here, marker='o' if len(steps) < 12
                            else None, ms=3)
                    continue
                curves = [by_member[m] for m in members]
                steps, mean, sem = mean_and_sem(curves)
                if args.per_member:
                    for c in curves:
                        s = sorted(c)
                        ax.plot(s, [c[k] for k in s], color=color, lw=0.5, alpha=0.4)
                ax.plot(steps, mean, color=color, lw=1.6,
                        label=f'{name_here} (mean ± s.e., {len(members)} members)',
                        marker='o' if len(steps) < 12 else None, ms=3)
                ax.fill_between(steps, mean - sem, mean + sem, color=color, alpha=0.25,
                                lw=0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel('step')
        ax.xaxis.set_major_locator(ticker.MaxNLocator(6, integer=True))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(
            lambda v, _: f'{v / 1000:g}k' if abs(v) >= 1000 else f'{v:g}'))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(wanted):]:
        ax.axis('off')
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out)
    plt.close(fig)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
