"""Building blocks shared by the image networks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): out = x + gamma * attention(x), gamma starting at 0.

    Written with plain matmul + softmax rather than scaled_dot_product_attention: the critic's gradient
    penalty differentiates twice, and the fused attention kernels have no double backward. The (B, HW, HW) map
    is only ever used untransposed: `attn @ v^T` transposes the small (B, C, HW) tensors instead. The same
    arithmetic, but the penalty's double backward through a 32x32 map (batch 32) ran 2.8x faster on two CPU
    threads (1.2x at 16x16, the same on one thread): multithreaded BLAS handles the transposed big operand badly.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)  # SAGAN's C/8, kept non-empty for very narrow test networks
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C/8)
        k = self.key(x).flatten(2)  # (B, C/8, HW)
        v = self.value(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (B, HW, HW), SAGAN uses no 1/sqrt(d) scale
        out = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)  # out[:, :, i] = sum_j attn[i, j] v[:, j]
        return x + self.gamma * out


class GenResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity, then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class CriticResBlock(nn.Module):
    """Spectrally normalised conv3x3-LN-LeakyReLU-conv3x3-LN plus identity, then LeakyReLU.

    LayerNorm over [C, H, W], never BatchNorm: the gradient penalty is per sample (guide 001, 4.4).
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            sn_conv(channels, channels, 3, 1, 1), nn.LayerNorm([channels, size, size]), nn.LeakyReLU(0.2, True),
            sn_conv(channels, channels, 3, 1, 1), nn.LayerNorm([channels, size, size]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(x + self.body(x), 0.2)


def sn_conv(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False))


def num_stages(image_size: int) -> int:
    """Stride-2 stages between 4x4 and image_size: 4 at 64x64."""
    return image_size.bit_length() - 1 - 2


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
