"""The frozen training config, and the one way to build it from defaults, presets and user overrides.

Field names are the seed project's config names in lower case; files (config.json, --config, --set) use
the UPPER_CASE names, matched case-insensitively.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError
from trainables.integrated_schedules import problems as integrated_problems
from trainables.schedules import CRITIC_SCHEDULES


@dataclasses.dataclass(frozen=True)
class GanConfig:
    model: str  # registry name: wgan_small, wgan_large, toy2d, dcgan, cgan
    data: str = "sprites"  # dataset spec: sprites, digits, stacked_digits, ring8, grid25, folder:PATH
    dataset_size: int | None = None  # images generated for synthetic data; None = the dataset's default
    image_size: int = 64  # side in pixels, 16..128 (ignored by toy2d); each model says which sides it builds
    channels: int = 3  # image channels the networks produce and read
    latent_dim: int = 128  # generator input size
    num_classes: int | None = None  # classes a conditional model (cgan) embeds; None = the dataset's own count
    gen_feature_maps: int = 64  # generator width (MLP hidden units for toy2d)
    disc_feature_maps: int = 64  # critic width; guide 001: grow G and D together
    batch_size: int = 64
    num_epochs: int = 2000  # one epoch = one pass over the dataset
    learning_rate_g: float = 1e-4
    learning_rate_d: float = 1e-4
    optimizer: str = "adam"  # "adam" or "rmsprop" (guide 003's camel GAN)
    beta1: float = 0.0  # Adam betas (0, 0.9): the WGAN-GP paper's, which the guides insist on
    beta2: float = 0.9  # RMSprop reads it as its smoothing constant (Keras's rho 0.9)
    n_critic: int = 5  # critic steps per generator step
    critic_schedule: str = "seed"  # "seed": G every N_CRITIC batches; "standard": after N_CRITIC critic steps
    lambda_gp: float = 10.0  # gradient-penalty weight (WGAN models)
    lr_cooldown: float = 0.0  # share of the last epochs trained at a quarter of both rates; 0 = constant rates
    d_train_ratio: int = 1  # the critic/discriminator trains every N batches (guide 004's D_TRAIN_RATIO)
    label_smoothing: float = 0.0  # BCE: real targets are 1 - this (guide 004: 0.1)
    noise_std: float = 0.0  # BCE: instance noise on the discriminator's real and fake inputs (guide 004: 0.05)
    adaptive_lr_d: bool = False  # BCE: guide 004's project steers LR_D by D(real) and D(fake) each epoch
    d_dropout: float = 0.0  # BCE: dropout after each discriminator conv (guide 003's camel GAN: 0.4)
    spectral_norm: bool = False  # BCE: spectrally normalised discriminator layers (guide 004 Architecture)
    pack: int = 1  # PacGAN: the critic scores PACK samples at once (toy2d); 1 = one at a time
    ema_decay: float | None = None  # EMA of the generator used for samples; None = sample the raw generator
    horizontal_flip_prob: float = 0.5
    rotation_degrees: float = 10.0  # uniform in [-d, d], background-coloured fill
    color_jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.02)  # brightness, contrast, sat, hue
    seed: int = 42  # seeds weights, data order, noise and augmentation
    num_samples: int = 64  # fixed-noise samples for the grid and the per-epoch sample metrics
    sample_every: int = 1  # epochs between sample grids (the last epoch always gets one)
    checkpoint_every: int = 10  # epochs between checkpoints (the last epoch always gets one)
    quality_every: int = 5  # epochs between quality metrics (the last epoch always gets them); 0 = never
    quality_samples: int | None = None  # generated samples per quality evaluation; None = the dataset's default
    # The integrated system (guide 002, model `integrated`; trainables.integrated_schedules); other models ignore them.
    learning_rate_nca: float = 2e-5  # the NCA's rate (guide 002's "after"; its "before": 2e-4)
    learning_rate_t: float = 1e-4  # the transformer critic's rate
    d_schedule: str = "code"  # discriminator steps per batch: "code" (every batch, every other from epoch 50), "text"
    real_noise_std: float = 0.0  # N(0, s) added to the real images the discriminator sees (guide 002's text: 0.05)
    feature_matching: float = 10.0  # weight of the discriminator-feature matching term in G's and the NCA's loss
    grad_clip: float = 1.0  # gradient norms of every network clipped to this; 0 = no clipping
    t_schedule: str = "cycle"  # the transformer's phases: "cycle" (the code's), "isolation" (the text's)
    t_integration: float = 0.0  # weight of the transformer's score in G's loss once integrated ("isolation" only)
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU), "bf16" or "off"
    channels_last: str = "auto"  # "auto" (on for CUDA), "on" or "off"

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ConfigError(problem)

    def to_dict(self) -> dict[str, Any]:
        """UPPER_CASE keys, JSON-friendly values: what config.json, checkpoints and trackers hold."""
        return {f.name.upper(): _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> GanConfig:
        return dataclasses.replace(self, **changes)

    def fields(self) -> dict[str, Any]:
        """Field name -> value, as a sweep's base config holds them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


