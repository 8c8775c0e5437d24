"""Real tiny trainings on the CPU: determinism, exact resume, the run layout, learning, and collapse signals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tests.conftest import tiny_overrides
from trainables.config import build_config
from trainables.metrics import COLLAPSE_MAX
from trainables.registry import get_model
from trainables.run import RunPaths, load_checkpoint, resumed_config, train
from trainables.vocabulary import COLUMNS

CPU = torch.device("cpu")


def tiny(model: str = "wgan_small", **extra):
    return build_config(get_model(model).defaults, tiny_overrides(**extra))


def test_run_directory_has_the_seed_layout(tmp_path):
    cfg = tiny("wgan_large", num_epochs=2)
    train(cfg, tmp_path, CPU)
    paths = RunPaths(tmp_path)
    losses = pd.read_csv(paths.losses)
    assert list(losses.columns[:3]) == ["epoch", "d_loss", "g_loss"]
    assert tuple(losses.columns) == COLUMNS
    assert losses["epoch"].tolist() == [0, 1]
    assert losses[["d_loss", "g_loss", "gp", "w_dist"]].notna().all().all()
    assert losses["collapse_score"].between(0, COLLAPSE_MAX).all()
    assert json.loads(paths.config.read_text())["MODEL"] == "wgan_large"
    assert paths.sample(0).is_file() and paths.sample(1).is_file()
    state = torch.load(paths.checkpoint(1), weights_only=True)
    assert state["epoch"] == 2 and state["ema"] is not None
    assert set(state) >= {"generator", "critic", "opt_g", "opt_d", "rng", "config"}


@pytest.mark.parametrize("schedule", ["seed", "standard"])
def test_same_config_and_seed_give_the_same_losses(tmp_path, schedule):
    cfg = tiny(critic_schedule=schedule, n_critic=3)
    train(cfg, tmp_path / "a", CPU)
    train(cfg, tmp_path / "b", CPU)
    a = pd.read_csv(tmp_path / "a" / "losses.csv").drop(columns=["epoch_time_s", "images_per_s"])
    b = pd.read_csv(tmp_path / "b" / "losses.csv").drop(columns=["epoch_time_s", "images_per_s"])
    pd.testing.assert_frame_equal(a, b)
    other = tiny(critic_schedule=schedule, n_critic=3, seed=7)
    train(other, tmp_path / "c", CPU)
    c = pd.read_csv(tmp_path / "c" / "losses.csv")
    assert not c["d_loss"].equals(a["d_loss"])


def test_the_two_critic_schedules_step_the_generator_differently(tmp_path):
    # 128 images / batch 32 = 4 batches per epoch, N_CRITIC 3: seed steps G at batches 0 and 3 (2 per
    # epoch), standard after every third critic step across epochs (4 steps over 3 epochs of 12 batches).
    counts = {}
    for schedule in ("seed", "standard"):
        trainer = train(tiny(critic_schedule=schedule, n_critic=3, num_epochs=3), tmp_path / schedule, CPU)
        counts[schedule] = (trainer.critic_steps, trainer.generator_steps)
    assert counts == {"seed": (12, 6), "standard": (12, 4)}


def test_resume_continues_exactly_without_duplicate_rows(tmp_path):
    straight = tiny("wgan_large", num_epochs=4)
    train(straight, tmp_path / "straight", CPU)
    train(straight.replace(num_epochs=2), tmp_path / "split", CPU)
    state = load_checkpoint(RunPaths(tmp_path / "split").checkpoint(1))
    train(resumed_config(state, {"num_epochs": 4}), tmp_path / "split", CPU, resume=state)
    drop = ["epoch_time_s", "images_per_s"]
    a = pd.read_csv(tmp_path / "straight" / "losses.csv").drop(columns=drop)
    b = pd.read_csv(tmp_path / "split" / "losses.csv").drop(columns=drop)
    assert b["epoch"].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(a, b)


def test_resume_from_an_earlier_checkpoint_drops_later_rows_and_applies_new_rates(tmp_path):
    train(tiny(num_epochs=3), tmp_path, CPU)
    state = load_checkpoint(RunPaths(tmp_path).checkpoint(0))
    cfg = resumed_config(state, {"learning_rate_g": 3e-4, "num_epochs": 2})
    trainer = train(cfg, tmp_path, CPU, resume=state)
    losses = pd.read_csv(tmp_path / "losses.csv")
    assert losses["epoch"].tolist() == [0, 1]
    assert losses["lr_g"].tolist() == [1e-4, 3e-4]
    assert trainer.opt_g.param_groups[0]["lr"] == 3e-4
    assert (tmp_path / "losses.csv.bak").is_file()  # the dropped rows are kept aside, not lost


def test_the_cooldown_trains_the_last_epochs_at_a_quarter_of_both_rates(tmp_path):
    train(tiny(num_epochs=4, lr_cooldown=0.5, learning_rate_g=2e-4, learning_rate_d=4e-4), tmp_path, CPU)
    losses = pd.read_csv(tmp_path / "losses.csv")
    assert losses["lr_g"].tolist() == [2e-4, 2e-4, 5e-5, 5e-5]
    assert losses["lr_d"].tolist() == [4e-4, 4e-4, 1e-4, 1e-4]
    state = load_checkpoint(RunPaths(tmp_path).checkpoint(0))  # a resumed run keeps the schedule by epoch
    train(resumed_config(state, {"num_epochs": 4}), tmp_path / "resumed", CPU, resume=state)
    assert pd.read_csv(tmp_path / "resumed" / "losses.csv")["lr_g"].tolist() == [2e-4, 5e-5, 5e-5]


def test_toy2d_learns_the_ring_of_eight(tmp_path):
    cfg = build_config(get_model("toy2d").defaults, {"num_epochs": 20})
    trainer = train(cfg, tmp_path, CPU)
    from trainables.data import points

    centres = points.mode_centres("ring8")
    fake = trainer.samples()  # (512, 2)
    nearest = torch.cdist(fake, centres).min(dim=1)
    covered = {int(m) for m in nearest.indices[nearest.values < 0.1]}
    assert len(covered) >= 7, f"only modes {sorted(covered)} covered"
    # within 10% of the radius: an untrained G has ~0% there; 20 epochs reach 39-45% depending on the CPU's float
    # kernels (the run's chaotic arithmetic differs between machines)
    assert (nearest.values < 0.1).float().mean() > 0.3


@pytest.mark.slow
def test_a_starved_generator_shows_the_collapse_signals(tmp_path):
    # Guide 000's failure, exaggerated: the critic learns 1000x faster than the generator. Over 8 CPU epochs
    # the guides' loss signals separate clearly; the sample statistics of two barely-trained generators do not
    # yet, except that the starved one stays further from the data's mean colour.
    common = {"num_epochs": 8, "dataset_size": 256, "image_size": 32, "gen_feature_maps": 16,
              "disc_feature_maps": 16, "num_samples": 64}
    train(tiny("wgan_large", **common), tmp_path / "healthy", CPU)
    train(tiny("wgan_large", learning_rate_g=1e-6, learning_rate_d=1e-3, **common), tmp_path / "bad", CPU)
    ok = pd.read_csv(tmp_path / "healthy" / "losses.csv")
    bad = pd.read_csv(tmp_path / "bad" / "losses.csv")
    late_ok, late_bad = ok.iloc[-3:].mean(), bad.iloc[-3:].mean()
    assert late_bad["d_loss"] < 2 * late_ok["d_loss"]  # 001, 1: d_loss runs large negative, the critic dominates
    assert late_bad["g_loss"] > 2 * late_ok["g_loss"]  # 000: g_loss climbs as the critic rejects fakes harder
    assert bad["g_loss"].iloc[-3:].mean() > 3 * bad["g_loss"].iloc[:3].mean()
    assert late_bad["w_dist"] > 2 * late_ok["w_dist"]
    assert late_bad["mean_shift"] > late_ok["mean_shift"]


def test_the_spectrum_finds_a_checkerboard_and_a_blur():
    from trainables.metrics import reference_stats, sample_stats, spectrum_shares

    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(16, 3, 4, 4, generator=gen) * 2 - 1, size=32,
                                             mode="bilinear")  # soft blobs, like the sprites
    grid = torch.zeros(1, 1, 32, 32)
    grid[..., ::2, ::2] = 0.5  # a stride-2 transposed convolution's period-2 pattern
    sharp = smooth + 0.3 * torch.randn(16, 3, 32, 32, generator=gen)
    ref = reference_stats(smooth)
    assert spectrum_shares(smooth + grid)[0] > 10 * spectrum_shares(smooth)[0]
    same = sample_stats(smooth, ref, transposed=True)
    assert same["checkerboard_ratio"] == pytest.approx(1.0) and same["sharpness_ratio"] == pytest.approx(1.0)
    assert sample_stats(smooth + grid, ref, transposed=True)["checkerboard_ratio"] > 10
    assert sample_stats(sharp, ref)["sharpness_ratio"] > 2
    blurred = torch.nn.functional.avg_pool2d(sharp, 4)
    blurred = torch.nn.functional.interpolate(blurred, size=32, mode="bilinear")
    assert sample_stats(blurred, reference_stats(sharp))["sharpness_ratio"] < 0.5
    assert torch.isnan(torch.tensor(sample_stats(smooth + grid, ref)["checkerboard_ratio"]))  # not transposed


@pytest.mark.parametrize("model, transposed", [("wgan_small", True), ("wgan_large", False), ("toy2d", False)])
def test_the_checkerboard_ratio_is_measured_only_behind_a_transposed_convolution(model, transposed):
    from trainables.run import make_trainer

    spec = get_model(model)
    extra = {"data": "ring8", "dataset_size": 256} if model == "toy2d" else {}
    trainer = make_trainer(build_config(spec.defaults, tiny_overrides(**extra)), torch.device("cpu"))
    stats = trainer.sample_metrics()
    assert trainer.transposed_output is transposed
    assert (stats["checkerboard_ratio"] == stats["checkerboard_ratio"]) is transposed  # NaN unless transposed
    assert (stats["sharpness_ratio"] > 0) is (model != "toy2d")  # images only
