"""Sample pictures: an 8x8 grid for images, a scatter plot for 2-D points, written as PNG with Pillow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def grid_array(images: torch.Tensor, columns: int = 8, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 (rows*H, columns*W, 3) with white padding."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = x.expand(-1, 3, -1, -1) if c == 1 else x[:, :3]
    canvas = torch.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, dtype=torch.uint8)
    for i in range(n):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        canvas[top:top + h, left:left + w] = x[i].permute(1, 2, 0)
    return canvas.numpy()


def scatter_array(points: torch.Tensor, real: torch.Tensor, size: int = 256) -> np.ndarray:
    """Generated points (blue) over real ones (gray) on a white square framing the real data."""
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    real = real.detach().float().cpu()
    lo, hi = real.min().item(), real.max().item()
    margin = 0.15 * (hi - lo) + 1e-6
    for pts, colour in ((real, (180, 180, 180)), (points.detach().float().cpu(), (30, 60, 200))):
        pix = ((pts - (lo - margin)) / (hi - lo + 2 * margin) * (size - 1)).round().long().numpy()
        ok = np.isfinite(pix).all(axis=1) & (pix >= 0).all(axis=1) & (pix < size).all(axis=1)
        canvas[size - 1 - pix[ok, 1], pix[ok, 0]] = colour
    return canvas


def save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
