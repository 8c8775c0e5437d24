"""Per-epoch metrics: the sample statistics every trainer reports (their names: trainables.vocabulary).

The same per-epoch dict goes to losses.csv, to Ray Tune and to MLflow; the diagnosis reads it back from any.
Sample statistics compare a fixed-noise batch of generated samples with a fixed batch of real ones, so every
threshold below is relative to the data and holds for images of any size and for 2-D points alike.
"""

from __future__ import annotations

import dataclasses

import torch

from trainables.vocabulary import SAMPLE_METRICS

DECIMALS = 4  # unique values are counted after rounding to this many decimals (guide 002's diagnostic)
DUPLICATE_DISTANCE = 0.1  # a pair closer than this fraction of the real mean pairwise distance is a duplicate


@dataclasses.dataclass(frozen=True)
class CollapseCheck:
    """One of the seven checks of the collapse score: 1 point past `warn`, 2 past `critical`."""

    metric: str
    warn: float
    critical: float
    low_is_bad: bool  # True: values below the thresholds are bad; False: values above are
    why: str

    def points(self, value: float) -> int:
        if value != value:  # NaN: the samples are not finite, the worst case
            return 2
        bad = (lambda t: value < t) if self.low_is_bad else (lambda t: value > t)
        return 2 if bad(self.critical) else 1 if bad(self.warn) else 0


# Guide 002's diagnostic as a 0-14 score (seven checks, two points each): a collapsed generator had an
# output range of 0.06 instead of 2, 113 unique values, and uniform gray output. 0-4 healthy, 8+ collapsed.
COLLAPSE_CHECKS = (
    CollapseCheck("range_ratio", 0.5, 0.1, True, "output range shrinks toward a constant"),
    CollapseCheck("unique_frac", 0.05, 0.01, True, "few distinct output values (002: 113 of 245,760)"),
    CollapseCheck("std_ratio", 0.5, 0.1, True, "samples have no internal structure (flat squares)"),
    CollapseCheck("diversity_ratio", 0.5, 0.1, True, "samples are closer to each other than real data is"),
    CollapseCheck("duplicate_frac", 0.1, 0.5, False, "many samples are near-duplicates of each other"),
    CollapseCheck("mean_shift", 0.5, 1.0, False, "the average sample drifts from the data's average"),
    CollapseCheck("color_ratio", 0.5, 0.1, True, "colour drains toward gray (RGB images only)"),
)
COLLAPSE_MAX = 2 * len(COLLAPSE_CHECKS)


@dataclasses.dataclass(frozen=True)
class Reference:
    """Statistics of a fixed real batch, computed once per run."""

    range: float
    levels: int  # distinct rounded values the data's range holds
    sample_std: float
    pair_distance: float
    duplicate_frac: float
    mean: torch.Tensor  # per-channel (images) or per-coordinate (points) mean
    value_std: float
    chroma: float | None  # mean per-pixel channel spread for RGB images, else None
    checker: float | None = None  # images: the share of spectral power on the Nyquist row and column
    high_freq: float | None = None  # images: the share of spectral power above half the Nyquist frequency


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.detach().float().flatten(1)  # (N, D)


def _channel_means(x: torch.Tensor) -> torch.Tensor:
    return x.float().mean(dim=(0, 2, 3)) if x.dim() == 4 else x.float().mean(dim=0)


def _chroma(x: torch.Tensor) -> torch.Tensor | None:
    if x.dim() != 4 or x.shape[1] != 3:
        return None
    x = x.float()
    return (x.amax(dim=1) - x.amin(dim=1)).mean()


HIGH_FREQUENCY = 0.25  # cycles per pixel: above this radius (half of Nyquist's 0.5) is "high frequency"


def spectrum_shares(images: torch.Tensor) -> tuple[float, float]:
    """(checkerboard, high-frequency) shares of a batch's spectral power: the power at the Nyquist frequency of
    either axis (a stride-2 transposed convolution's period-2 grid, guide 001 4.3), and the power above half of
    it (edges and texture; blur removes it, guide 001 4.2), each over all power but the mean's."""
    gray = images.float().mean(dim=1)
    gray = gray - gray.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(gray).abs().square().mean(dim=0)
    fy = torch.fft.fftfreq(power.shape[0], device=power.device).abs()[:, None]
    fx = torch.fft.fftfreq(power.shape[1], device=power.device).abs()[None, :]
    total = power.sum().clamp(min=1e-12)
    nyquist = (fy == 0.5) | (fx == 0.5)
    high = (fx.square() + fy.square()).sqrt() > HIGH_FREQUENCY
    return float(power[nyquist].sum() / total), float(power[high].sum() / total)


