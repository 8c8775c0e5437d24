"""The embedded default dataset: procedural sprites, one mode per (shape, palette) pair, on a white background.

Each sprite is a shape filled with its palette's body colour inside a dark outline, crossed by a stripe in the
palette's accent colour. Within a mode the position, scale, rotation and (slightly) the colours vary; across
modes the silhouette or the palette differ, so a small classifier separates them and a generator that drops
modes can be caught counting them.

Shapes are signed distance functions (negative inside) in a local frame where each fits the unit circle,
tabulated once and read per pixel with `grid_sample`. Edges are antialiased twice over: each pixel's coverage
comes from its distance to the edge, and sprites are rendered at 2x and area-downsampled.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainables.data import Dataset, match_channels

DEFAULT_SIZE = 960  # like the ~900-sprite Pokemon set: 20 images for each of the 48 modes
SUPERSAMPLE = 2  # render at 2x the requested side, then average 2x2 blocks
MAX_ROTATION = math.radians(20)  # small enough that a square never turns into the (narrower) diamond
OUTLINE = 0.08  # outline width in image units (the image spans [-1, 1]), at least 1.2 pixels
CHUNK_PIXELS = 2**19  # supersampled pixels rendered per step
FIELD_SIZE = 512  # side of each shape's precomputed distance table
FIELD_RADIUS = 1.25  # the table covers [-1.25, 1.25]^2 of the local frame
STRIPE = (0.3, 0.15)  # accent stripe: centre and half-width along the local y axis (down), local units


@dataclass(frozen=True)
class Palette:
    name: str
    body: tuple[int, int, int]  # RGB 0..255
    accent: tuple[int, int, int]
    outline: tuple[int, int, int]  # dark, so every sprite has a clear edge on white


PALETTES = (
    Palette("fire", (222, 62, 48), (250, 212, 64), (48, 22, 20)),
    Palette("water", (58, 110, 222), (160, 232, 250), (18, 28, 62)),
    Palette("grass", (70, 172, 78), (244, 150, 196), (20, 50, 24)),
    Palette("ghost", (150, 80, 192), (250, 162, 58), (40, 20, 56)),
    Palette("rock", (150, 120, 90), (60, 60, 70), (40, 32, 26)),
    Palette("ice", (46, 190, 186), (36, 58, 130), (14, 48, 52)),
)


def _polygon(vertices: list[tuple[float, float]]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Exact signed distance to a simple polygon (Inigo Quilez's sdPolygon, vectorised over pixels)."""

    def sdf(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dist2 = torch.full_like(x, math.inf)
        sign = torch.ones_like(x)
        for i, (xi, yi) in enumerate(vertices):
            xj, yj = vertices[i - 1]
            ex, ey, wx, wy = xj - xi, yj - yi, x - xi, y - yi
            t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
            dist2 = torch.minimum(dist2, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
            above, below, left = y >= yi, y < yj, ex * wy > ey * wx
            crossing = (above & below & left) | ~(above | below | left)
            sign = torch.where(crossing, -sign, sign)
        return sign * dist2.sqrt()

    return sdf


def _regular(n: int, radius: float, inner: float | None = None, turn: float = -90.0) -> list[tuple[float, float]]:
    """Vertices of a regular n-gon (or an n-pointed star when `inner` is given), first vertex pointing up."""
    radii = [radius] if inner is None else [radius, inner]
    count = n * len(radii)
    angles = [math.radians(turn) + 2 * math.pi * k / count for k in range(count)]
    return [(radii[k % len(radii)] * math.cos(a), radii[k % len(radii)] * math.sin(a)) for k, a in enumerate(angles)]


def _circle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.hypot(x, y) - 0.9


def _ring(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.hypot(x, y) - 0.68).abs() - 0.28


def _heart(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Inigo Quilez's sdHeart (tip at the origin, y up), flipped to y down and scaled into the unit circle."""
    k = 0.68  # the heart reaches ~0.68 from its middle (0, 0.55): shrink the frame so it fills the unit circle
    hx, hy = x.abs() * k, 0.55 - y * k
    lobe = torch.hypot(hx - 0.25, hy - 0.75) - math.sqrt(2) / 4
    m = 0.5 * (hx + hy).clamp(min=0.0)
    body = torch.minimum(hx**2 + (hy - 1) ** 2, (hx - m) ** 2 + (hy - m) ** 2).sqrt() * torch.sign(hx - hy)
    return torch.where(hx + hy > 1.0, lobe, body) / k


def _cross(half_width: float, reach: float) -> list[tuple[float, float]]:
    """The 12 vertices of a plus sign: one arm's three corners, then the same turned by 90, 180, 270 degrees."""
    vertices = [(-half_width, -reach), (half_width, -reach), (half_width, -half_width)]
    for _ in range(3):
        vertices += [(-y, x) for x, y in vertices[-3:]]  # a quarter turn clockwise (y points down)
    return vertices


# name -> signed distance in the local frame (x right, y down, the shape inside the unit circle)
SHAPES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "circle": _circle,
    "square": _polygon([(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)]),
    "triangle": _polygon(_regular(3, 1.0, turn=-90.0)),
    "diamond": _polygon([(0.0, -1.0), (0.6, 0.0), (0.0, 1.0), (-0.6, 0.0)]),
    "star": _polygon(_regular(5, 1.0, inner=0.45)),
    "cross": _polygon(_cross(0.3, 0.9)),
    "ring": _ring,
    "heart": _heart,
}
NUM_MODES = len(SHAPES) * len(PALETTES)


def mode_name(label: int) -> str:
    """A readable name for a mode label, e.g. 'star/water'."""
    shape, palette = divmod(label, len(PALETTES))
    return f"{list(SHAPES)[shape]}/{PALETTES[palette].name}"


@dataclass(frozen=True)
class _Poses:
    """Per-image placement, all in image units where the image spans [-1, 1]."""

    centre: torch.Tensor  # (N, 2)
    scale: torch.Tensor  # (N,) radius of the shape's unit circle
    angle: torch.Tensor  # (N,) radians


def _draw_poses(n: int, gen: torch.Generator) -> _Poses:
    scale = 0.6 + 0.3 * torch.rand(n, generator=gen)
    # keep the unit circle inside [-0.95, 0.95] so the border (and the corners) stay white
    centre = (torch.rand(n, 2, generator=gen) * 2 - 1) * (0.95 - scale)[:, None]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * MAX_ROTATION
    return _Poses(centre, scale, angle)


def _colours(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(N, 3 roles, 3 RGB) colours in [0, 1]: body, accent, outline, each jittered by a few levels."""
    table = torch.tensor([[p.body, p.accent, p.outline] for p in PALETTES], dtype=torch.float32) / 255
    base = table[labels % len(PALETTES)]  # (N, 3, 3)
    jitter = (torch.rand(base.shape, generator=gen) * 2 - 1) * torch.tensor([0.05, 0.05, 0.03])[:, None]
    return (base + jitter).clamp(0.0, 1.0)


def _local_frame(poses: _Poses, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres mapped into each sprite's local frame: x and y, each (N, side, side)."""
    coords = (torch.arange(side, dtype=torch.float32) + 0.5) * (2.0 / side) - 1.0
    dx = coords[None, None, :] - poses.centre[:, 0, None, None]
    dy = coords[None, :, None] - poses.centre[:, 1, None, None]
    cos, sin = poses.angle.cos()[:, None, None], poses.angle.sin()[:, None, None]
    s = poses.scale[:, None, None]
    return (cos * dx + sin * dy) / s, (cos * dy - sin * dx) / s


@functools.cache
def _fields() -> torch.Tensor:
    """Every shape's signed distance sampled on a FIELD_SIZE grid over [-FIELD_RADIUS, FIELD_RADIUS]^2.

    (K, 1, FIELD_SIZE, FIELD_SIZE), computed once per process. Distances are 1-Lipschitz, so sampling this
    table bilinearly is nearly exact and far cheaper than evaluating polygons at every pixel of every sprite.
    """
    coords = ((torch.arange(FIELD_SIZE, dtype=torch.float32) + 0.5) / FIELD_SIZE * 2 - 1) * FIELD_RADIUS
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([sdf(x, y) for sdf in SHAPES.values()])[:, None]


def _distance(shape: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Signed distance of the shape at local points (N, H, W), read from its table (outside it: far away)."""
    n, h, w = x.shape
    grid = torch.empty(1, n * h, w, 2)  # all sprites in one call; filling is cheaper than torch.stack
    grid[0, ..., 0], grid[0, ..., 1] = x.view(n * h, w) / FIELD_RADIUS, y.view(n * h, w) / FIELD_RADIUS
    field = _fields()[shape : shape + 1]
    distance = F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return distance.view(n, h, w)


def _coverage(distance: torch.Tensor, pixel: float) -> torch.Tensor:
    """Fraction of a pixel inside the shape, from its signed distance (image units): the antialiased mask."""
    return (0.5 - distance / pixel).clamp_(0.0, 1.0)


def _shrink(mask: torch.Tensor) -> torch.Tensor:
    """Area-downsample (N, H, W) by SUPERSAMPLE: each block's mean (strided sums beat avg_pool2d on the CPU)."""
    k = SUPERSAMPLE
    return sum(mask[:, i::k, j::k] for i in range(k) for j in range(k)) / (k * k)


def _render(shape: int, poses: _Poses, colours: torch.Tensor, image_size: int) -> torch.Tensor:
    """Sprites of one shape: float (N, 3, image_size, image_size) in [0, 1] on white."""
    side = image_size * SUPERSAMPLE
    x, y = _local_frame(poses, side)
    scale, pixel = poses.scale[:, None, None], 2.0 / side
    distance = _distance(shape, x, y) * scale  # (N, side, side), image units
    outline = max(OUTLINE, 1.2 * pixel * SUPERSAMPLE)
    inner = _coverage(distance + outline, pixel)
    stripe = torch.minimum(_coverage(((y - STRIPE[0]).abs() - STRIPE[1]) * scale, pixel), inner)
    masks = torch.stack([_shrink(m) for m in (_coverage(distance, pixel), inner, stripe)], dim=1)  # (N, 3, S, S)
    # the layers nest (stripe in body in outline), so painting them in turn over white is one linear map
    body, accent, edge = colours.unbind(1)  # (N, 3) each
    paint = torch.stack((edge - 1, body - edge, accent - body), dim=2)  # (N, 3 RGB, 3 layers)
    return torch.einsum("nck,nkhw->nchw", paint, masks).add_(1.0)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread, then restore the setting.

    Rendering is many small tensor ops; with two or more threads each op waits at a barrier for every thread,
    and when another process (a parallel Tune trial) holds a core those waits cost a scheduler tick each:
    0.4 s became 30 s in a measurement on 2 cores. One thread is a little slower on an idle CPU and never
    falls off that cliff.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generate(n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n sprites as uint8 (n, 3, image_size, image_size) and their int64 mode labels, balanced across modes."""
    with _one_thread():
        return _generate(n, image_size, seed)


def _generate(n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_MODES
    poses, colours = _draw_poses(n, gen), _colours(labels, gen)
    images = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    chunk = max(1, CHUNK_PIXELS // (image_size * SUPERSAMPLE) ** 2)  # a few sprites at a time: bounded memory
    for shape in range(len(SHAPES)):
        for rows in (labels // len(PALETTES) == shape).nonzero().squeeze(1).split(chunk):
            pose = _Poses(poses.centre[rows], poses.scale[rows], poses.angle[rows])
            images[rows] = _render(shape, pose, colours[rows], image_size).mul_(255).round_().to(torch.uint8)
    return images, labels


def load(spec: str, image_size: int, channels: int, seed: int, size: int | None) -> Dataset:
    images, labels = generate(DEFAULT_SIZE if size is None else size, image_size, seed)
    return Dataset(spec, "image", match_channels(images, channels), labels, NUM_MODES, background=1.0)
