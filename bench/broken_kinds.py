"""The broken configs users arrive with, as rows of data, and the sample bar a fix must pass (bench/compute_to_healthy).

A kind is a model, its presets and the overrides that break it, with the label the diagnosis should give. The toy2d
kinds are the diagnosis corpus's recipes (bench/diagnosis.py); the image kinds are the runs the corpus recorded with
`gantune train` (guide 000's post-mortem config on wgan_large, guide 004's strong discriminator on cgan) and guide
003's camel GAN at its fixed batch of 1024.

"Healthy" for the benchmark is judged from the samples as well as by the diagnosis core, so that no method wins by a
lenient label: on the 2-D mixtures every mode captured and a high-quality share at least HQ_NEAR of what the found
config (search_spaces/found/) reaches in the same epochs on the same seed; on images a quality at most IMAGE_MARGIN
below what the model's seed config (cpu preset) reaches in the same epochs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

FOUND = Path(__file__).resolve().parents[1] / "search_spaces" / "found"
HQ_NEAR = 0.6  # a fix's high-quality share must be at least this share of the found config's at the same epochs
IMAGE_MARGIN = 0.05  # a fix's quality at most this far below the seed config's (0.05: KID within ~3x)
_PER_RUN = ("num_epochs", "seed", "checkpoint_every", "dataset_size", "quality_every")  # the bench's, not the file's
TOY_BASE = MappingProxyType({"dataset_size": 2000, "quality_every": 5})
IMAGE_BASE = MappingProxyType({"dataset_size": 480, "quality_every": 4})


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    model: str
    presets: str  # comma-separated presets over the model's seed config ("" for none)
    overrides: Mapping[str, Any]  # what breaks it (field names)
    expect: str  # the diagnosis the broken run should get; the table shows what it got
    quick: bool  # in the --quick subset
    source: str  # where the recipe comes from


_UNSTABLE = {"learning_rate_d": 1e-2, "learning_rate_g": 1e-2, "beta1": 0.9, "beta2": 0.99, "lambda_gp": 0.1,
             "n_critic": 1}
KINDS = (
    Kind("critic_dominance", "toy2d", "", {"lambda_gp": 0.0, "learning_rate_g": 3e-3, "n_critic": 1},
         "discriminator_dominant", True, "corpus discriminator_dominant_no_penalty (guide 000's failure in 2-D)"),
    Kind("generator_dominance", "toy2d", "", {"learning_rate_d": 1e-7}, "generator_dominant", True,
         "corpus generator_dominant_frozen_critic"),
    Kind("unstable", "toy2d", "", _UNSTABLE, "unstable", True,
         "corpus unstable_from_start: hot rates, weak penalty, Adam (0.9, 0.99)"),
    Kind("diverged", "toy2d", "", {"learning_rate_d": 0.5, "learning_rate_g": 0.5, "lambda_gp": 0.0}, "diverged",
         True, "corpus diverged_from_start"),
    Kind("critic_dominance_images", "wgan_large", "cpu,postmortem", dict(IMAGE_BASE), "discriminator_dominant",
         False, "guide 000's broken config at the cpu preset"),
    Kind("bce_strong_d", "cgan", "cpu,strong_d", {**IMAGE_BASE, "learning_rate_d": 2e-3}, "discriminator_dominant",
         False, "guide 004's run before its fixes (corpus discriminator_dominant_cgan_cpu)"),
    Kind("bce_slow_g", "cgan", "cpu,strong_d", {**IMAGE_BASE, "learning_rate_d": 2e-3, "learning_rate_g": 5e-5},
         "discriminator_dominant", False, "guide 004's picture with a slow generator (corpus ..._slow_g_cpu)"),
    Kind("bce_collapse", "dcgan", "cpu,triage", {"quality_every": 4}, "mode_collapse", False,
         "guide 003's camel GAN at its batch of 1024 (D at chance); the label is not verified here"),
)


def kinds(names: list[str] | None, quick: bool) -> list[Kind]:
    """The kinds to run: those named, else the quick subset or all; an unknown name lists the valid ones."""
    by_name = {k.name: k for k in KINDS}
    unknown = [n for n in names or () if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown kind {unknown[0]!r}; valid kinds: {', '.join(by_name)}")
    if names:
        return [by_name[n] for n in names]
    return [k for k in KINDS if k.quick or not quick]


def config(kind: Kind, seed: int, epochs: int, overrides: Mapping[str, Any] | None = None) -> Any:
    """The kind's broken config (or, with `overrides`, the same base with those instead of the breaking ones)."""
    from trainables.config import build_config
    from trainables.registry import get_model, preset_overrides

    spec = get_model(kind.model)
    base = TOY_BASE if spec.data_kind == "points" else {}
    layers = [preset_overrides(spec, kind.presets), base, kind.overrides if overrides is None else overrides]
    per_run = {"num_epochs": epochs, "seed": seed, "checkpoint_every": epochs, "sample_every": epochs}  # one grid
    return build_config(spec.defaults, *layers, per_run)


