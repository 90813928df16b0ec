r"""Times the forms of gan_jax.ops (and the XLA:CPU compiler options) per layer
and per whole update step, every variant interleaved in one process, so that a
busy machine slows all of them alike; optionally next to the PyTorch eager
reference step (scripts/torch_reference.py) in the same rounds.

  python scripts/bench_ops.py layers [--cases dcgan32,resnet32] [--dtype float32]
      [--options default,eigen] [--forms xla,adjoint,...] [--torch]
  python scripts/bench_ops.py step --model dcgan32 \
      --variants 'auto:;xla_d:d.conv_impl=xla;eigen:options=eigen' [--torch]

A step variant is NAME:SETTINGS, SETTINGS comma-separated KEY=VALUE among
g.<field> / d.<field> (model constructor keys, e.g. g.upconv_impl=subpixel),
compute_dtype=bfloat16, and options=default|eigen|auto (XLA's default
compiler options, gan_jax.ops.xla_options' Eigen-convolution options, or what
gan_jax.ops.xla_options.compiler_options() picks on this machine: the
default), and xla_<option>=VALUE for any further XLA compiler option.
Variants are separated by ';'. Prints the CPU, then one markdown row per
variant: median ms ± half the interquartile range and the minimum, each also
as a ratio to the first variant (and to torch with --torch). On a CPU shared
with other jobs the minimum is the better estimate of a quiet machine's time
(a busy stretch only ever adds); torch's OpenMP threads suffer more from a
busy machine than XLA's, so compare against torch in a quiet stretch.

`layers` prints one row per layer, form and compiler options: forward ms and
forward + gradients (input and kernel) ms, medians.
"""
import argparse
import itertools
import os
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_name() -> str:
    """'model name' and the AVX-512 / bfloat16 flags of /proc/cpuinfo."""
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
    except OSError:
        return 'unknown CPU'
    name = next((line.split(':', 1)[1].strip() for line in text.splitlines()
                 if line.startswith('model name')), 'unknown CPU')
    family = next((line.split(':', 1)[1].strip() for line in text.splitlines()
                   if line.startswith('cpu family')), '?')
    flags = next((line.split(':', 1)[1].split() for line in text.splitlines()
                  if line.startswith('flags')), [])
    wanted = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    wanted = ', '.join(wanted) or 'no AVX2'
    return f'{name} (family {family}; {wanted}; {os.cpu_count()} cores)'


def _options(name: str):
    from gan_jax.ops import xla_options
    if name == 'default':
        return None
    if name == 'eigen':
        return dict(xla_options.EIGEN_CONVOLUTIONS)
    if name == 'auto':
        return xla_options.compiler_options()
    raise ValueError(f'options must be default, eigen or auto, got {name!r}')


def _median_spread(times: Sequence[float]) -> Tuple[float, float]:
    q25, q50, q75 = np.percentile(np.asarray(times), [25, 50, 75])
    return float(q50), float(q75 - q25) / 2


def _timer(fn: Callable[[], object]) -> Callable[[], float]:
    import jax

    def timed() -> float:
        start = time.perf_counter()
        jax.block_until_ready(fn())
        return 1e3 * (time.perf_counter() - start)
    return timed


