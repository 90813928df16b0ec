"""PyTorch eager reference of gan_jax's networks and update step, timed
against ours by scripts/bench_step.py.

The networks (`networks`) have the layer shapes, parameter counts and FLOPs of
gan_jax.models' MLP, DCGAN and ResNet (unconditional, no attention), with the
same BN momentum/eps and spectral norm (one power iteration per training
forward); images are NCHW, torch's own layout. The step (`make_step`) repeats
gan_jax.train.train_step in the same order, with the same losses (`losses`)
and Adam hyperparameters. Needs torch (the `torch` extra); gan_jax and
bench_step import without it.

`make_step` also builds the forms a PyTorch expert would time (VARIANTS):
channels_last images and weights, the fused Adam kernel, bfloat16 autocast and
torch.compile'd networks. They change how the step is computed, not what.
"""
import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_jax.models import dcgan, resnet


def _bn(num_features, flax_momentum, dims=2):
    """The BatchNorm of flax's nn.BatchNorm(momentum=flax_momentum)."""
    # flax: ra = m·ra + (1 - m)·batch; torch: ra = (1 - m')·ra + m'·batch.
    # eps 1e-5 in both. (torch's running variance is unbiased, flax's is
    # biased: it changes only the inference statistics, not the cost.)
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(num_features, eps=1e-5, momentum=1.0 - flax_momentum)


def _sn(module, spectral=True):
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
                layers.append(_bn(width, bn_momentum, dims=1))
            layers.append(nn.ReLU())
            width_in = width
        layers.append(nn.Linear(width_in, int(np.prod(out_shape))))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).view((z.shape[0],) + self.out_shape)


