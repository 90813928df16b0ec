r"""Milliseconds per update step: our jitted step next to the same networks and
the same step written in PyTorch eager.

  python scripts/bench_step.py [--models mlp,dcgan32,resnet32,dcgan64]
      [--steps 20] [--rounds 5] [--n_critic 1] [--no-torch] [--torch_threads N]
      [--json FILE]

Models, each built from its real config through `gan_jax.loop.build` and
compiled by `gan_jax.train.make_train_step` (state replicated on a one-device
mesh, as `loop.run` places it):
  mlp       toy_ring: PacGAN's toy MLPs (G 4x400 ReLU+BN, D 2 maxout layers),
            batch 256.
  dcgan32   cifar10_dcgan: DCGAN-32, base width 64, batch 64.
  resnet32  cifar10_sngan: SNGAN's ResNets, spectral norm in D, hinge loss,
            batch 64.
  dcgan64   celeba64_dcgan: DCGAN-64, base width 64, batch 64.
Batches are synthetic (uniform in [-1, 1]); no dataset is read.

One step is what `gan_jax.train.train_step` does: n_critic D updates (D sees
real and fresh fakes concatenated in one call), one G update against the
updated D (D in training mode, its statistics dropped), the generator EMA.
The PyTorch reference repeats it in the same order with the same layer shapes,
losses, BN momentum/eps, spectral norm (one power iteration per training
forward) and Adam hyperparameters; torch runs NCHW, its own layout, and on
CUDA with TF32 and cuDNN autotuning, as XLA does by default. Times: median
over `--steps` steps after warm-up, taken in `--rounds` alternating blocks of
JAX and torch steps so that a slow stretch of a shared machine hits both, "± spread" = half the interquartile range
(the middle half of the steps lies within median ± spread when the spread is
symmetric). JAX's first call (tracing and compiling) is reported as
"compile s"; FLOPs come from XLA's cost analysis of the compiled step. torch
is optional: without it (or with --no-torch) its columns are empty / null.
On a CPU shared with other jobs, try --torch_threads 1 (see main).
"""
import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (config module in experiments/configs, batch size, description).
MODELS = {
    'mlp': ('toy_ring', 256, 'toy MLP'),
    'dcgan32': ('cifar10_dcgan', 64, 'DCGAN 32x32'),
    'resnet32': ('cifar10_sngan', 64, 'SNGAN ResNet 32x32'),
    'dcgan64': ('celeba64_dcgan', 64, 'DCGAN 64x64'),
}
# Steps run before timing starts. JAX: the first call compiles, the second is
# timed apart to show that it does not compile again. torch: allocator and
# oneDNN/cuDNN set-up happen in the first steps.
TORCH_WARMUP_STEPS = 2


def model_config(name: str, n_critic: int = 1):
    """The config of benchmark model `name` (no evaluations), at its benchmark
    batch size and, when n_critic > 0, with n_critic D updates per step."""
    module_name, batch_size, _ = MODELS[name]
    config = importlib.import_module(
        f'experiments.configs.{module_name}').get_config('noeval')
    config.batch_size = batch_size
    if n_critic > 0:
        config.n_critic = n_critic
    return config


def _median_spread(times_ms: Sequence[float]):
    """(median, half the interquartile range) of per-step times in ms."""
    q25, q50, q75 = np.percentile(np.asarray(times_ms), [25, 50, 75])
    return float(q50), float(q75 - q25) / 2


