"""Search spaces as data: a parameter -> the range or choices a search may try.

A parameter is a config field (`n_critic`) or a derived knob that sets fields from one number (`lr_ratio`:
LEARNING_RATE_G as a fraction of LEARNING_RATE_D; `width`: both feature maps as a multiple of the base
config's; `augment`: one strength for flips, rotation and colour jitter). `suggest` reads raw values from an
Optuna trial; `resolve` turns raw values into config fields on a base config; `seed_point` is the base config
expressed in the space's coordinates, the first trial every sweep runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from trainables.errors import ConfigError
from trainables.vocabulary import BCE, WGAN


@dataclasses.dataclass(frozen=True)
class Param:
    kind: str  # "float", "int" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choices
        return isinstance(value, int | float) and self.low <= value <= self.high

    def describe(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(repr, self.choices)) + "}"
        return f"{self.kind} [{self.low:g}, {self.high:g}]{' log' if self.log else ''}"


def log_float(low: float, high: float) -> Param:
    return Param("float", low, high, log=True)


def uniform(low: float, high: float) -> Param:
    return Param("float", low, high)


def integer(low: int, high: int) -> Param:
    return Param("int", low, high)


def choice(*options: Any) -> Param:
    return Param("choice", choices=tuple(options))


# Fields that follow another (guide 001: grow the generator and the critic together).
TIED = MappingProxyType({"disc_feature_maps": "gen_feature_maps"})


def tie(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values with every tied field set from the field it follows."""
    return {**values, **{f: values[src] for f, src in TIED.items() if src in values}}


