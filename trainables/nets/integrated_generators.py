"""Guide 002's two generators: a style generator (mapping network, AdaIN, per-pixel noise, equalised convs) and a
growing neural cellular automaton conditioned on the same W space (issue 26 gives the shapes read from its code).

Widths scale with the config so the CPU preset keeps the structure at 32x32: the last stage has GEN_FEATURE_MAPS
channels and each earlier one doubles it (32 at 64x64: 512, 256, 128, 64, 32); the mapping network's hidden
width is 4 x LATENT_DIM and w has 2 x LATENT_DIM values (z 64: 256 and 128); the NCA's hidden layer is w's width.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from trainables.config import GanConfig
from trainables.nets.layers import num_stages

W_CLAMP = 2.0  # w is clamped to [-2, 2] in training (the guide's fixed trainer)
NCA_CHANNELS = 16  # 0-2 RGB before tanh, 3 alpha, 4-15 hidden
ALIVE = 0.1  # a cell is alive when its alpha exceeds this
NCA_STEPS = (8, 16)  # steps drawn per batch, both ends included
SAMPLE_STEPS = 12  # the fixed step count of sample grids and statistics
SEEDS, SEED_RADIUS = 3, 2  # three discs of colour, radius 2 pixels


@dataclasses.dataclass(frozen=True)
class Widths:
    """The integrated system's widths, from a config (64x64, z 64, feature maps 32: the guide's)."""

    z: int  # LATENT_DIM
    hidden: int  # mapping network hidden units
    w: int  # style vector
    stages: tuple[int, ...]  # generator channels per stage, 4x4 first

    @classmethod
    def of(cls, cfg: GanConfig) -> Widths:
        n = num_stages(cfg.image_size) + 1  # 4x4 and one stage per doubling
        stages = tuple(cfg.gen_feature_maps * 2 ** (n - 1 - i) for i in range(n))
        return cls(cfg.latent_dim, 4 * cfg.latent_dim, 2 * cfg.latent_dim, stages)


class EqualLinear(nn.Module):
    """A linear layer with weights N(0, 1) scaled at run time by 1/sqrt(fan_in) (Karras et al. 2018)."""

    def __init__(self, c_in: int, c_out: int, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in))
        self.bias = nn.Parameter(torch.full((c_out,), bias_init))
        self.scale = 1 / math.sqrt(c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualConv2d(nn.Module):
    """A convolution with the equalised learning rate: N(0, 1) weights times 1/sqrt(fan_in) at run time."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.padding = 1 / math.sqrt(c_in * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)


def mapping_network(w: Widths) -> nn.Sequential:
    """z -> w: PixelNorm, Linear z->hidden, LeakyReLU, Linear hidden->hidden, LeakyReLU, Linear hidden->w."""
    return nn.Sequential(PixelNorm(), nn.Linear(w.z, w.hidden), nn.LeakyReLU(0.2), nn.Linear(w.hidden, w.hidden),
                         nn.LeakyReLU(0.2), nn.Linear(w.hidden, w.w))