def _flops(compiled) -> Optional[float]:
    """FLOPs of a compiled XLA program; cost_analysis() is a dict or, in some
    jax versions, a list with one dict per program."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get('flops')
    return float(flops) if flops is not None else None


# --------------------------------------------------------------------------- #
# JAX: the library's own step.                                                #
# --------------------------------------------------------------------------- #
def prepare_jax(config) -> Tuple[Callable[[], float], Dict[str, Any]]:
    """Compiles gan_jax's update step on synthetic batches and warms it up.

    Returns:
      (timed_step, info): timed_step() runs one update and returns its wall
      milliseconds (after block_until_ready); info has 'compile_s',
      'jax_second_call_ms', 'gflops', 'data_shape' and 'check', a callable
      that raises RuntimeError if the step compiled again since warm-up.
    """
    import jax

    from gan_jax import loop, parallel, train

    info, _, _, spec, state = loop.build(config)
    # One device, like the torch reference; the state replicated as loop.run
    # places it, so the step sees the same shardings as in training.
    mesh = parallel.make_mesh(num_devices=1)
    state_sharding = parallel.replicated(mesh)
    batch_sharding = parallel.batch_sharding(mesh)
    state = jax.device_put(jax.tree.map(np.asarray, state), state_sharding)
    x = np.random.default_rng(0).uniform(
        -1.0, 1.0, (config.n_critic, config.batch_size) + tuple(info.shape))
    batch = jax.device_put({'x': x.astype(np.float32)}, batch_sharding)
    step = train.make_train_step(spec, state_sharding=state_sharding,
                                 batch_sharding=batch_sharding)
    holder = {'state': state}

    def timed_step() -> float:
        start = time.perf_counter()
        # The step donates the state: always rebind.
        holder['state'], _ = step(holder['state'], batch)
        jax.block_until_ready(holder['state'])
        return 1e3 * (time.perf_counter() - start)

    compile_s = timed_step() / 1e3
    # Served from the cache of the call above, so it does not compile again.
    flops = _flops(step.lower(holder['state'], batch).compile())
    # A private jax API: skip the check where it is missing.
    cache_size = getattr(step, '_cache_size', lambda: None)()
    second_ms = timed_step()

    def check():
        if cache_size is not None and step._cache_size() != cache_size:
            raise RuntimeError('the update step compiled again after its first call '
                               '(a shape, dtype or sharding of the state changed)')
    return timed_step, dict(compile_s=compile_s, jax_second_call_ms=second_ms,
                            gflops=None if flops is None else flops / 1e9,
                            data_shape=tuple(info.shape), check=check)


# --------------------------------------------------------------------------- #
# PyTorch eager: the same networks and step.                                  #
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=None)
def _torch_lib():
    """The torch modules of the reference (built on first use, so that this
    script and gan_jax import without torch). Images are NCHW, torch's own
    layout; layer shapes, parameter counts and FLOPs are those of ours."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm

    from gan_jax.models import dcgan, resnet

    def bn(num_features, flax_momentum, dims=2):
        # flax: ra = m·ra + (1 - m)·batch; torch: ra = (1 - m')·ra + m'·batch.
        # eps 1e-5 in both. (torch's running variance is unbiased, flax's is
        # biased: it changes only the inference statistics, not the cost.)
        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        return cls(num_features, eps=1e-5, momentum=1.0 - flax_momentum)

    def sn(module, spectral=True):
        return spectral_norm(module) if spectral else module

    class MLPGenerator(nn.Module):
        """gan_jax.models.mlp.Generator: z [B, z_dim] -> x [B, *out_shape]."""

        def __init__(self, z_dim, out_shape, hidden, batch_norm, bn_momentum):
            super().__init__()
            self.out_shape = tuple(out_shape)
            layers, width_in = [], z_dim
            for width in hidden:
                layers.append(nn.Linear(width_in, width, bias=not batch_norm))
                if batch_norm:
                    layers.append(bn(width, bn_momentum, dims=1))
                layers.append(nn.ReLU())
                width_in = width
            layers.append(nn.Linear(width_in, int(np.prod(out_shape))))
            self.net = nn.Sequential(*layers)

        def forward(self, z):
            return self.net(z).view((z.shape[0],) + self.out_shape)

    class Maxout(nn.Module):
        """layers.MaxoutDense: [B, D_in] -> [B, features]."""

        def __init__(self, width_in, features, pieces):
            super().__init__()
            self.features, self.pieces = features, pieces
            self.dense = nn.Linear(width_in, features * pieces)

        def forward(self, x):
            h = self.dense(x).view(x.shape[0], self.features, self.pieces)
            # max(), not amax(): torch's amax gradient (mask, count, divide)
            # is several times slower on CPU; without ties both give jnp.max's.
            return h.max(dim=-1).values

    class MLPDiscriminator(nn.Module):
        """gan_jax.models.mlp.Discriminator: x [B, *shape] -> logits [B // pack]."""

        def __init__(self, data_shape, hidden, maxout_pieces, pack):
            super().__init__()
            self.pack = pack
            layers, width_in = [], pack * int(np.prod(data_shape))
            for width in hidden:
                if maxout_pieces > 1:
                    layers.append(Maxout(width_in, width, maxout_pieces))
                else:
                    layers += [nn.Linear(width_in, width), nn.LeakyReLU(0.2)]
                width_in = width
            layers.append(nn.Linear(width_in, 1))
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x.reshape(x.shape[0] // self.pack, -1))[:, 0]

    class DCGANGenerator(nn.Module):
        """gan_jax.models.dcgan.Generator: z [B, z_dim] -> [B, C, H, W].

        ConvTranspose2d(4, stride 2, padding 1) is the function of our 'SAME'
        transposed convolution (ours computes it as a strided convolution's
        adjoint) with the kernel flipped.
        """

        def __init__(self, z_dim, out_shape, base_channels, bn_momentum):
            super().__init__()
            size, _, c_out = out_shape
            self.start, n = dcgan.stages(size)
            channels = base_channels * 2 ** (n - 1)
            self.channels = channels
            self.dense = nn.Linear(z_dim, self.start ** 2 * channels, bias=False)
            layers = [bn(channels, bn_momentum), nn.ReLU()]
            for _ in range(n - 1):
                layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1,
                                              bias=False),
                           bn(channels // 2, bn_momentum), nn.ReLU()]
                channels //= 2
            layers += [nn.ConvTranspose2d(channels, c_out, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

        def forward(self, z):
            h = self.dense(z).view(-1, self.channels, self.start, self.start)
            return self.net(h)

    class DCGANDiscriminator(nn.Module):
        """gan_jax.models.dcgan.Discriminator: [B, C, H, W] -> logits [B]."""

        def __init__(self, data_shape, base_channels, norm, num_layers):
            super().__init__()
            size, _, channels = data_shape
            spectral = norm == 'spectral'
            layers = []
            for i in range(num_layers or dcgan.stages(size)[1]):
                bn_follows = i > 0 and norm == 'batch'
                out = base_channels * 2 ** i
                layers.append(sn(nn.Conv2d(channels, out, 4, 2, 1,
                                           bias=not bn_follows), spectral))
                if bn_follows:
                    layers.append(bn(out, 0.9))
                layers.append(nn.LeakyReLU(0.2))
                channels, size = out, size // 2
            layers += [nn.Flatten(), sn(nn.Linear(channels * size * size, 1), spectral)]
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x)[:, 0]

    def upsample(x):
        return F.interpolate(x, scale_factor=2, mode='nearest')

    class GBlock(nn.Module):
        """resnet.GBlock (unconditional)."""

        def __init__(self, channels_in, features):
            super().__init__()
            self.bn1, self.bn2 = bn(channels_in, 0.9), bn(features, 0.9)
            self.conv1 = nn.Conv2d(channels_in, features, 3, padding=1)
            self.conv2 = nn.Conv2d(features, features, 3, padding=1)
            self.shortcut = nn.Conv2d(channels_in, features, 1)

        def forward(self, x):
            h = self.conv1(upsample(F.relu(self.bn1(x))))
            h = self.conv2(F.relu(self.bn2(h)))
            return h + self.shortcut(upsample(x))

    class DBlock(nn.Module):
        """resnet.DBlock."""

        def __init__(self, channels_in, features, downsample, first, spectral):
            super().__init__()
            self.downsample, self.first = downsample, first
            self.conv1 = sn(nn.Conv2d(channels_in, features, 3, padding=1), spectral)
            self.conv2 = sn(nn.Conv2d(features, features, 3, padding=1), spectral)
            self.shortcut = None
            if first or downsample or channels_in != features:
                self.shortcut = sn(nn.Conv2d(channels_in, features, 1), spectral)

        def forward(self, x):
            h = x if self.first else F.relu(x)
            h = self.conv2(F.relu(self.conv1(h)))
            if self.downsample:
                h = F.avg_pool2d(h, 2)
            if self.first:
                shortcut = self.shortcut(F.avg_pool2d(x, 2))
            elif self.shortcut is not None:
                shortcut = self.shortcut(x)
                if self.downsample:
                    shortcut = F.avg_pool2d(shortcut, 2)
            else:
                shortcut = x
            return h + shortcut

    class ResNetGenerator(nn.Module):
        """resnet.Generator (unconditional, no attention)."""

        def __init__(self, z_dim, out_shape, channels):
            super().__init__()
            size, _, c_out = out_shape
            channels = tuple(channels) or resnet.ARCHS[size][0]
            self.channels = channels[0]
            self.dense = nn.Linear(z_dim, 4 * 4 * channels[0])
            blocks, channels_in = [], channels[0]
            for features in channels:
                blocks.append(GBlock(channels_in, features))
                channels_in = features
            self.blocks = nn.Sequential(*blocks)
            self.bn = bn(channels_in, 0.9)
            self.out = nn.Conv2d(channels_in, c_out, 3, padding=1)

        def forward(self, z):
            h = self.blocks(self.dense(z).view(-1, self.channels, 4, 4))
            return torch.tanh(self.out(F.relu(self.bn(h))))

    class ResNetDiscriminator(nn.Module):
        """resnet.Discriminator (unconditional, no attention)."""

        def __init__(self, data_shape, channels, spectral):
            super().__init__()
            size, _, channels_in = data_shape
            channels = tuple(channels) or resnet.ARCHS[size][1]
            blocks = []
            for i, (features, down) in enumerate(zip(channels, resnet.ARCHS[size][2])):
                blocks.append(DBlock(channels_in, features, down, i == 0, spectral))
                channels_in = features
            self.blocks = nn.Sequential(*blocks)
            self.dense = sn(nn.Linear(channels_in, 1), spectral)

        def forward(self, x):
            features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
            return self.dense(features)[:, 0]

    return dict(torch=torch, MLPGenerator=MLPGenerator,
                MLPDiscriminator=MLPDiscriminator, DCGANGenerator=DCGANGenerator,
                DCGANDiscriminator=DCGANDiscriminator,
                ResNetGenerator=ResNetGenerator,
                ResNetDiscriminator=ResNetDiscriminator)


def torch_networks(config, data_shape):
    """(G, D) torch modules identical in layer shapes to gan_jax's networks of
    `config` for samples of `data_shape` (HWC for images).

    Raises:
      NotImplementedError: a model option the reference does not mirror
        (conditioning, attention, packed image D).
    """
    lib = _torch_lib()
    g, d, z_dim = config.model.g, config.model.d, config.model.z_dim
    name = config.model.name
    if name == 'mlp':
        return (lib['MLPGenerator'](z_dim, data_shape, g.hidden, g.batch_norm,
                                    g.bn_momentum),
                lib['MLPDiscriminator'](data_shape, d.hidden, d.maxout_pieces,
                                        d.pack))
    if name == 'dcgan':
        if d.pack != 1:
            raise NotImplementedError('the torch reference has no packed DCGAN D')
        return (lib['DCGANGenerator'](z_dim, data_shape, g.base_channels,
                                      g.bn_momentum),
                lib['DCGANDiscriminator'](data_shape, d.base_channels, d.norm,
                                          d.num_layers))
    if name == 'resnet':
        # Conditioning comes from data.labels (models.build sets num_classes).
        if config.data.labels or g.attention_resolution or d.attention_resolution:
            raise NotImplementedError('the torch reference has no conditional or '
                                      'attention ResNet')
        return (lib['ResNetGenerator'](z_dim, data_shape, g.channels),
                lib['ResNetDiscriminator'](data_shape, d.channels, d.spectral))
    raise NotImplementedError(f'no torch reference for model {name!r}')


def _torch_losses(torch, name: str):
    """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) of gan_jax.losses."""
    F = torch.nn.functional
    d_losses = {
        'logistic': lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
        'wasserstein': lambda r, f: f.mean() - r.mean(),
        'hinge': lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean(),
        'least_squares': lambda r, f: (0.5 * ((r - 1.0) ** 2).mean()
                                       + 0.5 * (f ** 2).mean()),
    }
    g_losses = {
        'non_saturating': lambda f: F.softplus(-f).mean(),
        'minimax': lambda f: -F.softplus(f).mean(),
        'wasserstein': lambda f: -f.mean(),
        'least_squares': lambda f: 0.5 * ((f - 1.0) ** 2).mean(),
    }
    pairs = {'non_saturating': ('logistic', 'non_saturating'),
             'minimax': ('logistic', 'minimax'),
             'wasserstein': ('wasserstein', 'wasserstein'),
             'hinge': ('hinge', 'wasserstein'),
             'least_squares': ('least_squares', 'least_squares')}
    d_name, g_name = pairs[name]
    return d_losses[d_name], g_losses[g_name]


def make_torch_step(config, data_shape, device):
    """(step(reals) -> metrics, G, D) of the PyTorch reference.

    Mirrors gan_jax.train.train_step: per D update fresh latents, fakes from G
    in training mode without gradient and with G's BN statistics kept as they
    were; D on concatenate([real, fake]); Adam. Then the G update on fresh
    latents through D in training mode (D's statistics and power-iteration
    vectors restored, no gradient for D's weights, as jax.grad takes none),
    then the EMA of G's parameters. reals: [n_critic, B, C, H, W] (or
    [n_critic, B, 2] for points). Metrics stay on the device (no sync).
    """
    lib = _torch_lib()
    torch = lib['torch']
    for key in ('gp_weight', 'r1_gamma', 'r2_gamma'):
        if config.reg[key]:
            raise NotImplementedError(f'the torch reference has no reg.{key}')
    if config.augment.policy:
        raise NotImplementedError('the torch reference has no DiffAugment')
    G, D = (net.to(device).train() for net in torch_networks(config, data_shape))
    d_loss_fn, g_loss_fn = _torch_losses(torch, config.loss.name)

    def optimizer(params, opt, updates_per_step):
        # optax.adam: eps 1e-8 outside the square root, as torch's Adam.
        adam = torch.optim.Adam(params, lr=opt.lr, betas=(opt.b1, opt.b2), eps=1e-8,
                                foreach=True)
        schedule = None
        if opt.schedule == 'linear':  # optax.linear_schedule(lr, 0, N)
            total = opt.decay_steps * updates_per_step
            schedule = torch.optim.lr_scheduler.LambdaLR(
                adam, lambda count: max(0.0, 1.0 - count / total))
        return adam, schedule

    g_opt, g_sched = optimizer(G.parameters(), config.opt.g, 1)
    d_opt, d_sched = optimizer(D.parameters(), config.opt.d, config.n_critic)
    g_params = [p.detach() for p in G.parameters()]  # views: see the updates
    ema = [p.clone() for p in g_params]
    z_dim, n_critic = config.model.z_dim, config.n_critic
    ema_decay, ema_start = float(config.ema.decay), config.ema.start_step
    counter = {'step': 0}

    @contextlib.contextmanager
    def buffers_kept(module):
        """Runs `module` in training mode but restores its buffers (BN running
        statistics, spectral-norm u/v) afterwards, as our step drops them."""
        saved = [b.clone() for b in module.buffers()]
        try:
            yield
        finally:
            with torch.no_grad():
                for b, s in zip(module.buffers(), saved):
                    b.copy_(s)

    @contextlib.contextmanager
    def frozen(module):
        params = list(module.parameters())
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def grad_norm(params):
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(
            [p.grad for p in params if p.grad is not None])))

    d_params = list(D.parameters())
    g_params_grad = list(G.parameters())

    def step(reals):
        batch_size = reals.shape[1]
        d_metrics = []
        for i in range(n_critic):
            z = torch.randn(batch_size, z_dim, device=device)
            with torch.no_grad(), buffers_kept(G):
                fake = G(z)
            logits = D(torch.cat([reals[i], fake]))
            real_logits, fake_logits = logits.chunk(2)
            d_loss = d_loss_fn(real_logits, fake_logits)
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_metrics.append(torch.stack([d_loss.detach(), real_logits.detach().mean(),
                                          fake_logits.detach().mean(),
                                          grad_norm(d_params)]))
            d_opt.step()
            if d_sched is not None:
                d_sched.step()
        z = torch.randn(batch_size, z_dim, device=device)
        fake = G(z)  # G's BN statistics move here, as in g_step
        with frozen(D), buffers_kept(D):
            g_loss = g_loss_fn(D(fake))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
        g_norm = grad_norm(g_params_grad)
        g_opt.step()
        if g_sched is not None:
            g_sched.step()
        beta = 0.0 if counter['step'] < ema_start else ema_decay
        with torch.no_grad():
            torch._foreach_lerp_(ema, g_params, 1.0 - beta)  # beta·ema + (1-beta)·p
        counter['step'] += 1
        d_mean = torch.stack(d_metrics).mean(dim=0)
        guarded = torch.stack([d_mean[0], g_loss.detach(), d_mean[3], g_norm])
        return {'d': d_mean, 'g': g_loss.detach(),
                'nonfinite': (~torch.isfinite(guarded)).any()}

    return step, G, D