FIELDS = {f.name: f for f in dataclasses.fields(GanConfig)}
OPTIMIZERS = ("adam", "rmsprop")
# Keys that change the networks' shapes: a resumed run cannot change them.
ARCHITECTURE_KEYS = ("model", "image_size", "channels", "latent_dim", "gen_feature_maps", "disc_feature_maps",
                     "num_classes", "spectral_norm", "pack")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _problems(cfg: GanConfig) -> list[str]:
    problems = []
    positive = ("latent_dim", "gen_feature_maps", "disc_feature_maps", "batch_size", "num_epochs", "n_critic",
                "num_samples", "sample_every", "checkpoint_every", "channels", "d_train_ratio", "pack")
    problems += [f"{k.upper()} must be a positive integer, got {getattr(cfg, k)!r}"
                 for k in positive if getattr(cfg, k) < 1]
    problems += [f"{k.upper()} must be positive, got {getattr(cfg, k)!r}"
                 for k in ("learning_rate_g", "learning_rate_d") if not getattr(cfg, k) > 0]
    if cfg.pack > 1 and cfg.batch_size % cfg.pack:
        problems.append(f"BATCH_SIZE {cfg.batch_size} must be a multiple of PACK {cfg.pack}: the critic scores "
                        f"groups of PACK samples")
    size = cfg.image_size
    if not (16 <= size <= 128 and size % 4 == 0):
        problems.append(f"IMAGE_SIZE must be a multiple of 4 from 16 to 128, got {size!r}")
    if not 0.0 <= cfg.lr_cooldown < 1.0:
        problems.append(f"LR_COOLDOWN must be a share of the epochs in [0, 1), got {cfg.lr_cooldown!r}")
    if cfg.lambda_gp < 0:
        problems.append(f"LAMBDA_GP must be zero or positive, got {cfg.lambda_gp!r}")
    if cfg.ema_decay is not None and not 0.0 <= cfg.ema_decay < 1.0:
        problems.append(f"EMA_DECAY must be in [0, 1) or null, got {cfg.ema_decay!r}")
    if not 0.0 <= cfg.horizontal_flip_prob <= 1.0:
        problems.append(f"HORIZONTAL_FLIP_PROB must be in [0, 1], got {cfg.horizontal_flip_prob!r}")
    if not 0.0 <= cfg.rotation_degrees <= 180.0:
        problems.append(f"ROTATION_DEGREES must be in [0, 180], got {cfg.rotation_degrees!r}")
    if len(cfg.color_jitter) != 4 or min(cfg.color_jitter) < 0:
        problems.append(f"COLOR_JITTER must be four non-negative strengths, got {cfg.color_jitter!r}")
    if cfg.critic_schedule not in CRITIC_SCHEDULES:
        problems.append(f"CRITIC_SCHEDULE must be one of {', '.join(CRITIC_SCHEDULES)}, got {cfg.critic_schedule!r}")
    if cfg.optimizer not in OPTIMIZERS:
        problems.append(f"OPTIMIZER must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    for key, high in (("label_smoothing", 0.5), ("noise_std", 1.0), ("d_dropout", 0.9)):
        if not 0.0 <= getattr(cfg, key) <= high:
            problems.append(f"{key.upper()} must be in [0, {high}], got {getattr(cfg, key)!r}")
    if cfg.amp not in ("auto", "bf16", "off"):
        problems.append(f"AMP must be 'auto', 'bf16' or 'off', got {cfg.amp!r}")
    if cfg.channels_last not in ("auto", "on", "off"):
        problems.append(f"CHANNELS_LAST must be 'auto', 'on' or 'off', got {cfg.channels_last!r}")
    if cfg.quality_every < 0:
        problems.append(f"QUALITY_EVERY must be zero (never) or a positive number of epochs, got {cfg.quality_every!r}")
    if cfg.quality_samples is not None and cfg.quality_samples < 10:
        problems.append(f"QUALITY_SAMPLES must be at least 10 or null, got {cfg.quality_samples!r}")
    if cfg.num_classes is not None and cfg.num_classes < 2:
        problems.append(f"NUM_CLASSES must be at least 2 or null, got {cfg.num_classes!r}")
    problems += integrated_problems(cfg)
    if cfg.dataset_size is not None and cfg.dataset_size < 1:
        problems.append(f"DATASET_SIZE must be a positive integer or null, got {cfg.dataset_size!r}")
    return problems


def field_name(key: str) -> str:
    """Map a user's key (any case) to a field name, or say which keys exist."""
    name = key.strip().lower()
    if name not in FIELDS:
        valid = ", ".join(sorted(k.upper() for k in FIELDS))
        raise ConfigError(f"unknown config key {key!r}; valid keys: {valid}")
    return name


def coerce(name: str, value: Any) -> Any:
    """Convert a value (from JSON, a config file or a --set string) to the field's type."""
    kind = str(FIELDS[name].type)
    try:
        if isinstance(value, str):
            value = _parse_string(value)
        if value is None:
            if "None" not in kind:
                raise ValueError
            return None
        if kind.startswith("tuple"):
            return _coerce_tuple(value)
        if kind.startswith("bool"):
            return _coerce_bool(value)
        if kind.startswith("int"):
            return _coerce_int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name.upper()} expects {kind.replace(' | None', ' or null')}, got {value!r}") from None


