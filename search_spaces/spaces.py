"""Search spaces as data: a config field -> the range or choices a search may try.

A space is a mapping of field names to `Param`s; `suggest` reads one config from an Optuna trial.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Param:
    kind: str  # "float", "int" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()


def log_float(low: float, high: float) -> Param:
    return Param("float", low, high, log=True)


def integer(low: int, high: int) -> Param:
    return Param("int", low, high)


def choice(*options: Any) -> Param:
    return Param("choice", choices=tuple(options))


# Fields that follow another (guide 001: grow the generator and the critic together).
TIED = MappingProxyType({"disc_feature_maps": "gen_feature_maps"})


def tie(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values with every tied field set from the field it follows."""
    return {**values, **{f: values[src] for f, src in TIED.items() if src in values}}


def suggest(trial: Any, space: Mapping[str, Param]) -> dict[str, Any]:
    """One config (field name -> value) from an optuna.Trial, tied fields included."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "float":
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif p.kind == "int":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high))
        else:
            out[name] = trial.suggest_categorical(name, list(p.choices))
    return tie(out)


# toy2d: the WGAN-GP knobs of the guides, plus the MLP's width and latent size (G and D widths together).
TOY2D_SPACE = MappingProxyType({
    "learning_rate_g": log_float(1e-4, 3e-3),
    "learning_rate_d": log_float(1e-4, 3e-3),
    "n_critic": integer(1, 8),
    "lambda_gp": log_float(0.1, 10.0),
    "batch_size": choice(64, 128, 256),
    "gen_feature_maps": choice(128, 256, 512),
    "latent_dim": choice(2, 8, 32),
    "ema_decay": choice(None, 0.9, 0.99),
})
