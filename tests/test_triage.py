"""`gantune triage`: guide 003's Plan A / Plan B grid on real Ray and real training, and its verdict table."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest

from tuner.core.diagnosis import diagnose
from tuner.triage import Outcome, TriageRun, plan, verdict

SEED, TARGET = 42, 1024


def _outcomes(labels: dict[tuple[str, int, int], str], repeats: int = 3) -> list[Outcome]:
    """Outcomes for guide 003's default plan; `labels` maps (plan, seed, batch) to a label (default healthy)."""
    out = []
    for run in plan(SEED, repeats, [256, 512, 1024], [123, 456], TARGET):
        label = labels.get((run.plan, run.seed, run.batch_size), "healthy")
        out.append(Outcome(run, label, 10, ((0.69, 0.7),) * 10))
    return out


def test_plan_follows_guide_003():
    runs = plan(SEED, 3, [256, 512, 1024], [123, 456], TARGET)
    assert [(r.plan, r.seed, r.batch_size) for r in runs] == [
        ("A", 42, 1024), ("A", 42, 1024), ("A", 42, 1024), ("B", 42, 256), ("B", 42, 512), ("B", 123, 1024),
        ("B", 456, 1024)]


@pytest.mark.parametrize("failing, cause", [
    ({}, "none"),
    ({("B", 123, 1024): "mode_collapse"}, "random initialisation"),
    ({("A", 42, 1024): "mode_collapse", ("B", 123, 1024): "mode_collapse", ("B", 456, 1024): "mode_collapse"},
     "batch size"),
    ({("A", 42, 1024): "mode_collapse", ("B", 42, 512): "mode_collapse", ("B", 123, 1024): "mode_collapse"},
     "both"),
    ({k: "mode_collapse" for k in [("A", 42, 1024), ("B", 42, 256), ("B", 42, 512), ("B", 123, 1024),
                                   ("B", 456, 1024)]}, "neither"),
])
def test_verdict_reads_guide_003s_interpret_results_table(failing, cause):
    result = verdict(_outcomes(failing), SEED, TARGET)
    assert result.cause == cause
    if cause == "batch size":
        assert "cap BATCH_SIZE at 512" in result.recommendation
    if cause == "random initialisation":
        assert "42" in result.recommendation and "456" in result.recommendation


def test_repeats_that_differ_are_not_reproducible():
    outcomes = _outcomes({})
    first = outcomes[1]
    outcomes[1] = Outcome(first.run, first.label, first.epochs, ((0.69, 0.7),) * 4 + ((0.7, 0.7),) * 6)
    result = verdict(outcomes, SEED, TARGET, device="cuda")
    assert result.cause == "not reproducible" and "epoch 4" in result.evidence[0]
    assert "deterministic" in result.recommendation


def test_a_small_real_triage_reports_what_its_runs_did(tmp_path):
    cmd = [sys.executable, "-m", "tuner.cli", "triage", "dcgan", "--epochs", "5", "--repeats", "2",
           "--batch-sizes", "16,32", "--seeds", "7", "--name", "t", "--set", "DATASET_SIZE=64",
           "--set", "GEN_FEATURE_MAPS=8", "--set", "DISC_FEATURE_MAPS=8", "--set", "QUALITY_EVERY=0",
           "--set", "NUM_SAMPLES=32"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| A-") or line.startswith("| B-")]
    assert len(table) == 4  # 2 repeats of seed 42 at batch 32, seed 42 at 16, seed 7 at 32
    trials = {}
    for folder in (tmp_path / "triage" / "t").glob("*/losses.csv"):
        config = pd.read_json(folder.parent / "config.json", typ="series")
        frame = pd.read_csv(folder)
        trials.setdefault((int(config["SEED"]), int(config["BATCH_SIZE"])), []).append(frame)
    assert sorted((k, len(v)) for k, v in trials.items()) == [((7, 32), 1), ((42, 16), 1), ((42, 32), 2)]
    a, b = trials[(42, 32)]
    assert a[["d_loss", "g_loss"]].equals(b[["d_loss", "g_loss"]])  # Plan A on the CPU: bit for bit
    labels = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        labels.setdefault((int(cells[2]), int(cells[3])), set()).add(cells[5])
        assert cells[6] == ("success" if cells[5] == "healthy" else "failure")
    for key, frames in trials.items():
        assert labels[key] == {diagnose(f, "bce").label for f in frames}
    outcomes = [Outcome(TriageRun("A" if k == (42, 32) else "B", *k), diagnose(f, "bce").label, len(f),
                        tuple(zip(f["d_loss"], f["g_loss"]))) for k, fs in trials.items() for f in fs]
    expected = verdict(outcomes, 42, 32).cause
    assert f"verdict: {expected}" in done.stdout
    runs = mlflow.search_runs(experiment_names=["gantune"], filter_string="tags.`gantune.triage` = 't'")
    assert len(runs) == 5  # the parent and one child per run
    parent = runs[runs["tags.gantune.kind"] == "triage"].iloc[0]
    assert parent["tags.gantune.verdict"] == expected
