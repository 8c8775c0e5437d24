"""Guide 002's own collapse diagnostic, exactly as its code computes it (issue 26): five checks on 20 samples.

| check                                          | 3 points | 2 points |
|------------------------------------------------|----------|----------|
| std of all values                              | < 0.01   | < 0.05   |
| mean over samples of each sample's variance    | < 0.001  | < 0.01   |
| mean absolute difference over pairs of samples | < 0.01   | < 0.05   |
| unique values (4 decimals) / all values        | < 0.01   | < 0.1    |
| range, max - min                               |          | < 0.1    |

Its maximum is 14, though the guide prints "/15". It reads absolute values, not values relative to the data as
gantune's own 0-14 `collapse_score` does (trainables.metrics), so it depends on the image size: 20 RGB samples of
64x64 hold 245,760 values but only 20,001 four-decimal values exist in [-1, 1], so even uniform noise there has a
unique ratio below 0.1 and scores 2; at 32x32 (61,440 values) it scores 0.
"""

from __future__ import annotations

import dataclasses

import torch

SAMPLES = 20  # the guide's diagnostic reads the first 20 samples
DECIMALS = 4


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    thresholds: tuple[tuple[float, int], ...]  # (below this, points), most severe first

    def points(self, value: float) -> int:
        if value != value:  # NaN: non-finite samples, the worst case
            return self.thresholds[0][1]
        return next((p for limit, p in self.thresholds if value < limit), 0)


CHECKS = (
    Check("global_std", ((0.01, 3), (0.05, 2))),
    Check("sample_variance", ((0.001, 3), (0.01, 2))),
    Check("pairwise_difference", ((0.01, 3), (0.05, 2))),
    Check("unique_ratio", ((0.01, 3), (0.1, 2))),
    Check("value_range", ((0.1, 2),)),
)
MAX_SCORE = sum(c.thresholds[0][1] for c in CHECKS)  # 14


def guide_values(samples: torch.Tensor) -> dict[str, float]:
    """The five values the diagnostic reads, from the first 20 samples (N, ...)."""
    flat = samples[:SAMPLES].detach().float().flatten(1)  # (n, D)
    if not torch.isfinite(flat).all():  # NaN values: every check at its worst
        return {c.name: float("nan") for c in CHECKS}
    n = flat.shape[0]
    pairs = torch.triu_indices(n, n, 1, device=flat.device)
    diffs = (flat[pairs[0]] - flat[pairs[1]]).abs().mean() if n > 1 else flat.new_tensor(float("nan"))
    unique = torch.unique(torch.round(flat, decimals=DECIMALS)).numel()
    return {"global_std": float(flat.std()), "sample_variance": float(flat.var(dim=1).mean()),
            "pairwise_difference": float(diffs), "unique_ratio": unique / flat.numel(),
            "value_range": float(flat.max() - flat.min())}


def guide_points(samples: torch.Tensor) -> dict[str, int]:
    """Each check's points (the evidence behind the score)."""
    values = guide_values(samples)
    return {c.name: c.points(values[c.name]) for c in CHECKS}


def guide_score(samples: torch.Tensor) -> int:
    """Guide 002's collapse score, 0 (diverse) to 14 (collapsed)."""
    return sum(guide_points(samples).values())
