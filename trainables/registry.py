"""The model registry: a name maps to a frozen spec holding its networks, objective, seed config and presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from search_spaces import defaults
from search_spaces.spaces import TOY2D_SPACE, WGAN_SPACE, Param
from trainables.config import GanConfig
from trainables.errors import ConfigError
from trainables.losses import WganGp
from trainables.nets import toy2d, wgan_large, wgan_small


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build_generator: Callable[[GanConfig], nn.Module]
    build_critic: Callable[[GanConfig], nn.Module]
    objective: Callable[[GanConfig], Any]  # config -> loss object with critic_terms / generator_loss
    defaults: Mapping[str, Any]  # the seed config, field name -> value
    presets: Mapping[str, Mapping[str, Any]]  # preset name -> overrides on the defaults
    data_kind: str  # "image" or "points": which datasets it trains on
    space: Mapping[str, Param]  # what `gantune sweep` searches by default


def _wgan_gp(cfg: GanConfig) -> WganGp:
    return WganGp(cfg.lambda_gp)


_MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (
        ModelSpec("wgan_small", wgan_small.build_generator, wgan_small.build_critic, _wgan_gp,
                  defaults.WGAN_SMALL, defaults.PRESETS["wgan_small"], "image", WGAN_SPACE),
        ModelSpec("wgan_large", wgan_large.build_generator, wgan_large.build_critic, _wgan_gp,
                  defaults.WGAN_LARGE, defaults.PRESETS["wgan_large"], "image", WGAN_SPACE),
        ModelSpec("toy2d", toy2d.build_generator, toy2d.build_critic, _wgan_gp,
                  defaults.TOY2D, defaults.PRESETS["toy2d"], "points", TOY2D_SPACE),
    )
}


def model_names() -> list[str]:
    return sorted(_MODELS)


def get_model(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(model_names())}")
    return _MODELS[name]


def preset_overrides(spec: ModelSpec, presets: str) -> dict[str, Any]:
    """Overrides of one or more comma-separated presets, applied left to right (e.g. 'cpu,postmortem')."""
    merged: dict[str, Any] = {}
    for name in [p.strip() for p in presets.split(",") if p.strip()]:
        if name not in spec.presets:
            valid = ", ".join(sorted(spec.presets))
            raise ConfigError(f"unknown preset {name!r} for {spec.name}; valid presets: {valid}")
        merged.update(spec.presets[name])
    return merged