def train_once(cfg: Any, out: Path) -> Path:
    """Train `cfg` into `out` unless a finished run is there (the benchmark resumes; an unfinished one is redone)."""
    import shutil

    import torch

    from trainables.run import train

    log = out / "losses.csv"
    if not log.is_file() or len(log.read_text().splitlines()) - 1 < cfg.num_epochs:
        shutil.rmtree(out, ignore_errors=True)
        torch.set_num_threads(2)
        train(cfg, out, torch.device("cpu"))
    return out


@dataclasses.dataclass(frozen=True)
class Bar:
    """What the samples of a healthy run reach: every mode and a high-quality share (2-D), or a quality (images)."""

    modes: float | None
    hq: float | None
    quality: float | None

    def passes(self, row: Mapping[str, Any]) -> tuple[bool, str]:
        if self.modes is not None:
            modes, hq = float(row.get("modes_captured", math.nan)), float(row.get("high_quality_pct", math.nan))
            ok = modes >= self.modes and hq >= self.hq
            return ok, f"{modes:g}/{self.modes:g} modes, {hq:.1f}% high quality (bar {self.hq:.1f}%)"
        quality = float(row.get("quality", math.nan))
        return quality >= self.quality, f"quality {quality:.4g} (bar {self.quality:.4g})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bar(kind: Kind, seed: int, epochs: int, root: Path) -> Bar:
    """The sample bar for this kind, seed and length: from a run of the found (2-D) or seed (images) config."""
    from trainables.registry import get_model

    spec = get_model(kind.model)
    if spec.data_kind == "points":
        from trainables.config import overrides_from

        saved = json.loads((FOUND / f"toy2d_{spec.defaults['data']}.json").read_text())
        found = {k: v for k, v in overrides_from(saved).items() if k not in _PER_RUN}
        row = last_measured(train_once(config(kind, seed, epochs, found), root / f"reference_{kind.model}_s{seed}"))
        return Bar(float(row["modes_captured"]), HQ_NEAR * float(row["high_quality_pct"]), None)
    cpu = {**IMAGE_BASE} if kind.presets.startswith("cpu") else {}
    reference = dataclasses.replace(kind, presets="cpu" if kind.presets.startswith("cpu") else "")
    row = last_measured(train_once(config(reference, seed, epochs, cpu), root / f"reference_{kind.model}_s{seed}"))
    return Bar(None, None, float(row["quality"]) - IMAGE_MARGIN)


def last_measured(run_dir: Path) -> Mapping[str, Any]:
    """The last row of a run's losses.csv that measured quality (the last epoch always does)."""
    import pandas as pd

    frame = pd.read_csv(Path(run_dir) / "losses.csv")
    measured = frame[frame["quality"].notna()] if "quality" in frame else frame.iloc[0:0]
    return measured.iloc[-1].to_dict() if len(measured) else {}
