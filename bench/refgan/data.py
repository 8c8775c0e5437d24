"""Training data: 2-D Gaussian mixtures and 16x16 coloured digits, each with what the probe needs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Dataset:
    kind: str  # "2d" | "image"
    x: torch.Tensor  # training samples
    eval_real: torch.Tensor  # a fixed batch of real samples for the probe
    scale: float  # mean pairwise distance of eval_real
    modes: torch.Tensor | None = None  # 2-D mode centres
    std: float = 0.0  # 2-D mode std
    classifier: object | None = None  # images: digit classifier on channel-max intensities


def mean_pairwise(x: torch.Tensor) -> float:
    flat = x.reshape(len(x), -1)
    n = len(flat)
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


def _mixture(centres: torch.Tensor, std: float, n: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(centres), (n,), generator=gen)
    return centres[idx] + std * torch.randn(n, 2, generator=gen)


def mixture(name: str, std: float, n: int, gen: torch.Generator, n_eval: int = 512) -> Dataset:
    if name == "ring8":
        angle = torch.arange(8) * (2 * torch.pi / 8)
        centres = 2.0 * torch.stack([angle.cos(), angle.sin()], 1)
    else:
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        centres = torch.cartesian_prod(axis, axis)
    eval_real = _mixture(centres, std, n_eval, gen)
    return Dataset("2d", _mixture(centres, std, n, gen), eval_real, mean_pairwise(eval_real), centres, std)


def intensity(img: torch.Tensor) -> torch.Tensor:
    """Channel-max brightness in [0, 1], flattened: colour-blind features for the digit classifier."""
    return ((img.amax(1) + 1) / 2).reshape(len(img), -1)


def digits(n: int, gen: torch.Generator, n_eval: int = 256) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    raw = load_digits()
    order = torch.randperm(len(raw.images), generator=gen)[: n + n_eval]
    gray = torch.tensor(raw.images, dtype=torch.float32)[order, None] / 16.0
    gray = F.interpolate(gray, size=16, mode="bilinear", align_corners=False).clamp(0, 1)
    colour = 0.3 + 0.7 * torch.rand(len(gray), 3, 1, 1, generator=gen)
    img = gray * colour * 2 - 1
    labels = raw.target[order.numpy()]
    clf = LogisticRegression(max_iter=1000).fit(intensity(img[:n]).numpy(), labels[:n])
    eval_real = img[n:]
    return Dataset("image", img[:n], eval_real, mean_pairwise(eval_real), classifier=clf)


def load(name: str, std: float, n: int, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    return digits(n, gen) if name == "digits" else mixture(name, std, n, gen)
