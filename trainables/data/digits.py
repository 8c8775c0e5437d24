"""scikit-learn's bundled 8x8 handwritten digits (no download), upscaled; and Stacked-MNIST built from them.

Stacked-MNIST (Metz et al. 2017, used by PacGAN and VEEGAN to count modes) puts three independently drawn
digits into the R, G and B channels, giving 1000 modes; here it is built from the 1797 sklearn digits so
that it runs at CPU scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.data import Dataset, match_channels
from trainables.errors import DataError

STACKED_DEFAULT_SIZE = 10000  # samples of stacked_digits when no size is given
INK_MAX = 16.0  # sklearn digits hold ink levels 0..16


def digit_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as uint8 (N, 1, S, S), white ink on black, and their int64 labels 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / INK_MAX  # (N, 1, 8, 8) in [0, 1]
    # bicubic is smoother than bilinear when enlarging 8 pixels; clamp its overshoot back into range
    big = F.interpolate(small, size=(image_size, image_size), mode="bicubic", align_corners=False)
    images = big.clamp(0.0, 1.0).mul(255).round().to(torch.uint8)
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def load_digits(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    """The digits themselves; a `size` below 1797 keeps a seeded random subset (in the original order)."""
    images, labels = digit_images(image_size)
    if size is not None and size < len(labels):
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size].sort().values
        images, labels = images[keep], labels[keep]
    return Dataset(spec, "image", match_channels(images, channels), labels, 10, background=-1.0)


def load_stacked(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    """Three random digits stacked as R, G, B; label 100*a + 10*b + c."""
    if channels != 3:
        raise DataError(f"dataset {spec!r} stacks three digits as R, G, B and needs channels=3, got {channels}")
    images, labels = digit_images(image_size)
    n = STACKED_DEFAULT_SIZE if size is None else size
    picks = torch.randint(len(labels), (n, 3), generator=torch.Generator().manual_seed(seed))  # (n, 3) rows
    stacked = images[picks.flatten(), 0].view(n, 3, image_size, image_size)
    digits = labels[picks]  # (n, 3)
    return Dataset(spec, "image", stacked, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2], 1000, -1.0)