def prepare_torch(config, data_shape) -> Tuple[Callable[[], float], str]:
    """Builds and warms up the PyTorch reference step (CUDA when available,
    else CPU). Returns (timed_step() -> wall ms of one step, device name)."""
    torch = _torch_lib()['torch']
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    if device.type == 'cuda':
        # As XLA on GPU by default: TF32 in float32 matmuls and convolutions,
        # and convolution algorithms autotuned (here in the warm-up steps).
        torch.set_float32_matmul_precision('high')
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    step, _, _ = make_torch_step(config, data_shape, device)
    shape = (config.n_critic, config.batch_size)
    if len(data_shape) == 3:  # HWC -> CHW
        shape += (data_shape[2], data_shape[0], data_shape[1])
    else:
        shape += tuple(data_shape)
    reals = torch.rand(shape, device=device) * 2.0 - 1.0
    for _ in range(TORCH_WARMUP_STEPS):
        step(reals)
    sync()

    def timed_step() -> float:
        start = time.perf_counter()
        step(reals)
        sync()  # CPU ops are synchronous; CUDA ones are not
        return 1e3 * (time.perf_counter() - start)
    return timed_step, str(device)


def interleaved(timers: Sequence[Callable[[], float]], steps: int, rounds: int
                ) -> List[List[float]]:
    """Times `steps` calls of each timer in `rounds` alternating blocks (A's
    block, B's block, A's, ...), so that a slow stretch of a shared machine
    falls on both sides alike. Returns one list of milliseconds per timer."""
    times: List[List[float]] = [[] for _ in timers]
    rounds = max(1, min(rounds, steps))
    for r in range(rounds):
        block = steps * (r + 1) // rounds - steps * r // rounds
        for timer, out in zip(timers, times):
            out.extend(timer() for _ in range(block))
    return times


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Driver.                                                                     #
# --------------------------------------------------------------------------- #
def run_benchmark(models: Sequence[str], steps: int = 20, use_torch: bool = True,
                  n_critic: int = 1, torch_threads: int = 0, rounds: int = 5
                  ) -> List[Dict[str, Any]]:
    """One row per model: JAX and (if use_torch and importable) torch timings.

    Args:
      models: names from MODELS.
      steps: timed steps per framework (after warm-up), taken in `rounds`
        alternating blocks of JAX and torch steps (see `interleaved`).
      use_torch: run the PyTorch reference when torch imports.
      n_critic: D updates per step for every model; 0 = each config's own.
      torch_threads: torch's CPU threads; 0 = os.cpu_count().
    Returns:
      rows with keys model, batch, n_critic, jax_ms, jax_ms_spread,
      jax_second_call_ms, compile_s, gflops (per step), achieved_gflops_per_s,
      torch_ms, torch_ms_spread, ratio (jax/torch), torch_device; the torch
      entries are None when torch did not run.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f'unknown model {unknown[0]!r}; valid: {", ".join(MODELS)}')
    use_torch = use_torch and torch_available()
    if use_torch:
        _torch_lib()['torch'].set_num_threads(torch_threads or os.cpu_count())
    rows = []
    for name in models:
        config = model_config(name, n_critic)
        jax_step, info = prepare_jax(config)
        timers = [jax_step]
        device = None
        if use_torch:
            torch_step, device = prepare_torch(config, info['data_shape'])
            timers.append(torch_step)
        times = interleaved(timers, steps, rounds)
        info['check']()
        jax_ms, jax_spread = _median_spread(times[0])
        row = dict(model=name, batch=config.batch_size, n_critic=config.n_critic,
                   jax_ms=jax_ms, jax_ms_spread=jax_spread,
                   jax_second_call_ms=info['jax_second_call_ms'],
                   compile_s=info['compile_s'], gflops=info['gflops'],
                   achieved_gflops_per_s=None, torch_ms=None, torch_ms_spread=None,
                   ratio=None, torch_device=device)
        if row['gflops'] is not None:
            row['achieved_gflops_per_s'] = row['gflops'] / (row['jax_ms'] / 1e3)
        if use_torch:
            row['torch_ms'], row['torch_ms_spread'] = _median_spread(times[1])
            row['ratio'] = row['jax_ms'] / row['torch_ms']
        rows.append(row)
    return rows


def environment(use_torch: bool = True) -> str:
    """One line: device kind, cores, jax and torch versions."""
    import jax
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    torch_part = 'torch not installed' if use_torch else 'torch not run (--no-torch)'
    if use_torch and torch_available():
        torch = _torch_lib()['torch']
        where = (f'cuda ({torch.cuda.get_device_name()})' if torch.cuda.is_available()
                 else f'cpu, {torch.get_num_threads()} threads')
        torch_part = f'torch {torch.__version__} ({where})'
    return (f'device: {device.device_kind} ({device.platform}); CPU: {cpu}, '
            f'{os.cpu_count()} cores; jax {jax.__version__}; {torch_part}')


def _fmt(value, spec='.1f', missing='–'):
    return missing if value is None else format(value, spec)


def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The markdown table of run_benchmark's rows, with its notes."""
    lines = ['| model | batch | jax ms | torch ms | jax/torch | GFLOP/step '
             '| achieved GFLOP/s | compile s |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        torch_ms = ('–' if r['torch_ms'] is None
                    else f"{r['torch_ms']:.1f} ± {r['torch_ms_spread']:.1f}")
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['jax_ms']:.1f} ± "
            f"{r['jax_ms_spread']:.1f} | {torch_ms} | {_fmt(r['ratio'], '.2f')} | "
            f"{_fmt(r['gflops'], '.2f')} | {_fmt(r['achieved_gflops_per_s'])} | "
            f"{r['compile_s']:.1f} |")
    critics = ', '.join(f"{r['model']} {r['n_critic']}" for r in rows)
    resnet = any(r['model'] == 'resnet32' and r['n_critic'] == 1 for r in rows)
    lines += [
        '',
        f'A step = n_critic D updates + 1 G update + EMA; n_critic: {critics}'
        + (' (resnet32\'s config trains with 5; 1 here for comparability, '
           '--n_critic 0 for the config\'s own)' if resnet else '')
        + '. ms: median ± half the interquartile range. '
        'GFLOP/step: XLA\'s cost analysis of our compiled step. '
        'compile s: first call.']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated, from {", ".join(MODELS)}')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternating JAX / torch blocks the steps are split into')
    parser.add_argument('--n_critic', type=int, default=1,
                        help='D updates per step for every model; 0 = each '
                             "config's own (resnet32: 5)")
    parser.add_argument('--no-torch', dest='torch', action='store_false')
    # On a CPU shared with other jobs, torch's OpenMP threads wait on each
    # other at every op: one thread can then be many times faster than all.
    parser.add_argument('--torch_threads', type=int, default=0,
                        help='torch CPU threads (default 0 = all cores)')
    parser.add_argument('--json', default='')
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error('--steps must be positive')
    models = [m for m in args.models.split(',') if m]

    rows = run_benchmark(models, args.steps, args.torch, args.n_critic,
                         args.torch_threads, args.rounds)
    print(environment(args.torch))
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
