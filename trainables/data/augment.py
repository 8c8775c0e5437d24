"""Batched, seeded image augmentation on the batch's own device: flip, rotation, colour jitter.

Every random number comes from the caller's generator (on the batch's device), one draw per image, so a run
is reproducible and no Python loop touches single images. Rotation fills the uncovered corners with the
dataset's background value. Colour jitter follows torchvision's ColorJitter factors in a fixed order
(brightness, contrast, saturation, hue); the hue shift is a rotation of the YIQ chroma plane, a close and
cheap approximation of torchvision's HSV hue shift.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from trainables.errors import ConfigError

# RGB -> YIQ (NTSC 1953); hue is the angle in the (I, Q) plane
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))
_LUMA = (0.299, 0.587, 0.114)


def augment(
    batch: torch.Tensor,
    flip_prob: float,
    rotation_degrees: float,
    color_jitter: tuple[float, float, float, float],
    background: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(B, C, H, W) float in [-1, 1] -> the same shape, augmented; the input itself when all strengths are 0.

    color_jitter: (brightness, contrast, saturation, hue); the first three draw factors uniform in [1-x, 1+x],
    hue draws a shift uniform in [-h, h] of a full turn. Saturation and hue apply to 3-channel images only.
    """
    _check(flip_prob, rotation_degrees, color_jitter)
    out = batch
    if flip_prob > 0:
        out = _flip(out, flip_prob, generator)
    if rotation_degrees > 0:
        out = _rotate(out, rotation_degrees, background, generator)
    if any(v > 0 for v in color_jitter):
        out = _jitter(out.add(1.0).mul_(0.5), color_jitter, generator).mul_(2.0).sub_(1.0)
    return out


def _check(flip_prob: float, rotation_degrees: float, color_jitter: tuple[float, float, float, float]) -> None:
    if not 0.0 <= flip_prob <= 1.0:
        raise ConfigError(f"flip probability must be in [0, 1], got {flip_prob!r}")
    if rotation_degrees < 0:
        raise ConfigError(f"rotation degrees must be zero or positive, got {rotation_degrees!r}")
    if len(color_jitter) != 4 or any(v < 0 for v in color_jitter):
        raise ConfigError(f"color jitter must be 4 non-negative strengths (b, c, s, h), got {color_jitter!r}")


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(n,) float32 uniform in [low, high) on the batch's device (float32 even for bf16 batches: angles)."""
    return torch.rand(n, generator=gen, device=like.device, dtype=torch.float32) * (high - low) + low


def _flip(batch: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    flip = _uniform(len(batch), 0.0, 1.0, batch, gen) < prob  # (B,)
    return torch.where(flip[:, None, None, None], batch.flip(-1), batch)


def _rotate(batch: torch.Tensor, degrees: float, background: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate each image by its own angle; pixels from outside the frame take the background value."""
    angle = _uniform(len(batch), -degrees, degrees, batch, gen) * (math.pi / 180)  # (B,)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack((cos, -sin, zero, sin, cos, zero), dim=1).view(-1, 2, 3)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False).to(batch.dtype)
    # sampling (batch - background) with zero padding, then adding it back, pads with the background
    moved = F.grid_sample(batch - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved.add_(background).clamp_(-1.0, 1.0)


def _jitter(x: torch.Tensor, strengths: tuple[float, float, float, float], gen: torch.Generator) -> torch.Tensor:
    """Colour jitter in [0, 1] space: (B, C, H, W) -> same, clamped after every step like torchvision."""
    brightness, contrast, saturation, hue = strengths
    n, colour = len(x), x.shape[1] == 3
    if brightness > 0:
        x = x * _factor(n, brightness, x, gen).view(-1, 1, 1, 1)
        x = x.clamp_(0.0, 1.0)
    if contrast > 0:
        mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        x = torch.lerp(mean, x, _factor(n, contrast, x, gen).view(-1, 1, 1, 1)).clamp_(0.0, 1.0)
    if saturation > 0 and colour:
        x = torch.lerp(_grey(x), x, _factor(n, saturation, x, gen).view(-1, 1, 1, 1)).clamp_(0.0, 1.0)
    if hue > 0 and colour:
        x = _shift_hue(x, _uniform(n, -hue, hue, x, gen)).clamp_(0.0, 1.0)
    return x


def _factor(n: int, strength: float, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(n,) factors uniform in [max(0, 1 - strength), 1 + strength], in the batch's dtype."""
    return _uniform(n, max(0.0, 1.0 - strength), 1.0 + strength, like, gen).to(like.dtype)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) luminance (the image itself when it has one channel)."""
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    return torch.einsum("bchw,c->bhw", x, weights)[:, None]


def _shift_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate each image's chroma by `turns` of a full circle in YIQ space: (B, 3, H, W) -> same."""
    to_yiq, from_yiq = (m.to(x.device) for m in _yiq_matrices())
    angle = turns * (2 * math.pi)
    cos, sin, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    rotation = torch.stack((one, zero, zero, zero, cos, -sin, zero, sin, cos), dim=1).view(-1, 3, 3)
    matrix = from_yiq @ rotation @ to_yiq  # (B, 3, 3): RGB -> YIQ, turn the chroma, back to RGB
    return torch.einsum("bij,bjhw->bihw", matrix.to(x.dtype), x)


@functools.cache
def _yiq_matrices() -> tuple[torch.Tensor, torch.Tensor]:
    """RGB -> YIQ and its exact inverse, float32 on the CPU (inverted once, in float64)."""
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    return to_yiq.float(), torch.linalg.inv(to_yiq).float()
