"""toy2d: MLP generator and critic for 2-D Gaussian mixtures; the feature maps are the hidden widths."""

from __future__ import annotations

from torch import nn

from trainables.config import GanConfig

HIDDEN_LAYERS = 3


def _mlp(d_in: int, width: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(HIDDEN_LAYERS):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.Linear(width, d_out))


def build_generator(cfg: GanConfig) -> nn.Module:
    """(B, Z) -> (B, 2); a linear output, since the mixtures are not bounded to [-1, 1]."""
    return _mlp(cfg.latent_dim, cfg.gen_feature_maps, 2)


def build_critic(cfg: GanConfig) -> nn.Module:
    """(B, 2) -> (B, 1)."""
    return _mlp(2, cfg.disc_feature_maps, 1)
