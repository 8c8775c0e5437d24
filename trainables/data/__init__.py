"""Datasets gantune trains on: one `Dataset` record, one `load_dataset(spec, ...)` entry point.

Importing this package imports torch (for `augment`); Pillow and scikit-learn load only when a folder or the
digits are loaded. The loaders live one per module (sprites, digits, folder, points) and are named in
`registry.py`, which is imported on the first load.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# imported here, not lazily: binding the name first keeps `trainables.data.augment` the function even after
# the submodule of the same name is imported
from trainables.data.augment import augment

__all__ = ["Dataset", "augment", "dataset_names", "load_dataset", "to_float"]


@dataclass(frozen=True)
class Dataset:
    name: str  # the spec it came from, e.g. "sprites" or "folder:/x/y"
    kind: str  # "image" or "points"
    tensor: torch.Tensor  # images: uint8 (N, C, H, W) in 0..255; points: float32 (N, 2)
    labels: torch.Tensor | None  # int64 (N,) mode label; None when unlabelled (a folder without class folders)
    num_modes: int | None  # distinct labels a generator could produce; None when unlabelled
    background: float  # background value in the [-1, 1] scale: 1.0 white, -1.0 black, 0.0 for points


def load_dataset(spec: str, image_size: int, channels: int = 3, seed: int = 42, size: int | None = None) -> Dataset:
    """Load (or generate) a dataset; the result depends only on the arguments.

    spec: a registered name (see `dataset_names`) or "folder:PATH". image_size: output side in pixels.
    channels: 1 or 3. seed: seeds synthetic data. size: samples for synthetic data, None = its default.
    """
    from trainables.data import registry

    return registry.load(spec, image_size, channels, seed, size)


def dataset_names() -> list[str]:
    """The valid specs, for help text and error messages: the registered names and "folder:PATH"."""
    from trainables.data import registry

    return registry.names()


def to_float(batch_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 -> float in [-1, 1] (the scale the networks read and write)."""
    return batch_uint8.float().div(127.5).sub(1.0)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, 1 or 3, H, W) uint8 -> `channels` channels: grey is replicated, RGB -> grey by luminance (BT.601)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.expand(-1, channels, -1, -1).contiguous()
    grey = 0.299 * images[:, 0:1].float() + 0.587 * images[:, 1:2].float() + 0.114 * images[:, 2:3].float()
    return grey.round().clamp(0, 255).to(images.dtype)