# --------------------------------------------------------------------------- #
# Layers.                                                                     #
# --------------------------------------------------------------------------- #
# (label, op, x shape, kernel shape): the layers of DCGAN-32 and ResNet-32 at
# batch 64 as the update step runs them (D sees real and fake, 128 images).
LAYER_CASES = {
    'dcgan32': [
        ('D conv 3->64, 32->16, b128', 'strided_conv4x4', (128, 32, 32, 3),
         (4, 4, 3, 64)),
        ('D conv 64->128, 16->8, b128', 'strided_conv4x4', (128, 16, 16, 64),
         (4, 4, 64, 128)),
        ('D conv 128->256, 8->4, b128', 'strided_conv4x4', (128, 8, 8, 128),
         (4, 4, 128, 256)),
        ('G upconv 256->128, 4->8, b64', 'conv_transpose4x4', (64, 4, 4, 256),
         (4, 4, 256, 128)),
        ('G upconv 128->64, 8->16, b64', 'conv_transpose4x4', (64, 8, 8, 128),
         (4, 4, 128, 64)),
        ('G upconv 64->3, 16->32, b64', 'conv_transpose4x4', (64, 16, 16, 64),
         (4, 4, 64, 3)),
    ],
    'resnet32': [
        ('G up-conv 256->256, 4->8, b64', 'upsample_conv3x3', (64, 4, 4, 256),
         (3, 3, 256, 256)),
        ('G up-conv 256->256, 8->16, b64', 'upsample_conv3x3', (64, 8, 8, 256),
         (3, 3, 256, 256)),
        ('G up-conv 256->256, 16->32, b64', 'upsample_conv3x3', (64, 16, 16, 256),
         (3, 3, 256, 256)),
    ],
    # Tiny shapes of every op, for a quick functional pass (tests).
    'smoke': [
        ('smoke strided', 'strided_conv4x4', (2, 8, 8, 4), (4, 4, 4, 8)),
        ('smoke transposed', 'conv_transpose4x4', (2, 4, 4, 8), (4, 4, 8, 4)),
        ('smoke up-conv', 'upsample_conv3x3', (2, 4, 4, 4), (3, 3, 4, 8)),
    ],
}


def _layer_fn(op: str, form: str) -> Callable:
    """(x, kernel) -> y of `op` computed in `form`."""
    from gan_jax.ops import conv as ops_conv
    if op == 'strided_conv4x4':
        fn = ops_conv.conv_general_dilated(form)
        return lambda x, k: fn(x, k, (2, 2), 'SAME',
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if op == 'conv_transpose4x4':
        return lambda x, k: ops_conv.conv_transpose(x, k, impl=form)
    fn = ops_conv.upsampled_conv_general_dilated(form)
    return lambda x, k: fn(x, k, (1, 1), 'SAME',
                           dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _torch_layer_timers(op: str, x_shape, k_shape):
    """(forward timer, forward + gradients timer) of the same layer in
    PyTorch eager (NCHW, float32, no bias): Conv2d(4, 2, 1), ConvTranspose2d(
    4, 2, 1), or nearest upsampling then Conv2d(3, padding=1)."""
    import torch
    c_in, c_out = k_shape[2], k_shape[3]
    if op == 'strided_conv4x4':
        layer = torch.nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
    elif op == 'conv_transpose4x4':
        layer = torch.nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
    else:
        conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)

        def layer(x):
            return conv(torch.nn.functional.interpolate(x, scale_factor=2,
                                                        mode='nearest'))
        layer.parameters = conv.parameters
    n, h, w, _ = x_shape
    x = torch.randn(n, c_in, h, w, requires_grad=True)
    target = torch.randn_like(layer(x))

    def forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            layer(x)
        return 1e3 * (time.perf_counter() - start)

    def gradients() -> float:
        start = time.perf_counter()
        (layer(x) * target).sum().backward()
        x.grad = None
        for p in layer.parameters():
            p.grad = None
        return 1e3 * (time.perf_counter() - start)
    for _ in range(2):  # oneDNN set-up
        forward(), gradients()
    return forward, gradients


def bench_layers(cases: Sequence[str], dtype: str, options: Sequence[str],
                 rounds: int, steps: int, forms_filter=None,
                 use_torch: bool = False) -> List[Dict]:
    """One row per (layer, form, options): forward ms and forward + gradient
    (input and kernel) ms, all variants of a layer interleaved (with
    use_torch, PyTorch's same layer too, as form 'torch eager')."""
    import jax
    import jax.numpy as jnp

    from gan_jax.ops import policy
    rows = []
    layers = itertools.chain(*(LAYER_CASES[c] for c in cases))
    for label, op, x_shape, k_shape in layers:
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal(x_shape), dtype)
        k = jnp.asarray(rng.standard_normal(k_shape) * 0.05, dtype)
        forms = [f for f in policy.FORMS[op] if not forms_filter or f in forms_filter]
        y_shape = jax.eval_shape(_layer_fn(op, 'xla'), x, k).shape
        t = jnp.asarray(rng.standard_normal(y_shape), dtype)
        variants, timers = [], []
        for form, opt in itertools.product(forms, options):
            fn = _layer_fn(op, form)
            forward = jax.jit(fn, compiler_options=_options(opt))
            grad = jax.jit(jax.grad(
                lambda x_, k_, t_, fn=fn: jnp.sum(fn(x_, k_).astype(jnp.float32)
                                                  * t_.astype(jnp.float32)),
                argnums=(0, 1)), compiler_options=_options(opt))
            for kind, f, args in (('forward', forward, (x, k)),
                                  ('grad', grad, (x, k, t))):
                jax.block_until_ready(f(*args))  # compile
                variants.append((form, opt, kind))
                timers.append(_timer(lambda f=f, args=args: f(*args)))
        pairs = list(itertools.product(forms, options))
        if use_torch:
            for kind, timer in zip(('forward', 'grad'),
                                   _torch_layer_timers(op, x_shape, k_shape)):
                variants.append(('torch eager', '-', kind))
                timers.append(timer)
            pairs.append(('torch eager', '-'))
        from bench_step import interleaved
        times = interleaved(timers, rounds * steps, rounds)
        by_key = {v: _median_spread(t)[0] for v, t in zip(variants, times)}
        for form, opt in pairs:
            rows.append(dict(layer=label, op=op, form=form, options=opt,
                             forward_ms=by_key[(form, opt, 'forward')],
                             grad_ms=by_key[(form, opt, 'grad')]))
        print(_layer_rows(rows[-len(pairs):]), flush=True)
    return rows


