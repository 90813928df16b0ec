"""The config schema every experiment starts from, and its validation.

An experiment config (experiments/configs/*.py) is `default_config()` with some
values changed. `validate` rejects unknown keys, wrong types, out-of-range
values and unknown names with one clear line each, before anything is written.
"""
from typing import Any, Dict, List

import ml_collections

from gan_jax import data, losses, models, regularizers

# Sub-trees whose keys depend on the chosen model or evaluator: their keys are
# checked by the model constructor / evaluator registry instead of the schema.
FREE_FORM = ('model.g', 'model.d', 'evals')

# Keys that may differ between the saved config of a workdir and a resumed run,
# because they do not change what the run computes step by step.
RESUMABLE_KEYS = ('num_steps', 'log_every', 'checkpoint_every', 'eval_every',
                  'sample_every', 'keep_checkpoints', 'progress',
                  'allow_config_change', 'data.data_dir', 'data.download',
                  'data.prefetch', 'data.max_memory_gib', 'evals', 'best_metric', 'best_mode',
                  'parallel.num_devices', 'steps_per_call')
# Entries of config.json that describe the machine a run used, not the run.
RUNTIME_KEY = '_runtime'

NAN_POLICIES = ('stop', 'skip')
LR_SCHEDULES = ('constant', 'linear')
# model.compute_dtype: the dtype the networks compute in during training steps
# (train.py's mixed precision); parameters and optimizer states stay float32.
COMPUTE_DTYPES = ('float32', 'bfloat16')
# opt.g.name / opt.d.name (train.make_optimizer).
OPTIMIZERS = ('adam', 'rmsprop')


class ConfigError(ValueError):
    """A config value is unknown, of the wrong type or out of range."""


def _optimizer(lr: float, b1: float, b2: float) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        # 'adam', or 'rmsprop' (b2 = the mean square's decay, PyTorch's alpha;
        # b1 = momentum, 0 = none): WGAN with weight clipping uses RMSProp.
        name='adam',
        lr=lr, b1=b1, b2=b2,
        schedule='constant',  # or 'linear': decays to 0 over decay_steps
        # Generator updates over which a 'linear' schedule decays. Kept apart
        # from num_steps so that extending a run does not change its past.
        decay_steps=0,
    ))


