"""Guide 002's two critics: a conv discriminator whose feature maps serve feature matching, and a transformer
critic with a real/fake head and a per-patch "imitator" head that paints an image (issue 26's shapes).

Discriminator: one [Conv 4x4 stride 2, LeakyReLU 0.2, Dropout D_DROPOUT] per halving down to 2x2, channels
DISC_FEATURE_MAPS doubling (32 at 64x64: 3-32-64-128-256-512), then a 2x2 conv to one logit.
Transformer: 8x8 patches embedded to 8 x DISC_FEATURE_MAPS (256 at 32) by a conv, a CLS token, learned positions,
6 pre-norm blocks (8 heads, MLP 4x, GELU, dropout 0.1), a final LayerNorm. The heads are not in the issue beyond
"a CLS head" and "a per-patch head": here the CLS head is LayerNorm, Linear d->d, GELU, Linear d->1 and the
imitator LayerNorm, Linear d->2d, GELU, Linear 2d->3*8*8, which brings the total to the issue's 5.1 M.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.config import GanConfig
from trainables.nets.layers import num_stages

PATCH, DEPTH, HEADS, MLP_RATIO, T_DROPOUT = 8, 6, 8, 4, 0.1


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        widths = [cfg.channels] + [cfg.disc_feature_maps * 2**i for i in range(num_stages(cfg.image_size) + 1)]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2))
                                    for c_in, c_out in zip(widths, widths[1:]))
        self.dropout = nn.Dropout(cfg.d_dropout)
        self.out = nn.Conv2d(widths[-1], 1, 2)  # 2x2 -> one logit

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (B,), the feature map after each block's activation)."""
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
            x = self.dropout(x)
        return self.out(x).flatten(), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


class Block(nn.Module):
    """Pre-norm: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, HEADS, dropout=T_DROPOUT, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, MLP_RATIO * dim), nn.GELU(), nn.Dropout(T_DROPOUT),
                                 nn.Linear(MLP_RATIO * dim, dim), nn.Dropout(T_DROPOUT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TransformerCritic(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        dim, self.side = 8 * cfg.disc_feature_maps, cfg.image_size // PATCH
        self.channels = cfg.channels
        self.embed = nn.Conv2d(cfg.channels, dim, PATCH, PATCH)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.side**2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim) for _ in range(DEPTH)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.imitator = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                      nn.Linear(2 * dim, cfg.channels * PATCH * PATCH))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, d)
        cls = self.cls.expand(x.shape[0], -1, -1)
        return self.norm(self.blocks(torch.cat([cls, patches], dim=1) + self.pos))  # (B, N + 1, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One real/fake logit per image, (B,)."""
        return self.head(self.tokens(x)[:, 0]).flatten()

    def paint(self, x: torch.Tensor) -> torch.Tensor:
        """The imitator: an image (B, C, H, W) in [-1, 1] painted patch by patch from the patch tokens."""
        patches = self.imitator(self.tokens(x)[:, 1:])  # (B, N, C * P * P)
        size = self.side * PATCH
        return torch.tanh(F.fold(patches.transpose(1, 2), (size, size), PATCH, stride=PATCH))


def build_discriminator(cfg: GanConfig) -> Discriminator:
    return Discriminator(cfg)


def build_transformer(cfg: GanConfig) -> TransformerCritic:
    return TransformerCritic(cfg)