def _layer_rows(rows: Sequence[Dict]) -> str:
    return '\n'.join(f"| {r['layer']} | {r['form']} | {r['options']} | "
                     f"{r['forward_ms']:.2f} | {r['grad_ms']:.2f} |" for r in rows)


# --------------------------------------------------------------------------- #
# Whole steps.                                                                #
# --------------------------------------------------------------------------- #
def parse_variants(text: str) -> List[Tuple[str, Dict[str, str]]]:
    """'a:k=v,k2=v2;b:' -> [('a', {'k': 'v', 'k2': 'v2'}), ('b', {})]."""
    variants = []
    for item in filter(None, (s.strip() for s in text.split(';'))):
        name, _, settings = item.partition(':')
        pairs = {}
        for setting in filter(None, settings.split(',')):
            key, eq, value = setting.partition('=')
            if not eq:
                raise ValueError(
                    f'setting {setting!r} of variant {name!r} is not KEY=VALUE')
            pairs[key.strip()] = value.strip()
        variants.append((name, pairs))
    if not variants:
        raise ValueError('no variants given')
    return variants


def _step_timer(model: str, settings: Dict[str, str]
                ) -> Tuple[Callable[[], float], Dict]:
    import jax

    import bench_step
    from gan_jax import experiment, train

    config = bench_step.model_config(model, 1)
    options, extra = 'auto', {}
    for key, value in settings.items():
        if key == 'options':
            options = value
        elif key.startswith('xla_'):  # one more XLA compiler option
            extra[key] = (int(value) if value.isdigit() else
                          {'true': True, 'false': False}.get(value, value))
        elif key == 'compute_dtype':
            config.model.compute_dtype = value
        elif key.startswith(('g.', 'd.')):
            config.model[key[0]][key[2:]] = value
        else:
            raise ValueError(f'unknown setting {key!r}')
    info, _, _, spec, state = experiment.build(config)
    x = np.random.default_rng(0).uniform(
        -1.0, 1.0, (config.n_critic, config.batch_size) + tuple(info.shape))
    batch = {'x': jax.device_put(x.astype(np.float32))}
    compiler_options = {**(_options(options) or {}), **extra} or None
    step = jax.jit(lambda s, b: train.train_step(s, b, spec=spec), donate_argnums=0,
                   compiler_options=compiler_options)
    holder = {'state': jax.tree.map(lambda a: jax.numpy.array(a, copy=True), state)}

    def timed() -> float:
        start = time.perf_counter()
        holder['state'], _ = step(holder['state'], batch)  # donated: rebind
        jax.block_until_ready(holder['state'])
        return 1e3 * (time.perf_counter() - start)
    compile_s = timed() / 1e3
    timed()
    return timed, dict(compile_s=compile_s, data_shape=tuple(info.shape), config=config)