class Maxout(nn.Module):
    """gan_jax.models.layers.MaxoutDense: [B, D_in] -> [B, features]."""

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
        layers = [_bn(channels, bn_momentum), nn.ReLU()]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1,
                                          bias=False),
                       _bn(channels // 2, bn_momentum), nn.ReLU()]
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
            layers.append(_sn(nn.Conv2d(channels, out, 4, 2, 1,
                                        bias=not bn_follows), spectral))
            if bn_follows:
                layers.append(_bn(out, 0.9))
            layers.append(nn.LeakyReLU(0.2))
            channels, size = out, size // 2
        layers += [nn.Flatten(), _sn(nn.Linear(channels * size * size, 1), spectral)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)[:, 0]


def _upsample(x):
    return F.interpolate(x, scale_factor=2, mode='nearest')


class GBlock(nn.Module):
    """gan_jax.models.resnet.GBlock (unconditional)."""

    def __init__(self, channels_in, features):
        super().__init__()
        self.bn1, self.bn2 = _bn(channels_in, 0.9), _bn(features, 0.9)
        self.conv1 = nn.Conv2d(channels_in, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.shortcut = nn.Conv2d(channels_in, features, 1)

    def forward(self, x):
        h = self.conv1(_upsample(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_upsample(x))


class DBlock(nn.Module):
    """gan_jax.models.resnet.DBlock."""

    def __init__(self, channels_in, features, downsample, first, spectral):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = _sn(nn.Conv2d(channels_in, features, 3, padding=1), spectral)
        self.conv2 = _sn(nn.Conv2d(features, features, 3, padding=1), spectral)
        self.shortcut = None
        if first or downsample or channels_in != features:
            self.shortcut = _sn(nn.Conv2d(channels_in, features, 1), spectral)

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
    """gan_jax.models.resnet.Generator (unconditional, no attention)."""

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
        self.bn = _bn(channels_in, 0.9)
        self.out = nn.Conv2d(channels_in, c_out, 3, padding=1)

    def forward(self, z):
        h = self.blocks(self.dense(z).view(-1, self.channels, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(nn.Module):
    """gan_jax.models.resnet.Discriminator (unconditional, no attention)."""

    def __init__(self, data_shape, channels, spectral):
        super().__init__()
        size, _, channels_in = data_shape
        channels = tuple(channels) or resnet.ARCHS[size][1]
        blocks = []
        for i, (features, down) in enumerate(zip(channels, resnet.ARCHS[size][2])):
            blocks.append(DBlock(channels_in, features, down, i == 0, spectral))
            channels_in = features
        self.blocks = nn.Sequential(*blocks)
        self.dense = _sn(nn.Linear(channels_in, 1), spectral)

    def forward(self, x):
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.dense(features)[:, 0]


def networks(config, data_shape):
    """(G, D) torch modules identical in layer shapes to gan_jax's networks of
    `config` for samples of `data_shape` (HWC for images).

    Raises:
      NotImplementedError: a model option the reference does not mirror
        (conditioning, attention, packed image D).
    """
    g, d, z_dim = config.model.g, config.model.d, config.model.z_dim
    name = config.model.name
    if name == 'mlp':
        return (MLPGenerator(z_dim, data_shape, g.hidden, g.batch_norm,
                             g.bn_momentum),
                MLPDiscriminator(data_shape, d.hidden, d.maxout_pieces, d.pack))
    if name == 'dcgan':
        if d.pack != 1:
            raise NotImplementedError('the torch reference has no packed DCGAN D')
        return (DCGANGenerator(z_dim, data_shape, g.base_channels, g.bn_momentum),
                DCGANDiscriminator(data_shape, d.base_channels, d.norm,
                                   d.num_layers))
    if name == 'resnet':
        # Conditioning comes from data.labels (models.build sets num_classes).
        if config.data.labels or g.attention_resolution or d.attention_resolution:
            raise NotImplementedError('the torch reference has no conditional or '
                                      'attention ResNet')
        return (ResNetGenerator(z_dim, data_shape, g.channels),
                ResNetDiscriminator(data_shape, d.channels, d.spectral))
    raise NotImplementedError(f'no torch reference for model {name!r}')


def losses(name: str):
    """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) of gan_jax.losses."""
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


# Forms of the same step (make_step's `variant`): what each changes.
VARIANTS = {
    'eager': 'as written: NCHW tensors, Adam(foreach=True)',
    'tuned': 'channels_last images and weights, Adam(fused=True) where the '
             'device has the fused kernel',
    'compiled': "tuned, with G and D through torch.compile (inductor; on a CPU "
                'it needs a C++ compiler)',
}


def fused_adam_available(device) -> bool:
    """Whether torch's fused Adam kernel runs on `device` (CUDA; CPU from
    torch 2.4): one tiny update, as the optimizer checks only at its first
    step on some versions."""
    try:
        p = torch.zeros(2, device=device, requires_grad=True)
        p.grad = torch.ones_like(p)
        torch.optim.Adam([p], fused=True).step()
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def make_step(config, data_shape, device, variant: str = 'eager',
              autocast_dtype=None):
    """(step(reals) -> metrics, G, D) of the PyTorch reference.

    Mirrors gan_jax.train.train_step: per D update fresh latents, fakes from G
    in training mode without gradient and with G's BN statistics kept as they
    were; D on concatenate([real, fake]); Adam. Then the G update on fresh
    latents through D in training mode (D's statistics and power-iteration
    vectors restored, no gradient for D's weights, as jax.grad takes none),
    then the EMA of G's parameters. reals: [n_critic, B, C, H, W] (or
    [n_critic, B, 2] for points), or a sequence of n_critic [B, ...] batches
    (channels_last ones for the 'tuned' and 'compiled' variants, see
    `as_input`). Metrics stay on the device (no sync).

    Args:
      variant: a key of VARIANTS. 'tuned' falls back to Adam(foreach=True)
        where fused_adam_available() is False (step.adam says which ran).
      autocast_dtype: e.g. torch.bfloat16: G's and D's forward passes and the
        losses under torch.autocast (the master weights, Adam and the EMA stay
        float32, as gan_jax's compute_dtype). None: float32.
    """
    from gan_jax import regularizers
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; valid: {", ".join(VARIANTS)}')
    for penalty in regularizers.PENALTIES:
        if config.reg[penalty.key]:
            raise NotImplementedError(f'the torch reference has no reg.{penalty.key}')
    if config.augment.policy:
        raise NotImplementedError('the torch reference has no DiffAugment')
    G, D = (net.to(device).train() for net in networks(config, data_shape))
    tuned = variant != 'eager'
    if tuned:
        # Only 4-D weights and buffers change format; dense layers stay.
        G, D = (net.to(memory_format=torch.channels_last) for net in (G, D))
    fused = tuned and fused_adam_available(device)
    d_loss_fn, g_loss_fn = losses(config.loss.name)
    if autocast_dtype is None:
        autocast = contextlib.nullcontext
    else:
        def autocast():
            return torch.autocast(device.type, dtype=autocast_dtype)

    def optimizer(params, opt, updates_per_step):
        # optax.adam: eps 1e-8 outside the square root, as torch's Adam.
        adam = torch.optim.Adam(params, lr=opt.lr, betas=(opt.b1, opt.b2), eps=1e-8,
                                **({'fused': True} if fused else {'foreach': True}))
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
    # The parameters, buffers and hooks above belong to the modules; the
    # compiled wrappers share them. dynamic=False: D sees batch 2B in its own
    # update and B in G's, two static graphs instead of a dynamic-shape one.
    g_net, d_net = ((torch.compile(G, dynamic=False), torch.compile(D, dynamic=False))
                    if variant == 'compiled' else (G, D))

    def step(reals):
        batch_size = reals[0].shape[0]
        d_metrics = []
        for i in range(n_critic):
            z = torch.randn(batch_size, z_dim, device=device)
            with torch.no_grad(), buffers_kept(G), autocast():
                fake = g_net(z)
            with autocast():
                logits = d_net(torch.cat([reals[i], fake.to(reals[i].dtype)]))
                real_logits, fake_logits = logits.float().chunk(2)
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
        with frozen(D), buffers_kept(D):
            with autocast():
                fake = g_net(z)  # G's BN statistics move here, as in g_step
                g_loss = g_loss_fn(d_net(fake).float())
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

    step.adam = 'fused' if fused else 'foreach'
    return step, G, D


def as_input(reals, variant: str):
    """The real batches [n_critic, B, ...] as `make_step`'s step of `variant`
    reads them: the tensor itself for 'eager', else a list of per-update
    channels_last batches (made once, as a data loader would deliver them)."""
    if variant == 'eager' or reals.dim() != 5:
        return reals
    return [r.contiguous(memory_format=torch.channels_last) for r in reals]
