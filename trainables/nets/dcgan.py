"""dcgan: the camel GAN of guide 003's notebook (the "Generative Deep Learning" book's GAN), in PyTorch.

28x28x1 inputs in [-1, 1]. Discriminator: four 5x5 convolutions of 64, 64, 128, 128 filters with strides 2, 2,
2, 1, ReLU and dropout 0.4 after each, no batch norm, then one dense logit (the sigmoid lives in the BCE loss).
Generator: dense to 7x7x64 with batch norm (Keras momentum 0.9 is PyTorch's 0.1) and ReLU, upsample + conv 128,
upsample + conv 64, transposed conv 64, transposed conv 1 with tanh, all 5x5. Weights start from N(0, 0.02) as
in the book. GEN_FEATURE_MAPS / DISC_FEATURE_MAPS (64) scale the widths; any side divisible by 4 builds.
"""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from trainables.config import GanConfig

KERNEL, PAD = 5, 2  # Keras "same" padding for a 5x5 kernel
BN_MOMENTUM = 0.1  # Keras momentum 0.9: running = 0.9 * running + 0.1 * batch


def _init(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def build_generator(cfg: GanConfig) -> nn.Module:
    g, start = cfg.gen_feature_maps, cfg.image_size // 4
    widths = (g, 2 * g, g, g)  # 64 -> 128, 64, 64 at the book's widths
    return _init(nn.Sequential(
        nn.Linear(cfg.latent_dim, widths[0] * start * start), nn.BatchNorm1d(widths[0] * start * start,
                                                                             momentum=BN_MOMENTUM),
        nn.ReLU(True), nn.Unflatten(1, (widths[0], start, start)),
        nn.Upsample(scale_factor=2), nn.Conv2d(widths[0], widths[1], KERNEL, padding=PAD),
        nn.BatchNorm2d(widths[1], momentum=BN_MOMENTUM), nn.ReLU(True),
        nn.Upsample(scale_factor=2), nn.Conv2d(widths[1], widths[2], KERNEL, padding=PAD),
        nn.BatchNorm2d(widths[2], momentum=BN_MOMENTUM), nn.ReLU(True),
        nn.ConvTranspose2d(widths[2], widths[3], KERNEL, padding=PAD), nn.BatchNorm2d(widths[3], momentum=BN_MOMENTUM),
        nn.ReLU(True),
        nn.ConvTranspose2d(widths[3], cfg.channels, KERNEL, padding=PAD), nn.Tanh(),
    ))


def build_critic(cfg: GanConfig) -> nn.Module:
    d = cfg.disc_feature_maps
    wrap = spectral_norm if cfg.spectral_norm else (lambda m: m)
    layers: list[nn.Module] = []
    size, c_in = cfg.image_size, cfg.channels
    for c_out, stride in ((d, 2), (d, 2), (2 * d, 2), (2 * d, 1)):
        layers += [wrap(nn.Conv2d(c_in, c_out, KERNEL, stride, PAD)), nn.ReLU(True)]
        if cfg.d_dropout > 0:
            layers.append(nn.Dropout(cfg.d_dropout))
        size, c_in = math.ceil(size / stride), c_out
    layers += [nn.Flatten(), wrap(nn.Linear(c_in * size * size, 1))]  # (B, 1) logit
    return _init(nn.Sequential(*layers))