def _spectral(fake: torch.Tensor, ref: Reference, transposed: bool) -> dict[str, float]:
    """Checkerboard and sharpness ratios against the real batch's (1 = like the data); NaN for points, and the
    checkerboard ratio only for a generator whose last layer is a transposed convolution (guide 001 4.3)."""
    if ref.checker is None or ref.high_freq is None:  # points
        return {"checkerboard_ratio": float("nan"), "sharpness_ratio": float("nan")}
    checker, high = spectrum_shares(fake)
    return {"checkerboard_ratio": checker / max(ref.checker, 1e-6) if transposed else float("nan"),
            "sharpness_ratio": high / max(ref.high_freq, 1e-6)}


def _pair_stats(flat: torch.Tensor, threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean pairwise L2 distance and the fraction of pairs closer than threshold (default: 10% of the mean)."""
    dist = torch.pdist(flat)
    mean = dist.mean()
    limit = DUPLICATE_DISTANCE * mean if threshold is None else threshold
    return mean, (dist < limit).float().mean()


def reference_stats(real: torch.Tensor) -> Reference:
    flat = _flat(real)
    pair, dup = _pair_stats(flat)
    chroma = _chroma(real)
    span = float(flat.max() - flat.min())
    checker, high = spectrum_shares(real) if real.dim() == 4 else (None, None)
    return Reference(
        range=span, levels=int(round(span * 10**DECIMALS)) + 1, sample_std=float(flat.std(dim=1).mean()),
        pair_distance=float(pair), duplicate_frac=float(dup), mean=_channel_means(real).cpu(),
        value_std=float(flat.std()), chroma=None if chroma is None or chroma < 0.02 else float(chroma),
        checker=checker, high_freq=high,
    )


def sample_stats(fake: torch.Tensor, ref: Reference, transposed: bool = False) -> dict[str, float]:
    """The sample statistics of SAMPLE_METRICS for a batch of generated samples; `transposed`: the generator's
    last layer is a transposed convolution (the checkerboard ratio is measured only then)."""
    flat = _flat(fake)
    if not torch.isfinite(flat).all():
        nan = float("nan")
        return {**{k: nan for k in SAMPLE_METRICS}, "collapse_score": float(COLLAPSE_MAX)}
    pair, dup = _pair_stats(flat, DUPLICATE_DISTANCE * ref.pair_distance)
    n_unique = torch.unique(torch.round(flat, decimals=DECIMALS)).numel()
    chroma = _chroma(fake)
    lo, hi = flat.min(), flat.max()
    values = torch.stack([lo, hi, hi - lo, flat.std(dim=1).mean(), pair, dup,
                          (_channel_means(fake).cpu() - ref.mean).norm().to(lo.device),
                          chroma if chroma is not None else lo * 0]).tolist()  # one read-back (plus unique above)
    stats = dict(zip(("out_min", "out_max", "out_range", "sample_std", "diversity_ratio", "duplicate_frac",
                      "mean_shift", "color_ratio"), values))
    stats["unique_frac"] = n_unique / min(flat.numel(), ref.levels)
    stats["diversity_ratio"] /= max(ref.pair_distance, 1e-12)
    stats["duplicate_frac"] = max(0.0, stats["duplicate_frac"] - ref.duplicate_frac)
    stats["mean_shift"] /= max(ref.value_std, 1e-12)
    stats["color_ratio"] = stats["color_ratio"] / ref.chroma if ref.chroma else float("nan")
    stats.update(_spectral(fake, ref, transposed))
    stats["collapse_score"] = float(collapse_score(stats, ref))
    return stats


def check_values(stats: dict[str, float], ref: Reference) -> dict[str, float]:
    """The value each collapse check reads, from a row of sample statistics."""
    return {
        "range_ratio": stats["out_range"] / max(ref.range, 1e-12),
        "unique_frac": stats["unique_frac"],
        "std_ratio": stats["sample_std"] / max(ref.sample_std, 1e-12),
        "diversity_ratio": stats["diversity_ratio"],
        "duplicate_frac": stats["duplicate_frac"],
        "mean_shift": stats["mean_shift"],
        "color_ratio": stats["color_ratio"],
    }


def collapse_score(stats: dict[str, float], ref: Reference) -> int:
    """0-14; a check that does not apply (color_ratio on grayscale images or points) scores 0."""
    values = check_values(stats, ref)
    applicable = [c for c in COLLAPSE_CHECKS if not (c.metric == "color_ratio" and ref.chroma is None)]
    return sum(check.points(values[check.metric]) for check in applicable)
