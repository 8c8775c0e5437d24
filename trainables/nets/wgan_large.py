"""WGAN_large: Upsample+Conv residual generator with self-attention, spectrally normalised residual critic.

At 64x64, latent 128 and 96 feature maps: generator 8,559,961 parameters, critic 21,231,481.
"""

from __future__ import annotations

from torch import nn

from trainables.config import GanConfig
from trainables.nets.layers import CriticResBlock, GenResBlock, SelfAttention, num_stages, sn_conv


def build_generator(cfg: GanConfig) -> nn.Module:
    """latent -> 4x4 projection -> stages of (nearest x2, conv3x3, BN, ReLU, res block) -> attention ->
    nearest x2, conv3x3 to C, Tanh. Upsample+Conv instead of ConvTranspose: no checkerboard (guide 001, 4.3)."""
    n = num_stages(cfg.image_size) - 1  # the last doubling is the output layer
    widths = [cfg.gen_feature_maps * 2 ** (n - i) for i in range(n + 1)]  # 768, 384, 192, 96 at 64x64
    layers: list[nn.Module] = [nn.Unflatten(1, (cfg.latent_dim, 1, 1)),
                               nn.ConvTranspose2d(cfg.latent_dim, widths[0], 4, 1, 0, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(True), GenResBlock(c_out)]
    layers += [SelfAttention(widths[-1]), nn.Upsample(scale_factor=2, mode="nearest"),
               nn.Conv2d(widths[-1], cfg.channels, 3, 1, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def build_critic(cfg: GanConfig) -> nn.Module:
    """Stride-2 conv to S/2, res block, attention, then stride-2 stages (LayerNorm + res block) to 4x4,
    then a 4x4 conv to one score. Spectral norm on every conv but attention's."""
    n = num_stages(cfg.image_size) - 1
    widths = [cfg.disc_feature_maps * 2 ** i for i in range(n + 1)]  # 96, 192, 384, 768 at 64x64
    size = cfg.image_size // 2
    layers: list[nn.Module] = [sn_conv(cfg.channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True),
                               CriticResBlock(widths[0], size), SelfAttention(widths[0])]
    for c_in, c_out in zip(widths, widths[1:]):
        size //= 2
        layers += [sn_conv(c_in, c_out, 4, 2, 1), nn.LayerNorm([c_out, size, size]), nn.LeakyReLU(0.2, True),
                   CriticResBlock(c_out, size)]
    layers += [sn_conv(widths[-1], 1, 4, 1, 0), nn.Flatten()]  # (B, 1)
    return nn.Sequential(*layers)