@dataclasses.dataclass(frozen=True)
class Derived:
    """A knob that is not a config field: the fields it sets, and its value in a given config."""

    sets: Callable[[float, Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]  # (value, base, merged)
    value_in: Callable[[Mapping[str, Any]], Any]  # the knob's value that reproduces a config
    meaning: str


def _augment(strength: float) -> dict[str, Any]:
    s = float(strength)
    return {"horizontal_flip_prob": 0.5 if s > 0 else 0.0, "rotation_degrees": 20.0 * s,
            "color_jitter": (0.2 * s, 0.2 * s, 0.2 * s, 0.04 * s)}


DERIVED = MappingProxyType({
    "lr_ratio": Derived(lambda v, base, merged: {"learning_rate_g": merged["learning_rate_d"] * v},
                        lambda cfg: cfg["learning_rate_g"] / cfg["learning_rate_d"],
                        "LEARNING_RATE_G / LEARNING_RATE_D (1 = equal rates, 0.1 = guide 001's TTUR)"),
    "width": Derived(lambda v, base, merged: {"gen_feature_maps": max(4, round(base["gen_feature_maps"] * v))},
                     lambda cfg: 1.0,
                     "GEN_FEATURE_MAPS and DISC_FEATURE_MAPS together, as a multiple of the base config's"),
    "augment": Derived(lambda v, base, merged: _augment(v), lambda cfg: cfg["rotation_degrees"] / 20.0,
                       "augmentation strength: flip 0.5 if > 0, rotation 20*s degrees, colour jitter 0.2*s"),
})
# Never searched: guides 000/001 insist on Adam betas (0, 0.9); the model and data define the sweep.
FIXED = ("beta1", "beta2", "model", "data", "num_epochs", "seed")


def suggest(trial: Any, space: Mapping[str, Param]) -> dict[str, Any]:
    """Raw values (parameter -> value) from an optuna.Trial."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "float":
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif p.kind == "int":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high))
        else:
            out[name] = trial.suggest_categorical(name, list(p.choices))
    return out


def resolve(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Config fields (field name -> value) of a base config with raw search values applied, ties included."""
    merged = {**base, **{k: v for k, v in values.items() if k not in DERIVED}}
    for name, value in values.items():
        if name in DERIVED:
            merged.update(DERIVED[name].sets(value, base, merged))
    return tie(merged)


def seed_point(space: Mapping[str, Param], base: Mapping[str, Any]) -> dict[str, Any]:
    """The base config in the space's coordinates; parameters whose base value lies outside are left to Optuna."""
    point = {}
    for name, p in space.items():
        value = DERIVED[name].value_in(base) if name in DERIVED else base.get(name)
        if p.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if p.contains(value):
            point[name] = value
    return point


class DefineByRun:
    """The space as Ray's OptunaSearch define-by-run function (picklable, so the searcher's state saves)."""

    def __init__(self, space: Mapping[str, Param]) -> None:
        self.space = dict(space)

    def __call__(self, trial: Any) -> None:
        suggest(trial, self.space)  # Ray captures the suggested values as the trial's config


# ----- per-model spaces ----------------------------------------------------------------------------------------
# The WGAN-GP image models: guide 001's parameters around its directions (LAMBDA_GP 5-20, N_CRITIC 2-10, TTUR
# down to 1/10 and equal rates, batch 32/64, EMA 0.995-0.999, latent 64-256, G and D widths together).
WGAN_SPACE = MappingProxyType({
    "lambda_gp": log_float(2.5, 40.0),
    "n_critic": integer(1, 7),
    "learning_rate_d": log_float(2e-5, 5e-4),
    "lr_ratio": log_float(0.05, 2.0),
    "batch_size": choice(32, 64, 128),
    "ema_decay": choice(None, 0.99, 0.995, 0.999),
    "latent_dim": choice(64, 128, 256),
    "width": choice(0.5, 1.0, 1.5, 2.0),
    "augment": uniform(0.0, 1.0),
})

# toy2d: the WGAN-GP knobs of the guides, plus the MLP's width and latent size (G and D widths together), and the
# end-of-run cooldown (a mixture's last-epoch high-quality share swings 20+ points at constant rates).
TOY2D_SPACE = MappingProxyType({
    "learning_rate_g": log_float(1e-4, 3e-3),
    "learning_rate_d": log_float(1e-4, 3e-3),
    "n_critic": integer(1, 8),
    "lambda_gp": log_float(0.1, 10.0),
    "batch_size": choice(64, 128, 256),
    "gen_feature_maps": choice(128, 256, 512),
    "latent_dim": choice(2, 8, 32),
    "ema_decay": choice(None, 0.9, 0.99),
    "lr_cooldown": choice(0.0, 0.1, 0.2, 0.4),
})

# The BCE models: guide 004's knobs (LR_D below LR_G, label smoothing 0.1-0.2, instance noise 0.05-0.1,
# D_TRAIN_RATIO 1-2) and guide 003's batch size.
BCE_SPACE = MappingProxyType({
    "learning_rate_d": log_float(2e-5, 1e-3),
    "learning_rate_g": log_float(5e-5, 1e-3),
    "label_smoothing": uniform(0.0, 0.3),
    "noise_std": uniform(0.0, 0.2),
    "d_train_ratio": integer(1, 3),
    "batch_size": choice(32, 64, 128),
})

# Guide 002's integrated system: the knobs of its fixes, around its "before" (all rates 2e-4) and "after" (G 5e-5,
# NCA 2e-5, D 2e-4): the three rates, the discriminator's step schedule, its regularisation (real labels 0.8-1.0,
# noise on reals up to 0.1, penalty 0-20, dropout 0-0.5), and the transformer's schedule and integration weight.
INTEGRATED_SPACE = MappingProxyType({
    "learning_rate_g": log_float(1e-5, 3e-4),
    "learning_rate_d": log_float(5e-5, 4e-4),
    "learning_rate_nca": log_float(5e-6, 3e-4),
    "d_schedule": choice("code", "text"),
    "label_smoothing": uniform(0.0, 0.2),
    "real_noise_std": uniform(0.0, 0.1),
    "lambda_gp": choice(0.0, 5.0, 10.0, 20.0),
    "d_dropout": uniform(0.0, 0.5),
    "t_schedule": choice("cycle", "isolation"),
    "t_integration": uniform(0.0, 0.5),
})

# What `gantune sweep MODEL` searches by default, per registered model.
MODEL_SPACES = MappingProxyType({"wgan_small": WGAN_SPACE, "wgan_large": WGAN_SPACE, "toy2d": TOY2D_SPACE,
                                 "dcgan": BCE_SPACE, "cgan": BCE_SPACE, "integrated": INTEGRATED_SPACE})


def model_space(model: str) -> dict[str, Param]:
    """The default search space of a registered model."""
    if model not in MODEL_SPACES:
        raise ConfigError(f"no search space for model {model!r}; spaces exist for: {', '.join(sorted(MODEL_SPACES))}")
    return dict(MODEL_SPACES[model])


# A user's own trainer (`gantune sweep --train-cmd`): the guides' knobs under the seed configs' UPPER_CASE names;
# a sweep searches those the user's config has. WGAN-GP: guide 001's ranges (LR_G as a rate of its own, since the
# user's config holds no ratio); BCE: guide 004's.
USER_SPACES = MappingProxyType({
    WGAN: MappingProxyType({
        "LEARNING_RATE_G": log_float(1e-5, 1e-3),
        "LEARNING_RATE_D": log_float(2e-5, 5e-4),
        "N_CRITIC": integer(1, 7),
        "LAMBDA_GP": log_float(2.5, 40.0),
        "BATCH_SIZE": choice(32, 64, 128),
        "EMA_DECAY": choice(0.99, 0.995, 0.999),
    }),
    BCE: MappingProxyType({k.upper(): v for k, v in BCE_SPACE.items()}),
})

# ----- spaces from files ---------------------------------------------------------------------------------------
def parse_space(data: Mapping[str, Any], fields: Mapping[str, Any], source: str) -> dict[str, Param]:
    """A space from a mapping: NAME -> [choices] | {low, high, log?, type?} | {choices: [...]} | a fixed value."""
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"space file {source} must map parameter names to ranges or choices")
    space = {}
    for key, spec in data.items():
        name = str(key).strip().lower()
        if name in FIXED:
            raise ConfigError(f"space file {source}: {key} cannot be searched (guides 000/001 fix the Adam betas; "
                              f"model, data, epochs and seed are the sweep's own options)")
        if name not in fields and name not in DERIVED:
            raise ConfigError(f"space file {source}: unknown parameter {key!r}; use a config key or one of "
                              f"{', '.join(sorted(d.upper() for d in DERIVED))}")
        space[name] = _param(spec, key, source)
    return space


def _param(spec: Any, key: str, source: str) -> Param:
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError(f"space file {source}: {key} has an empty list of choices")
        return choice(*spec)
    if not isinstance(spec, Mapping):
        return choice(spec)
    if "choices" in spec:
        return _param(list(spec["choices"]), key, source)
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"space file {source}: {key} needs numeric low and high, or choices; "
                          f"got {dict(spec)}") from None
    kind, log = str(spec.get("type", "float")), bool(spec.get("log", False))
    if kind not in ("float", "int") or not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"space file {source}: {key} must have type float or int and low <= high; got {dict(spec)}")
    if log and low <= 0:
        raise ConfigError(f"space file {source}: {key} is log-scaled, so low must be positive; got {low:g}")
    if kind == "int":
        return Param("int", int(low), int(high), log=log)
    return Param("float", low, high, log=log)

