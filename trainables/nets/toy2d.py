"""toy2d: MLP generator and critic for 2-D Gaussian mixtures; the feature maps are the hidden widths."""

from __future__ import annotations

import torch
from torch import nn

from trainables.config import GanConfig

HIDDEN_LAYERS = 3


def _mlp(d_in: int, width: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(HIDDEN_LAYERS):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.Linear(width, d_out))


class Pack(nn.Module):
    """PacGAN (Lin et al. 2018): consecutive groups of `pack` samples become one input, (B, 2) -> (B/pack, 2*pack),
    so the critic judges samples jointly and sees a lack of diversity inside a group."""

    def __init__(self, pack: int) -> None:
        super().__init__()
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % self.pack:
            raise ValueError(f"a packing critic needs a multiple of PACK {self.pack} samples, got {x.shape[0]}")
        return x.reshape(x.shape[0] // self.pack, -1)


def build_generator(cfg: GanConfig) -> nn.Module:
    """(B, Z) -> (B, 2); a linear output, since the mixtures are not bounded to [-1, 1]."""
    return _mlp(cfg.latent_dim, cfg.gen_feature_maps, 2)


def build_critic(cfg: GanConfig) -> nn.Module:
    """(B, 2) -> (B, 1); with PACK > 1, (B, 2) -> (B / PACK, 1), one score per group of PACK samples."""
    mlp = _mlp(2 * cfg.pack, cfg.disc_feature_maps, 1)
    return mlp if cfg.pack == 1 else nn.Sequential(Pack(cfg.pack), *mlp)
