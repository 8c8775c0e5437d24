"""2-D Gaussian mixtures for mode-collapse studies: ring8 and grid25, as in the PacGAN and VEEGAN papers.

ring8: 8 Gaussians evenly spaced on a circle of radius 1, std 0.01 (variance 1e-4).
grid25: 25 Gaussians centred on {-4, -2, 0, 2, 4}^2, std 0.05 (variance 0.0025).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainables.data import Dataset
from trainables.errors import DataError

DEFAULT_SIZE = 10000  # points per dataset when no size is given


def _ring8() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack((angles.cos(), angles.sin()), dim=1).float()


def _grid25() -> torch.Tensor:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    x, y = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((x.flatten(), y.flatten()), dim=1)


@dataclass(frozen=True)
class Mixture:
    centres: Callable[[], torch.Tensor]  # () -> (K, 2) float32 mode means
    std: float  # per-coordinate standard deviation of every mode


MIXTURES = {"ring8": Mixture(_ring8, 0.01), "grid25": Mixture(_grid25, 0.05)}


def _mixture(name: str) -> Mixture:
    if name not in MIXTURES:
        raise DataError(f"unknown point dataset {name!r}; valid: {', '.join(MIXTURES)}")
    return MIXTURES[name]


def mode_centres(name: str) -> torch.Tensor:
    """(K, 2) float32 means of the mixture's modes; label k is centre k."""
    return _mixture(name).centres()


def mode_std(name: str) -> float:
    """The standard deviation of each mode (the same along both axes)."""
    return _mixture(name).std


def load(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    """Points (N, 2) float32 with balanced, shuffled mode labels; image_size and channels are ignored."""
    centres, std = mode_centres(spec), mode_std(spec)
    n = DEFAULT_SIZE if size is None else size
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(centres))[torch.randperm(n, generator=gen)]
    points = centres[labels] + std * torch.randn(n, 2, generator=gen)
    return Dataset(spec, "points", points, labels, len(centres), background=0.0)