def _parse_string(text: str) -> Any:
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError
    return int(value)


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError


def _coerce_tuple(value: Any) -> tuple[float, ...]:
    values = tuple(float(v) for v in value)
    if len(values) != 4 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError
    return values


def overrides_from(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Validate user keys and values into field-name overrides."""
    return {field_name(k): coerce(field_name(k), v) for k, v in mapping.items()}


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse `--set KEY=VALUE` strings."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return overrides_from(pairs)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config file: JSON (gantune's config.json) or the seed style `config.py` of UPPER_CASE constants."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix == ".py":
        return overrides_from(_constants_of(text, path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err.msg} at line {err.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object, got {type(data).__name__}")
    return overrides_from(data)


def _constants_of(text: str, path: Path) -> dict[str, Any]:
    """UPPER_CASE literal assignments of a Python config file, read with ast (never executed)."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise ConfigError(f"config file {path} is not valid Python: line {err.lineno}") from None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and name.lower() in FIELDS:
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    raise ConfigError(f"{path}: {name} must be a literal value") from None
    return found


def build_config(base: Mapping[str, Any], *layers: Mapping[str, Any]) -> GanConfig:
    """Apply override layers (field-name dicts) in order on a base dict; later layers win."""
    merged = dict(base)
    for layer in layers:
        merged.update(layer)
    return GanConfig(**merged)


def write_config(cfg: GanConfig, path: Path) -> None:
    path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
