"""Quality and mode-coverage metrics on real data and real trainings (no mocks, no downloads)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import tiny_overrides
from trainables.config import build_config
from trainables.data import Dataset, load_dataset, points, to_float
from trainables.features import classifier_for
from trainables.quality import copies_training, reference, score
from trainables.registry import get_model
from trainables.run import evaluate, train

CPU = torch.device("cpu")


def halves(data: Dataset) -> tuple[Dataset, torch.Tensor]:
    """Two disjoint random halves: the reference dataset and the other half's samples."""
    order = torch.randperm(len(data.tensor), generator=torch.Generator().manual_seed(7))
    a, b = order[: len(order) // 2], order[len(order) // 2:]
    ref_part = dataclasses.replace(data, tensor=data.tensor[a], labels=data.labels[a])
    other = data.tensor[b]
    return ref_part, to_float(other) if data.kind == "image" else other


def test_digit_classifier_is_at_least_95_percent_right_on_every_held_out_digit():
    clf = classifier_for(load_dataset("digits", 32, 3))
    print(f"digits classifier: {clf.accuracy:.4f} held out; per digit {clf.per_class}")
    assert len(clf.per_class) == 10
    assert min(clf.per_class) >= 0.95


def test_sprite_classifier_reads_the_48_modes_of_unseen_sprites():
    clf = classifier_for(load_dataset("sprites", 32, 3))
    print(f"sprites classifier: {clf.accuracy:.4f} on the run's own (unseen) sprites; worst mode "
          f"{min(clf.per_class):.2f}")
    assert len(clf.per_class) == 48
    assert clf.accuracy >= 0.95


def test_real_images_against_real_images_score_near_the_ideal():
    ref_part, other = halves(load_dataset("sprites", 32, 3))
    ref = reference(ref_part)
    m = score(other, ref)
    assert m["quality"] > 0.9
    assert abs(m["kid"]) < 0.05
    assert m["modes_hit"] == 48
    assert m["mode_kl"] < 0.15  # 480 samples over 48 modes: sampling noise alone gives about 0.05
    assert min(m["precision"], m["recall"], m["coverage"]) > 0.9
    assert not copies_training(m, ref)


@pytest.mark.parametrize("name,modes", [("ring8", 8), ("grid25", 25)])
def test_real_points_capture_every_mode_at_the_3_sigma_rate(name, modes):
    ref_part, other = halves(load_dataset(name, 32))
    m = score(other, reference(ref_part))
    assert m["modes_captured"] == modes
    assert 97.5 < m["high_quality_pct"] < 99.8  # a perfect sampler: 1 - exp(-9/2) = 98.9%
    assert m["reverse_kl"] < 0.02
    assert 0.95 < m["mode_spread"] < 1.05
    assert m["quality"] > 0.9


def test_mode_spread_measures_how_tight_the_modes_are_against_the_data():
    ref = reference(load_dataset("ring8", 32))
    centres, std = points.mode_centres("ring8"), points.mode_std("ring8")
    gen = torch.Generator().manual_seed(3)
    labels = torch.arange(2500) % 8
    half = score(centres[labels] + 0.5 * std * torch.randn(2500, 2, generator=gen), ref)
    on_centres = score(centres[labels], ref)
    assert half["high_quality_pct"] > 99.5 and 0.45 < half["mode_spread"] < 0.57  # all high quality, half as wide
    assert on_centres["high_quality_pct"] == 100.0 and on_centres["mode_spread"] == 0.0


def test_constant_and_near_constant_outputs_score_far_worse_than_real_data():
    ref_part, other = halves(load_dataset("sprites", 32, 3))
    ref = reference(ref_part)
    real = score(other, ref)
    constant = other[:1].expand_as(other).clone()  # one real sprite, repeated: the most flattering collapse
    gray = torch.zeros_like(other)  # guide 002's uniform gray squares
    for fake in (constant, constant + 0.02 * torch.randn_like(constant), gray):
        m = score(fake, ref)
        assert m["quality"] < 0.2 * real["quality"]
        assert m["modes_hit"] <= 2 and m["mode_kl"] > 3.0  # log(48) = 3.87 for a single mode
        assert m["recall"] < 0.05 and m["coverage"] < 0.05
        assert m["kid"] > 10 * max(real["kid"], 0.01)


def test_a_generator_that_copies_training_images_is_flagged():
    data = load_dataset("digits", 32, 3)
    ref_part, held_out = halves(data)
    ref = reference(ref_part)
    copies = to_float(ref_part.tensor) + 0.01 * torch.randn(ref_part.tensor.shape)
    flagged = score(copies, ref)
    honest = score(held_out, ref)
    assert flagged["copy_frac"] > 0.9 and copies_training(flagged, ref)
    assert honest["copy_frac"] < 0.05 and not copies_training(honest, ref)


def image_run(tmp_path, **extra):
    """A wgan_small at 32 px on sprites that learns within a CPU minute: G after every 2 critic steps."""
    cfg = build_config(get_model("wgan_small").defaults, {
        "image_size": 32, "gen_feature_maps": 16, "disc_feature_maps": 16, "batch_size": 32, "n_critic": 2,
        "critic_schedule": "standard", "learning_rate_g": 3e-4, "learning_rate_d": 3e-4, "num_epochs": 18,
        "checkpoint_every": 6, "quality_every": 6, "quality_samples": 500, **extra})
    train(cfg, tmp_path, CPU)
    return tmp_path


@pytest.mark.slow
def test_snapshots_of_one_training_score_in_order_and_better_than_a_collapsing_config(tmp_path):
    healthy = image_run(tmp_path / "healthy")
    snaps = [evaluate(healthy, healthy / "checkpoints" / f"checkpoint_epoch_{e:04d}.pt", 500) for e in (5, 11, 17)]
    print("snapshots:", [(s["epochs_trained"], round(s["quality"], 4), round(s["kid"], 1)) for s in snaps])
    assert snaps[0]["quality"] < snaps[1]["quality"] < snaps[2]["quality"]
    assert snaps[0]["kid"] > snaps[1]["kid"] > snaps[2]["kid"]
    # guide 000's failure, exaggerated: a critic 1000x faster than a starved generator
    starved = image_run(tmp_path / "starved", learning_rate_g=1e-6, learning_rate_d=1e-3)
    bad = evaluate(starved)
    print("starved:", round(bad["quality"], 4), round(bad["kid"], 1))
    assert bad["kid"] > 3 * snaps[2]["kid"]
    assert bad["quality"] < snaps[2]["quality"]


def toy_run(tmp_path, **extra) -> dict:
    cfg = build_config(get_model("toy2d").defaults, {"num_epochs": 15, "quality_every": 0, **extra})
    return train(cfg, tmp_path, CPU).quality()


@pytest.mark.slow
def test_a_toy_config_that_collapses_scores_far_worse_than_a_healthy_one(tmp_path):
    healthy = toy_run(tmp_path / "ok", gen_feature_maps=256, disc_feature_maps=256, learning_rate_g=3e-4,
                      learning_rate_d=3e-4, lambda_gp=0.75, ema_decay=0.9)
    # one critic step per generator step with big batches: the generator chases the critic between modes
    collapsed = toy_run(tmp_path / "bad", n_critic=1, batch_size=256, learning_rate_g=5e-4, learning_rate_d=7e-4,
                        lambda_gp=1.7)
    print("healthy", healthy, "\ncollapsed", collapsed)
    assert healthy["modes_captured"] == 8
    assert collapsed["high_quality_pct"] < 0.5 * healthy["high_quality_pct"]
    assert collapsed["quality"] < 0.5 * healthy["quality"]


def test_the_trainer_reports_quality_every_few_epochs_and_on_the_last(tmp_path):
    cfg = build_config(get_model("toy2d").defaults, {"num_epochs": 5, "quality_every": 2, "dataset_size": 1000})
    train(cfg, tmp_path, CPU)
    import pandas as pd

    losses = pd.read_csv(tmp_path / "losses.csv")
    measured = losses.loc[losses["quality"].notna(), "epoch"].tolist()
    assert measured == [1, 3, 4]
    assert losses.loc[losses["quality"].notna(), "modes_captured"].between(0, 8).all()
    assert losses["modes_hit"].isna().all()  # a labelled-image metric: not applicable to points


def gantune(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_evaluate_prints_the_documented_json_keys(tmp_path):
    cfg = build_config(get_model("wgan_small").defaults, tiny_overrides())
    train(cfg, tmp_path / "img", CPU)
    toy = build_config(get_model("toy2d").defaults, {"num_epochs": 2, "dataset_size": 1000, "quality_every": 0})
    train(toy, tmp_path / "toy", CPU)
    everywhere = {"kid", "precision", "recall", "density", "coverage", "quality"}
    img = json.loads(gantune("evaluate", str(tmp_path / "img"), "--json", "--samples", "200").stdout)
    assert everywhere | {"modes_hit", "mode_kl", "copy_frac", "copies_training", "num_modes"} <= set(img)
    assert img["num_modes"] == 48 and img["samples"] == 200 and img["epochs_trained"] == 2
    pts = json.loads(gantune("evaluate", str(tmp_path / "toy"), "--json").stdout)
    assert everywhere | {"modes_captured", "high_quality_pct", "reverse_kl", "mode_spread"} <= set(pts)
    assert pts["samples"] == 2500
    first = tmp_path / "img" / "checkpoints" / "checkpoint_epoch_0000.pt"
    named = json.loads(gantune("evaluate", str(tmp_path / "img"), "--checkpoint", str(first), "--json").stdout)
    assert named["epochs_trained"] == 1
    table = gantune("evaluate", str(tmp_path / "toy")).stdout
    assert "modes captured" in table and "of 8" in table


def test_evaluate_bad_input_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for args, words in ((["evaluate", str(tmp_path / "nope")], "not found"),
                        (["evaluate", str(tmp_path / "empty")], "no checkpoints"),
                        (["evaluate", str(tmp_path / "empty"), "--checkpoint", str(bad)], "cannot be read"),
                        (["evaluate", str(tmp_path / "empty"), "--samples", "3"], "at least 10")):
        proc = gantune(*args)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
