"""WGAN_small: the seed project's DCGAN-style WGAN-GP networks, scaled by image size and feature maps.

At 64x64, latent 128 and 64 feature maps: generator 3,806,080 parameters, critic 2,878,464.
"""

from __future__ import annotations

from torch import nn

from trainables.config import GanConfig
from trainables.nets.layers import num_stages


def build_generator(cfg: GanConfig) -> nn.Module:
    """ConvTranspose stack: latent (B, Z, 1, 1) -> 4x4 -> ... -> (B, C, S, S), BatchNorm+ReLU, Tanh out."""
    n = num_stages(cfg.image_size)
    widths = [cfg.gen_feature_maps * 2 ** (n - 1 - i) for i in range(n)]  # 512, 256, 128, 64 at 64x64
    layers: list[nn.Module] = [nn.Unflatten(1, (cfg.latent_dim, 1, 1)),
                               nn.ConvTranspose2d(cfg.latent_dim, widths[0], 4, 1, 0, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(widths[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def build_critic(cfg: GanConfig) -> nn.Module:
    """Stride-2 conv stack to 4x4, LayerNorm over [C,H,W] on all but the first, LeakyReLU 0.2, no sigmoid."""
    n = num_stages(cfg.image_size)
    widths = [cfg.disc_feature_maps * 2 ** i for i in range(n)]  # 64, 128, 256, 512 at 64x64
    size = cfg.image_size // 2
    layers: list[nn.Module] = [nn.Conv2d(cfg.channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for c_in, c_out in zip(widths, widths[1:]):
        size //= 2
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.LayerNorm([c_out, size, size]),
                   nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), nn.Flatten()]  # (B, 1)
    return nn.Sequential(*layers)