class StyleLayer(nn.Module):
    """Equalised 3x3 conv, per-pixel noise (one N(0, 1) map per sample, a per-channel weight from 0), AdaIN from w
    (InstanceNorm without affine; scale * norm(x) + bias from an equalised Linear w -> 2C), LeakyReLU 0.2."""

    def __init__(self, c_in: int, c_out: int, w_dim: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(c_in, c_out, 3)
        self.noise_weight = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.style = EqualLinear(w_dim, 2 * c_out)
        with torch.no_grad():
            self.style.bias[:c_out] = 1.0  # the scale starts at 1, the bias at 0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, C, H, W)
        x = x + self.noise_weight * torch.randn_like(x[:, :1])
        scale, bias = self.style(w)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return F.leaky_relu(scale * F.instance_norm(x) + bias, 0.2)


class StyleGenerator(nn.Module):
    """A learned constant C x 4 x 4, then per stage (bilinear x2 upsample except the first) two style layers; a
    1x1 equalised conv to RGB and tanh. The same w feeds every AdaIN; `mapping` turns z into w."""

    def __init__(self, w: Widths, channels: int) -> None:
        super().__init__()
        self.mapping = mapping_network(w)
        self.const = nn.Parameter(torch.randn(1, w.stages[0], 4, 4))
        ins = (w.stages[0],) + w.stages[:-1]
        self.layers = nn.ModuleList(layer for c_in, c in zip(ins, w.stages)
                                    for layer in (StyleLayer(c_in, c, w.w), StyleLayer(c, c, w.w)))
        self.to_rgb = EqualConv2d(w.stages[-1], channels, 1)

    def style(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)  # (B, w)
        return w.clamp(-W_CLAMP, W_CLAMP) if self.training else w

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        x = self.const.expand(w.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers):
            if i > 0 and i % 2 == 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(x, w)
        return torch.tanh(self.to_rgb(x))  # (B, 3, H, W)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.style(z))


class Nca(nn.Module):
    """A growing neural cellular automaton: per-channel identity, Sobel-x and Sobel-y perception (48 values per
    cell), an update MLP Linear(48 + w -> w), ReLU, Linear(w -> 16) applied where a cell or a neighbour is alive.

    Written for the CPU: the Sobel filters are shifted differences rather than a grouped convolution, and the
    update runs channels-last as matrix products, its first layer split into the perception's part (per cell) and
    w's part (once per sample, broadcast), which is the same Linear on the concatenation.
    """

    def __init__(self, w_dim: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.hidden = nn.Linear(3 * NCA_CHANNELS + w_dim, w_dim)
        self.out = nn.Linear(w_dim, NCA_CHANNELS)

    def seed(self, n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """(n, 16, S, S) zeros but for three discs of radius 2 with a random colour, alpha 1, at random places."""
        s = self.size
        centres = torch.randint(SEED_RADIUS, s - SEED_RADIUS, (n, SEEDS, 2), generator=gen, device=device)
        colours = torch.rand(n, SEEDS, 3, generator=gen, device=device) * 2 - 1
        grid = torch.arange(s, device=device)
        dy = grid[None, None, :, None] - centres[..., 0, None, None]
        dx = grid[None, None, None, :] - centres[..., 1, None, None]
        discs = (dy.square() + dx.square() <= SEED_RADIUS**2).float()  # (n, SEEDS, S, S)
        state = torch.zeros(n, NCA_CHANNELS, s, s, device=device)
        state[:, :3] = torch.einsum("nkc,nkhw->nchw", colours, discs).clamp(-1, 1)
        state[:, 3] = discs.amax(dim=1)
        return state

    @staticmethod
    def perceive(state: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 48) from a channels-last state (B, S, S, 16): each channel, its Sobel-x and Sobel-y responses
        (zero padding, kernels / 8)."""
        p = F.pad(state, (0, 0, 1, 1, 1, 1))  # (B, S + 2, S + 2, C)
        rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # (B, S, S + 2, C): vertical [1, 2, 1]
        cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # (B, S + 2, S, C): horizontal [1, 2, 1]
        sobel_x = (rows[:, :, 2:] - rows[:, :, :-2]) / 8
        sobel_y = (cols[:, 2:] - cols[:, :-2]) / 8
        return torch.cat([state, sobel_x, sobel_y], dim=3)

    def step(self, state: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """One update of a channels-last state (B, S, S, 16); `style` (B, 1, 1, hidden) is w's share of the first
        layer."""
        alive = F.max_pool2d((state[None, ..., 3] > ALIVE).float(), 3, 1, 1)[0, ..., None]  # (B, S, S, 1)
        k = 3 * NCA_CHANNELS
        h = torch.relu(F.linear(self.perceive(state), self.hidden.weight[:, :k], self.hidden.bias) + style)
        return state + self.out(h) * alive

    def forward(self, w: torch.Tensor, steps: int = SAMPLE_STEPS, gen: torch.Generator | None = None) -> torch.Tensor:
        state = self.seed(w.shape[0], gen, w.device).permute(0, 2, 3, 1).contiguous()  # (B, S, S, 16)
        style = F.linear(w, self.hidden.weight[:, 3 * NCA_CHANNELS:])[:, None, None, :]  # (B, 1, 1, hidden)
        for _ in range(steps):
            state = self.step(state, style)
        return torch.tanh(state[..., :3]).permute(0, 3, 1, 2)  # (B, 3, S, S)


def build_generator(cfg: GanConfig) -> StyleGenerator:
    return StyleGenerator(Widths.of(cfg), cfg.channels)


def build_nca(cfg: GanConfig) -> Nca:
    return Nca(Widths.of(cfg).w, cfg.image_size)