def default_config() -> ml_collections.ConfigDict:
    """All keys a run understands, with defaults (the 2-D ring toy GAN)."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 10_000          # generator updates
    c.batch_size = 100            # global batch, per D update
    c.log_every = 100             # steps between metrics.jsonl lines
    c.checkpoint_every = 2_000    # steps between checkpoints (and at the end)
    c.eval_every = 0              # steps between evaluations; 0 = only at the end
    c.sample_every = 2_000        # steps between sample figures; 0 = only at the end
    c.keep_checkpoints = 3
    c.dataset = 'ring'
    c.data = ml_collections.ConfigDict(dict(
        num_train=100_000,        # 2-D mixtures: fixed training set size (0 = fresh draws)
        data_dir='',              # TFDS data directory ('' = TFDS default)
        split='train',            # TFDS split to train on
        image_size=0,             # output size; 0 = the dataset's default
        crop=140,                 # celeb_a: center crop (pixels) before resizing
        random_flip=False,        # horizontal flips of training images
        labels=False,             # also yield integer labels ('label')
        download=True,            # let TFDS download when the host is reachable
        stacked_source='digits',  # stacked_mnist: 'digits' (offline) or 'mnist'
        prefetch=2,               # batches prepared ahead on a background thread
        # dataset 'synthetic' (gan_jax/data/synthetic.py): random uint8 images
        synthetic_shape=(32, 32, 3),  # (H, W, C) of each image
        synthetic_examples=1024,      # images held in memory
        # dataset 'folder' (gan_jax/data/folder.py): your own images
        path='',                  # a directory (searched recursively) or a .zip
        channels=0,               # 1 (grayscale) or 3 (RGB); 0 = inferred from the images
        max_memory_gib=16.0,      # refuse a folder whose decoded images need more
    ))
    c.model = ml_collections.ConfigDict(dict(
        name='mlp',
        z_dim=2,
        g=ml_collections.ConfigDict(),  # Generator constructor arguments
        d=ml_collections.ConfigDict(),  # Discriminator constructor arguments
        compute_dtype='float32',         # training steps: 'float32' or 'bfloat16'
    ))
    c.loss = ml_collections.ConfigDict(dict(name='non_saturating'))
    # One weight per registered penalty (gp_weight, r1_gamma, r2_gamma, ...):
    # see regularizers.PENALTIES for each one's meaning and scaling.
    c.reg = ml_collections.ConfigDict(
        {p.key: p.default for p in regularizers.PENALTIES})
    # Lazy regularization (Karras et al. 2020, StyleGAN2 sec. 3.1; names as
    # stylegan2-ada's D_reg_interval / G_reg_interval): with an interval k > 1
    # the D penalties leave D's main loss and form an extra D update every k
    # steps, weighted by k; the path-length penalty forms an extra G update
    # every k steps. Adam's rate and betas are corrected by c = k / (k + 1).
    c.reg.d_reg_interval = 1
    c.reg.g_reg_interval = 1
    c.reg.pl_weight = 0.0     # path-length penalty weight (StyleGAN2: 2); 0 = off
    c.reg.pl_decay = 0.01     # its running mean's update rate
    c.reg.pl_batch_shrink = 2  # its batch is batch_size // pl_batch_shrink
    # WGAN (Arjovsky et al. 2017): clip every D parameter to [-c, c] after
    # each D update (their c: 0.01, with RMSProp 5e-5 and n_critic 5); 0 = off.
    c.reg.weight_clip = 0.0
    # Instance noise (Sønderby et al. 2017): D's adversarial terms see
    # x + instance_noise * N(0, I), real and fake alike; 0 = off.
    c.reg.instance_noise = 0.0
    c.augment = ml_collections.ConfigDict(dict(
        policy='',       # DiffAugment, e.g. 'color,translation,cutout'; '' = off
        # ADA (Karras et al. 2020, gan_jax/ada.py): every image D sees is
        # augmented with probability p, adapted toward E[sign D(real)] =
        # ada_target every ada_interval steps, fast enough for p to go 0 -> 1
        # in ada_kimg thousand images. ada_target 0 = off (StyleGAN2-ADA: 0.6).
        ada_target=0.0,
        ada_ops='bgc',   # groups: b(lit), g(eometric), c(olor)
        ada_interval=4,
        ada_kimg=500.0,
        ada_p=0.0,       # p at step 0
    ))
    c.n_critic = 1       # D updates per G update, each on a fresh real batch
    c.opt = ml_collections.ConfigDict(dict(
        g=_optimizer(1e-4, 0.5, 0.999),
        d=_optimizer(1e-4, 0.5, 0.999),
    ))
    c.ema = ml_collections.ConfigDict(dict(
        decay=0.999,     # generator EMA decay per step; 0 disables
        start_step=0,    # before this step the EMA copies the raw weights
        # StyleGAN2's form: a half-life in thousands of images (> 0 replaces
        # `decay`: beta = 0.5 ** (batch_size / (half_life_kimg * 1000))), with
        # an optional ramp-up that caps the half-life at rampup * images seen.
        half_life_kimg=0.0,
        rampup=0.0,
    ))
    c.evals = ml_collections.ConfigDict()  # evaluator name -> its arguments
    c.parallel = ml_collections.ConfigDict(dict(
        num_devices=0,            # devices on the 'data' mesh axis; 0 = all
    ))
    c.unroll_steps = 0      # unrolled GAN: G's loss looks k D updates ahead
    c.best_metric = ''      # e.g. 'fid/fid': also keep the best checkpoint by it
    c.best_mode = 'min'     # 'min' or 'max': which direction of best_metric wins
    c.nan_policy = 'stop'   # 'stop': end the run; 'skip': drop the update
    c.progress = True       # progress bar on stderr
    # Update steps per compiled call (a lax.scan): saves the per-step dispatch
    # of small models. Logging, checkpoints, samples and evaluations still
    # happen at their steps (a call ends at every step where one is due).
    c.steps_per_call = 1
    c.allow_config_change = False
    return c


def from_json_dict(saved: Dict[str, Any]) -> ml_collections.ConfigDict:
    """A saved config.json as a ConfigDict on top of default_config(), so
    that keys added to the schema after the run was saved get their defaults."""
    config = default_config()
    saved = {k: v for k, v in saved.items() if k != RUNTIME_KEY}

    def merge(target, values):
        for key, value in values.items():
            if isinstance(value, dict) and key in target and hasattr(target[key], 'items'):
                merge(target[key], value)
            else:
                target[key] = value

    with config.unlocked():
        merge(config, saved)
    return config


def flatten(config: Any, prefix: str = '') -> Dict[str, Any]:
    """{'a.b': value} for every leaf of a (nested) ConfigDict or dict."""
    out = {}
    items = config.items() if hasattr(config, 'items') else []
    for key, value in items:
        name = f'{prefix}{key}'
        if hasattr(value, 'items'):
            nested = flatten(value, name + '.')
            out.update(nested if nested else {name: {}})
        else:
            out[name] = value
    return out


def _is_free(name: str) -> bool:
    return any(name == f or name.startswith(f + '.') for f in FREE_FORM)


def validate(config: ml_collections.ConfigDict, *, device_count: int = 1) -> None:
    """Checks every key, type, range and name of `config`.

    Raises:
      ConfigError: one line naming the key, the bad value and the fix.
    """
    schema = flatten(default_config())
    given = flatten(config)
    errors: List[str] = []
    for name, value in given.items():
        if _is_free(name):
            continue
        if name not in schema:
            errors.append(f'unknown config key {name!r}; check its spelling '
                          f'against gan_jax/config.py:default_config')
            continue
        expected = schema[name]
        if isinstance(expected, bool):
            ok = isinstance(value, bool)
        elif isinstance(expected, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(expected, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(expected, str):
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            errors.append(f'config key {name!r} must be {type(expected).__name__}, '
                          f'got {value!r}')
    if errors:
        raise ConfigError(errors[0])

    def need(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    need(config.batch_size > 0,
         f'batch_size must be positive, got {config.batch_size}')
    need(config.batch_size % device_count == 0,
         f'batch_size {config.batch_size} must be divisible by the device count '
         f'{device_count}')
    need(config.num_steps >= 0, f'num_steps must be >= 0, got {config.num_steps}')
    need(config.n_critic >= 1, f'n_critic must be >= 1, got {config.n_critic}')
    for key in ('log_every', 'checkpoint_every', 'eval_every', 'sample_every'):
        need(config[key] >= 0, f'{key} must be >= 0 (0 = only at the end), '
                               f'got {config[key]}')
    need(config.log_every > 0, f'log_every must be positive, got {config.log_every}')
    need(config.keep_checkpoints >= 1,
         f'keep_checkpoints must be >= 1, got {config.keep_checkpoints}')
    need(config.parallel.num_devices >= 0,
         f'parallel.num_devices must be >= 0 (0 = all), got '
         f'{config.parallel.num_devices}')
    need(config.model.z_dim >= 1, f'model.z_dim must be >= 1, got {config.model.z_dim}')
    need(config.model.compute_dtype in COMPUTE_DTYPES,
         f'unknown model.compute_dtype {config.model.compute_dtype!r}; valid: '
         f'{", ".join(COMPUTE_DTYPES)}')
    for net in ('g', 'd'):
        opt = config.opt[net]
        need(opt.name in OPTIMIZERS,
             f'unknown opt.{net}.name {opt.name!r}; valid: {", ".join(OPTIMIZERS)}')
        need(opt.lr > 0, f'opt.{net}.lr must be > 0, got {opt.lr}')
        need(0 <= opt.b1 < 1 and 0 <= opt.b2 < 1,
             f'opt.{net}.b1 and b2 must lie in [0, 1), got {opt.b1}, {opt.b2}')
        need(opt.schedule in LR_SCHEDULES,
             f'unknown opt.{net}.schedule {opt.schedule!r}; valid: '
             f'{", ".join(LR_SCHEDULES)}')
        need(opt.schedule != 'linear' or opt.decay_steps > 0,
             f'opt.{net}.schedule=linear needs opt.{net}.decay_steps > 0, '
             f'got {opt.decay_steps}')
    need(0 <= config.ema.decay < 1,
         f'ema.decay must lie in [0, 1), got {config.ema.decay}')
    for penalty in regularizers.PENALTIES:
        message = penalty.error(config.reg[penalty.key])
        need(message is None, message)
    for key in ('d_reg_interval', 'g_reg_interval', 'pl_batch_shrink'):
        need(config.reg[key] >= 1, f'reg.{key} must be >= 1, got {config.reg[key]}')
    need(config.reg.instance_noise >= 0,
         f'reg.instance_noise must be >= 0 (0 = off), got {config.reg.instance_noise}')
    need(config.reg.weight_clip >= 0,
         f'reg.weight_clip must be >= 0 (0 = off), got {config.reg.weight_clip}')
    need(config.reg.pl_weight >= 0,
         f'reg.pl_weight must be >= 0, got {config.reg.pl_weight}')
    need(0 < config.reg.pl_decay <= 1,
         f'reg.pl_decay must lie in (0, 1], got {config.reg.pl_decay}')
    need(config.reg.pl_weight == 0 or config.batch_size // config.reg.pl_batch_shrink >= 1,
         f'batch_size {config.batch_size} // reg.pl_batch_shrink '
         f'{config.reg.pl_batch_shrink} leaves no sample for the path-length penalty')
    aug = config.augment
    need(0 <= aug.ada_target < 1, f'augment.ada_target must lie in [0, 1) (0 = off), '
                                  f'got {aug.ada_target}')
    need(not (aug.ada_target > 0 and aug.policy),
         'augment.policy (DiffAugment) and augment.ada_target (ADA) both augment '
         "what D sees: choose one (--config.augment.policy='' for ADA)")
    need(aug.ada_interval >= 1 and aug.ada_kimg > 0 and 0 <= aug.ada_p <= 1,
         f'augment.ada_interval must be >= 1, ada_kimg > 0 and ada_p in [0, 1], got '
         f'{aug.ada_interval}, {aug.ada_kimg}, {aug.ada_p}')
    if aug.ada_target > 0:
        from gan_jax import ada
        try:
            ada.multipliers_of(aug.ada_ops)
        except ValueError as e:
            raise ConfigError(f'augment.ada_ops: {e}') from None
    need(config.ema.half_life_kimg >= 0 and config.ema.rampup >= 0,
         f'ema.half_life_kimg and ema.rampup must be >= 0, got '
         f'{config.ema.half_life_kimg}, {config.ema.rampup}')
    need(config.steps_per_call >= 1,
         f'steps_per_call must be >= 1, got {config.steps_per_call}')
    if config.steps_per_call > 1:
        # A call ends at every event, so an interval that is not a multiple of
        # steps_per_call would quietly run most steps one call each.
        for key in ('log_every', 'checkpoint_every', 'eval_every', 'sample_every'):
            need(config[key] % config.steps_per_call == 0,
                 f'{key} = {config[key]} must be a multiple of steps_per_call = '
                 f'{config.steps_per_call} (0 = only at the end); change either')
    need(config.unroll_steps >= 0,
         f'unroll_steps must be >= 0, got {config.unroll_steps}')
    need(config.best_mode in ('min', 'max'),
         f"best_mode must be 'min' or 'max', got {config.best_mode!r}")
    need(not config.best_metric or config.best_metric.split('/')[0] in config.evals,
         f'best_metric {config.best_metric!r} must be EVALUATOR/METRIC with the '
         f'evaluator in config.evals ({", ".join(config.evals) or "empty"}), e.g. '
         "--config.best_metric=fid/fid")
    need(config.nan_policy in NAN_POLICIES,
         f'unknown nan_policy {config.nan_policy!r}; valid: {", ".join(NAN_POLICIES)}')
    pack = models.configured_pack(config)
    need(config.batch_size % pack == 0,
         f'batch_size {config.batch_size} must be divisible by model.d.pack {pack}')
    need(config.data.image_size >= 0,
         f'data.image_size must be >= 0 (0 = default), got {config.data.image_size}')
    need(config.data.stacked_source in ('digits', 'mnist'),
         f"data.stacked_source must be 'digits' or 'mnist', got "
         f'{config.data.stacked_source!r}')
    need(config.data.prefetch >= 0, f'data.prefetch must be >= 0, got {config.data.prefetch}')
    need(config.dataset in data.names(),
         f'unknown dataset {config.dataset!r}; valid datasets: {", ".join(data.names())}')
    if config.dataset == data.synthetic.NAME:
        message = data.synthetic.check(config.data)
        need(not message, message)
    if config.dataset == data.folder.NAME:
        message = data.folder.check(config.data)
        need(not message, message)
    try:
        from gan_jax import augment
        augment.parse_policy(config.augment.policy)
        losses.get(config.loss.name)
        models.get(config.model.name)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def changed_keys(saved: Dict[str, Any], config: ml_collections.ConfigDict) -> List[str]:
    """Keys whose value differs between a saved config.json and `config`,
    ignoring those in RESUMABLE_KEYS."""
    # Keys added to the schema after the run was saved take their defaults,
    # which is what the saved run computed with.
    old, new = flatten(from_json_dict(saved).to_dict()), flatten(config.to_dict())

    def resumable(name: str) -> bool:
        return any(name == k or name.startswith(k + '.') for k in RESUMABLE_KEYS)

    names = sorted(set(old) | set(new))
    return [n for n in names if not resumable(n) and _jsonable(old.get(n)) != _jsonable(new.get(n))]


def _jsonable(value: Any) -> Any:
    """Tuples and lists compare equal after a JSON round trip."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
