"""A user's own images: `folder:PATH`, searched recursively, resized and centre-cropped to square.

Transparent images are composited onto white, so sprite sets with alpha match the white-background default.
When every image sits in an immediate subfolder, the subfolders are classes: label = index of the subfolder
in sorted order (used to count modes). Images directly in PATH make the whole set unlabelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainables.data import Dataset, match_channels
from trainables.errors import DataError

PREFIX = "folder:"
EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})  # compared lower-cased


def image_files(root: Path) -> list[Path]:
    """Image files under root, recursively, in sorted path order; hidden files and folders (".x") are skipped,
    which also skips macOS "._name.png" metadata files that are not images."""
    found = (p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def class_labels(root: Path, files: list[Path]) -> tuple[torch.Tensor | None, int | None]:
    """Labels from immediate subfolders (sorted names), or (None, None) when any image sits in root itself."""
    tops = [f.relative_to(root).parts[0] if f.parent != root else None for f in files]
    if None in tops:
        return None, None
    classes = sorted(set(tops))
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[t] for t in tops], dtype=torch.int64), len(classes)


def read_image(path: Path, image_size: int) -> np.ndarray:
    """One image as uint8 (S, S, 3): transparency onto white, shorter side to S, centre crop."""
    try:
        with Image.open(path) as img:
            img.load()
            rgb = _on_white(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None
    return np.asarray(_square(rgb, image_size))


def _on_white(img: Image.Image) -> Image.Image:
    """RGB version of a Pillow image; anything with alpha or a transparent colour is composited onto white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: convert("RGB") would clip it to white
        img = Image.fromarray((np.asarray(img, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8))
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info  # P, L or RGB with a key colour
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _square(img: Image.Image, side: int) -> Image.Image:
    """Resize so the shorter side is `side` (bicubic, antialiased by Pillow), then crop the centre square."""
    width, height = img.size
    scale = side / min(width, height)
    new_w, new_h = max(side, round(width * scale)), max(side, round(height * scale))
    resized = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - side) // 2, (new_h - side) // 2
    return resized.crop((left, top, left + side, top + side))


def load(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    """All images under the folder (seed and size are unused: the folder is the data)."""
    root = Path(spec[len(PREFIX) :]).expanduser()
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"expected an image folder but {root} is a file")
    files = image_files(root)
    if not files:
        kinds = ", ".join(sorted(EXTENSIONS))
        raise DataError(f"no images ({kinds}) found in folder {root}")
    pixels = np.stack([read_image(f, image_size) for f in files])  # (N, S, S, 3)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels, num_modes = class_labels(root, files)
    return Dataset(spec, "image", match_channels(images, channels), labels, num_modes, background=1.0)
