"""Per-epoch sample statistics on a fixed noise batch, and a critic probe (does it separate real from fake?)."""

from __future__ import annotations

import math

import torch

from .data import Dataset, intensity, mean_pairwise

MODE_SHARE = 0.1  # a 2-D mode counts when >= a tenth of its fair share of the samples lie within 3 std of it
CLASS_SHARE = 0.03  # a digit class counts when >= 3% of the samples are confidently classified as it


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(score of a real > score of a fake), ties counting half."""
    above = (pos[:, None] > neg[None]).float().mean()
    return float(above + 0.5 * (pos[:, None] == neg[None]).float().mean())


def mixture_stats(fakes: torch.Tensor, data: Dataset) -> dict:
    nearest = torch.cdist(fakes, data.modes).min(1)
    within = nearest.values < 3 * data.std
    counts = torch.bincount(nearest.indices[within], minlength=len(data.modes))
    fair = len(fakes) / len(data.modes)
    return {
        "modes": int((counts >= MODE_SHARE * fair).sum()),
        "n_modes": len(data.modes),
        "hq": float(within.float().mean()),
        "spread": float(fakes.std(0).mean() / data.eval_real.std(0).mean()),
    }


def image_stats(fakes: torch.Tensor, data: Dataset) -> dict:
    near = torch.cdist(fakes.flatten(1), data.x.flatten(1)).min(1).values.mean()
    prob = data.classifier.predict_proba(intensity(fakes).numpy())
    sure = prob.max(1) >= 0.6
    counts = torch.bincount(torch.from_numpy(prob.argmax(1)[sure]), minlength=10)
    return {
        "near_real": float(near / data.scale),
        "classes": int((counts >= CLASS_SHARE * len(fakes)).sum()),
        "sample_std": float(fakes.std(0).mean()),
    }


def critic_scores(critic: torch.nn.Module, batch: torch.Tensor, batchnorm: bool) -> torch.Tensor:
    was_training = critic.training
    critic.train(batchnorm)  # dropout off; BatchNorm sees one-kind batches, as in training
    scores = critic(batch).squeeze(1)
    critic.train(was_training)
    return scores


@torch.no_grad()
def probe(gen, critic, data: Dataset, z: torch.Tensor, prev: torch.Tensor | None, batchnorm: bool) -> tuple:
    """(trace row, the fixed-noise samples) for the current networks."""
    fakes = gen(z)
    if not torch.isfinite(fakes).all():
        return {"finite": 0}, fakes
    s_real = critic_scores(critic, data.eval_real, batchnorm)
    s_fake = critic_scores(critic, fakes, batchnorm)
    shift = math.nan if prev is None else float((fakes - prev).flatten(1).norm(dim=1).mean() / data.scale)
    row = {
        "finite": 1,
        "diversity": mean_pairwise(fakes) / data.scale,
        "shift": shift,
        "auc": auc(s_real, s_fake),
        "gap": float(s_real.mean() - s_fake.mean()),
    }
    row.update(mixture_stats(fakes, data) if data.kind == "2d" else image_stats(fakes, data))
    return row, fakes