def bench_steps(model: str, variants, rounds: int, steps: int, use_torch: bool,
                torch_threads: int) -> List[Dict]:
    """One row per variant (and torch): median ms per update step."""
    timers, names, first = [], [], None
    for name, settings in variants:
        timed, info = _step_timer(model, settings)
        first = first or info
        timers.append(timed)
        names.append(name)
    if use_torch:
        import torch

        import bench_step
        torch.set_num_threads(torch_threads or os.cpu_count())
        timed, _ = bench_step.prepare_torch(first['config'], first['data_shape'])
        timers.append(timed)
        names.append('torch eager')
    from bench_step import interleaved
    times = interleaved(timers, rounds * steps, rounds)
    rows = []
    for name, t in zip(names, times):
        ms, spread = _median_spread(t)
        rows.append(dict(variant=name, ms=ms, spread=spread, min_ms=float(np.min(t))))
    for row in rows:
        row['vs_first'] = row['ms'] / rows[0]['ms']
        row['min_vs_first'] = row['min_ms'] / rows[0]['min_ms']
        if use_torch:
            row['vs_torch'] = row['ms'] / rows[-1]['ms']
            row['min_vs_torch'] = row['min_ms'] / rows[-1]['min_ms']
    return rows


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='what', required=True)
    layers = sub.add_parser('layers')
    layers.add_argument('--cases', default='dcgan32,resnet32')
    layers.add_argument('--dtype', default='float32')
    layers.add_argument('--options', default='default,eigen')
    layers.add_argument('--forms', default='',
                        help='only these forms (comma-separated)')
    layers.add_argument('--torch', action='store_true',
                        help='also the same layer in PyTorch eager (float32)')
    layers.add_argument('--rounds', type=int, default=5)
    layers.add_argument('--steps_per_round', type=int, default=4)
    step = sub.add_parser('step')
    step.add_argument('--model', default='dcgan32')
    step.add_argument('--variants', default='auto:')
    step.add_argument('--torch', action='store_true')
    step.add_argument('--torch_threads', type=int, default=0)
    step.add_argument('--rounds', type=int, default=5)
    step.add_argument('--steps_per_round', type=int, default=4)
    args = parser.parse_args(argv)
    import jax
    print(f'CPU: {cpu_name()}; jax {jax.__version__}')
    if args.what == 'layers':
        print('| layer | form | options | forward ms | forward + gradients ms |')
        print('|---|---|---|---|---|')
        if args.torch:
            import torch
            torch.set_num_threads(os.cpu_count())
        bench_layers(args.cases.split(','), args.dtype, args.options.split(','),
                     args.rounds, args.steps_per_round,
                     set(filter(None, args.forms.split(','))), args.torch)
        return
    rows = bench_steps(args.model, parse_variants(args.variants), args.rounds,
                       args.steps_per_round, args.torch, args.torch_threads)
    print(f'{args.model}, batch 64, {args.rounds} rounds x '
          f'{args.steps_per_round} steps')
    header = '| variant | median ms | vs first | min ms | vs first |'
    if args.torch:
        header += ' median vs torch | min vs torch |'
    print(header)
    print('|' + '---|' * (header.count('|') - 1))
    for r in rows:
        line = (f"| {r['variant']} | {r['ms']:.1f} ± {r['spread']:.1f} | "
                f"{r['vs_first']:.3f} | {r['min_ms']:.1f} | {r['min_vs_first']:.3f} |")
        if args.torch:
            line += f" {r['vs_torch']:.3f} | {r['min_vs_torch']:.3f} |"
        print(line)


if __name__ == '__main__':
    main()
