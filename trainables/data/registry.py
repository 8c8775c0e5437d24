"""Dataset name -> loader. `folder:PATH` is the one prefixed spec; every other spec is a registered name.

A loader is `(spec, image_size, channels, seed, size) -> Dataset` and must be deterministic in its arguments.
"""

from __future__ import annotations

from collections.abc import Callable

from trainables.data import Dataset, digits, folder, points, sprites
from trainables.errors import DataError

Loader = Callable[[str, int, int, int, int | None], Dataset]

_LOADERS: dict[str, Loader] = {
    "sprites": sprites.load,
    "digits": digits.load_digits,
    "stacked_digits": digits.load_stacked,
    "ring8": points.load,
    "grid25": points.load,
}
CHANNELS = (1, 3)
IMAGE_SIZES = (8, 1024)  # smallest and largest side load_dataset accepts


def names() -> list[str]:
    """The registered names plus the folder form, in the order help text shows them."""
    return [*_LOADERS, f"{folder.PREFIX}PATH"]


def load(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    """Validate the arguments and dispatch the spec to its loader."""
    _check(image_size, channels, size)
    if spec.startswith(folder.PREFIX):
        return folder.load(spec, image_size, channels, seed, size)
    if spec not in _LOADERS:
        raise DataError(f"unknown dataset {spec!r}; valid: {', '.join(names())}")
    return _LOADERS[spec](spec, image_size, channels, seed, size)


def _check(image_size: int, channels: int, size: int | None) -> None:
    low, high = IMAGE_SIZES
    if not low <= image_size <= high:
        raise DataError(f"image_size must be from {low} to {high} pixels, got {image_size!r}")
    if channels not in CHANNELS:
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if size is not None and size < 1:
        raise DataError(f"dataset size must be a positive number of samples or None, got {size!r}")
