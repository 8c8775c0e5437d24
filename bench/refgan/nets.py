"""Tiny generators and critics: MLPs for 2-D data, small convnets for 16x16 images."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _norm(kind: str, width: int, image: bool) -> list[nn.Module]:
    if kind == "layer":
        return [nn.GroupNorm(1, width) if image else nn.LayerNorm(width)]
    if kind == "batch":
        return [nn.BatchNorm2d(width) if image else nn.BatchNorm1d(width)]
    return []


def _critic_block(layer: nn.Module, width: int, kind: str, dropout: float, image: bool) -> list[nn.Module]:
    layers = [spectral_norm(layer) if kind == "spectral" else layer, *_norm(kind, width, image)]
    layers.append(nn.LeakyReLU(0.2))
    return layers + ([nn.Dropout(dropout)] if kind == "dropout" else [])


def mlp_generator(z_dim: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(z_dim, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 2),
    )


def mlp_critic(width: int, kind: str, dropout: float) -> nn.Module:
    layers = _critic_block(nn.Linear(2, width), width, "spectral" if kind == "spectral" else "none", dropout, False)
    for _ in range(2):
        layers += _critic_block(nn.Linear(width, width), width, kind, dropout, False)
    last = nn.Linear(width, 1)
    return nn.Sequential(*layers, spectral_norm(last) if kind == "spectral" else last)


def conv_generator(z_dim: int, width: int) -> nn.Module:
    c = width // 2
    return nn.Sequential(
        nn.Linear(z_dim, c * 16),
        nn.ReLU(),
        nn.Unflatten(1, (c, 4, 4)),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(c, c // 2, 3, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(c // 2, c // 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c // 4, 3, 3, padding=1),
        nn.Tanh(),
    )


def conv_critic(width: int, kind: str, dropout: float) -> nn.Module:
    c = width // 4
    first = nn.Conv2d(3, c, 4, stride=2, padding=1)
    layers = _critic_block(first, c, "spectral" if kind == "spectral" else "none", dropout, True)
    layers += _critic_block(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), 2 * c, kind, dropout, True)
    last = nn.Linear(2 * c * 16, 1)
    return nn.Sequential(*layers, nn.Flatten(), spectral_norm(last) if kind == "spectral" else last)


def build(kind: str, cfg) -> tuple[nn.Module, nn.Module]:
    """(generator, critic) for data of `kind` ("2d" | "image")."""
    if kind == "image":
        return conv_generator(cfg.z_dim, cfg.g_width), conv_critic(cfg.d_width, cfg.d_norm, cfg.dropout)
    return mlp_generator(cfg.z_dim, cfg.g_width), mlp_critic(cfg.d_width, cfg.d_norm, cfg.dropout)
