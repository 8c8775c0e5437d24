"""cgan: guide 004's class-conditional BCE GAN. Both networks read the class through a label embedding.

Generator: [z, embed(y)] -> dense to a 4x4 (or 7x7 at 28 pixels) map -> stride-2 transposed convs with batch
norm and ReLU, halving the width each time -> tanh. Discriminator: the image plus one channel that is the
label's embedding spread over the pixels -> stride-2 4x4 convs with LeakyReLU 0.2 (optional dropout and
spectral norm, guide 004's Architecture changes) -> one logit. NUM_CLASSES comes from the dataset's labels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from trainables.config import GanConfig
from trainables.errors import ConfigError

EMBED = 50  # label embedding size
MAX_STAGES = 4


def stages(image_size: int) -> int:
    """Stride-2 stages from the starting map (at least 4x4) to the image: 3 at 32, 2 at 28."""
    k = 0
    while k < MAX_STAGES and image_size % 2 ** (k + 1) == 0 and image_size // 2 ** (k + 1) >= 4:
        k += 1
    return k


def _classes(cfg: GanConfig) -> int:
    if cfg.num_classes is None:
        raise ConfigError("cgan needs NUM_CLASSES (set from the dataset's labels when training)")
    return cfg.num_classes


class Generator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        k = stages(cfg.image_size)
        self.start = cfg.image_size // 2 ** k
        widths = [cfg.gen_feature_maps * 2 ** (k - 1 - i) for i in range(k)]  # 256, 128, 64 at 32 pixels
        self.embed = nn.Embedding(_classes(cfg), EMBED)
        self.head = nn.Sequential(nn.Linear(cfg.latent_dim + EMBED, widths[0] * self.start ** 2, bias=False),
                                  nn.BatchNorm1d(widths[0] * self.start ** 2), nn.ReLU(True))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], cfg.channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.head(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))
        return self.body(h.view(z.shape[0], -1, self.start, self.start))


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        k, size = stages(cfg.image_size), cfg.image_size
        wrap = spectral_norm if cfg.spectral_norm else (lambda m: m)
        self.size = size
        self.embed = nn.Embedding(_classes(cfg), EMBED)
        self.label_map = nn.Linear(EMBED, size * size)
        layers: list[nn.Module] = []
        c_in = cfg.channels + 1
        for i in range(k):
            c_out = cfg.disc_feature_maps * 2 ** i
            layers += [wrap(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            c_in = c_out
        layers += [nn.Flatten(), wrap(nn.Linear(c_in * (size // 2 ** k) ** 2, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        label = self.label_map(self.embed(y)).view(-1, 1, self.size, self.size).to(x.dtype)
        return self.body(torch.cat([x, label], dim=1))


def build_generator(cfg: GanConfig) -> nn.Module:
    return Generator(cfg)


def build_critic(cfg: GanConfig) -> nn.Module:
    return Discriminator(cfg)
