"""Optimisers by name: how each is built from a config, and how a config's rates are put back on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from trainables.config import GanConfig

KERAS_EPSILON = 1e-7  # Keras's RMSprop epsilon (guide 003's camel GAN)


def _adam(params: Iterable[torch.nn.Parameter], lr: float, cfg: GanConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr, (cfg.beta1, cfg.beta2))


def _rmsprop(params: Iterable[torch.nn.Parameter], lr: float, cfg: GanConfig) -> torch.optim.Optimizer:
    """Keras's RMSprop: smoothing rho (BETA2, 0.9), epsilon 1e-7, no momentum."""
    return torch.optim.RMSprop(params, lr, alpha=cfg.beta2, eps=KERAS_EPSILON)


OPTIMIZER_BUILDERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": _adam, "rmsprop": _rmsprop}


def build(params: Iterable[torch.nn.Parameter], lr: float, cfg: GanConfig) -> torch.optim.Optimizer:
    return OPTIMIZER_BUILDERS[cfg.optimizer](params, lr, cfg)


def set_rates(opt: torch.optim.Optimizer, lr: float, cfg: GanConfig) -> None:
    """The config's learning rate and betas (Adam) or smoothing (RMSprop) on every parameter group."""
    for group in opt.param_groups:
        group["lr"] = lr
        if "betas" in group:
            group["betas"] = (cfg.beta1, cfg.beta2)
        if "alpha" in group:
            group["alpha"] = cfg.beta2
