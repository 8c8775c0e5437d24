"""The diagnosis core on logs other trainers write: only `epoch,d_loss,g_loss` (sometimes accuracies), losses on
any scale. Each table is a loss trajectory a user brought (issue: "The diagnosis must be right on runs gantune did
not make") with the label its samples showed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tuner.core.diagnosis import diagnose
from tuner.core.prescription import ARCHITECTURE, prescribe


def curve(points: list[tuple[int, float]], epochs: int, noise: float, seed: int) -> np.ndarray:
    """A loss through these (epoch, value) points, with epoch-to-epoch noise of this size."""
    xs, ys = zip(*points)
    return np.interp(np.arange(epochs), xs, ys) + np.random.default_rng(seed).normal(0, noise, epochs)


def log(d_loss: np.ndarray, g_loss: np.ndarray, first: int = 0, **extra: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"epoch": np.arange(first, first + len(d_loss)), "d_loss": d_loss, "g_loss": g_loss,
                         **extra})


def guide_000_seed_trainer(seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """Guide 000's broken config on the seed project's own WGAN_large trainer, 40 epochs: d_loss 4.1 -> -34 (4)
    -> -76 (12) -> -97 (24) -> -101 (39), g_loss 0.1 -> 21 -> 40 -> 54 -> 55; the samples gray from epoch 10."""
    d = curve([(0, 4.1), (4, -34), (12, -76), (24, -97), (39, -101)], 40, 1.5, seed)
    g = curve([(0, 0.1), (4, 21), (12, 40), (24, 54), (39, 55)], 40, 1.0, seed + 1)
    return log(scale * d, scale * g)


@pytest.mark.parametrize("scale", [1.0, 0.01, 30.0])
def test_guide_000_on_the_seed_trainer_is_the_critic_dominating_from_the_start_at_any_scale(scale):
    found = diagnose(guide_000_seed_trainer(scale=scale))
    assert found.label == "discriminator_dominant" and found.from_start
    assert {"critic_margin_held", "critic_margin_not_falling"} <= {e.signal for e in found.evidence}


def test_a_critic_loss_frozen_at_its_low_is_the_critic_winning_outright():
    # the generator's rate 100x below the critic's: d_loss reaches -2.06 by epoch 6 and stays there to four digits
    rng = np.random.default_rng(3)
    d = np.r_[np.linspace(0.2, -2.06, 7), -2.06 + rng.normal(0, 3e-4, 50)]
    g = np.r_[np.linspace(0.0, 1.03, 7), 1.03 + rng.normal(0, 3e-4, 50)]
    found = diagnose(log(d, g, first=1))
    assert found.label == "discriminator_dominant" and found.from_start, found.evidence


@pytest.mark.parametrize("seed", range(4))
def test_a_healthy_run_whose_g_loss_drifts_up_steadily_is_healthy(seed):
    # equal rates: the critic's margin peaks early and comes down to -0.1, while g_loss (which carries the
    # critic's free offset) drifts up by 20% with a steady trend; d_loss < 0 throughout, as in nearly every run
    e = np.arange(50)
    d = -0.1 - 0.6 * np.exp(-np.abs(e - 4) / 5.0) + np.random.default_rng(seed).normal(0, 0.02, 50)
    g = 1.5 * (1 + 0.2 * e / 49) + np.random.default_rng(seed + 10).normal(0, 0.01, 50)
    found = diagnose(log(d, g))
    assert found.label == "healthy", found.evidence
    assert not {"g_loss_trend", "g_loss_rise"} & {e.signal for e in found.evidence}


def test_losses_that_swing_far_beyond_the_critics_margin_are_unstable_without_a_gradient_norm():
    # rates 5e-3, LAMBDA_GP 0.1: g_loss swings between 15 and 50 from epoch to epoch, d_loss flips sign
    rng = np.random.default_rng(5)
    d, g = -2 + rng.normal(0, 4, 40), rng.uniform(15, 50, 40)
    assert diagnose(log(d, g)).label == "unstable"


def test_a_bce_discriminator_pinned_at_chance_is_collapse_and_one_with_an_edge_is_not():
    rng, e = np.random.default_rng(7), np.arange(60)
    pinned = log(math.log(2) + rng.uniform(-0.003, 0.003, 60), math.log(2) + rng.uniform(-0.01, 0.01, 60),
                 d_acc=0.5 + rng.uniform(-0.015, 0.015, 60))
    found = diagnose(pinned, "bce")
    assert found.label == "mode_collapse" and "d_loss_pinned_at_chance" in {x.signal for x in found.evidence}
    # a healthy BCE discriminator keeps some edge: accuracy 55-70%, its loss moving around 0.6-0.68
    edge = log(0.64 + 0.03 * np.sin(e / 3) + rng.normal(0, 0.01, 60), 0.9 + rng.normal(0, 0.05, 60),
               d_acc=0.62 + rng.uniform(-0.06, 0.06, 60))
    assert diagnose(edge, "bce").label == "healthy"
    # PyTorch adds the real and fake terms (chance is ln 4); without the accuracy a converged healthy D on 2-D data
    # looks the same (its loss a hair below chance), so the call stays healthy, names the runner-up and says so
    summed = log(math.log(4) + rng.uniform(-0.005, 0.005, 60), math.log(2) + rng.uniform(-0.01, 0.01, 60))
    plain = diagnose(summed, "bce")
    assert plain.label == "healthy" and [a.label for a in plain.alternatives] == ["mode_collapse"]
    assert "samples" in plain.settle
    # a trainer that logs the epoch's running sum of 40 steps: the same call at 40x the scale
    assert diagnose(pinned.assign(d_loss=40 * pinned["d_loss"], g_loss=40 * pinned["g_loss"]), "bce").label \
        == "mode_collapse"


def test_a_bce_discriminator_near_zero_with_g_loss_climbing_dominates_below_guide_004s_g_loss_20():
    rng = np.random.default_rng(9)
    d = np.r_[np.linspace(0.7, 0.05, 8), 0.04 + rng.uniform(0, 0.02, 42)]
    g = np.r_[np.linspace(0.7, 2, 8), np.linspace(2, 6, 42)] + rng.normal(0, 0.1, 50)
    found = diagnose(log(d, g), "bce")
    assert found.label == "discriminator_dominant" and found.onset_epoch <= 8


def test_an_uncertain_call_names_its_runner_up_and_what_would_settle_it():
    # guide 000's table at epoch 1260: d_loss came down from -62 to -12 while g_loss climbed to 65; the losses
    # alone cannot tell this from a healthy run whose g_loss offset drifts (only the gray samples could)
    e = np.arange(1261)
    d = -12 - 50 * np.exp(-e / 30) + np.random.default_rng(0).normal(0, 1, 1261)
    g = 5 + 60 * (e / 1260) ** 0.8 + np.random.default_rng(1).normal(0, 2, 1261)
    found = diagnose(log(d, g))
    assert found.confidence < 0.9
    assert found.settle and "samples" in found.settle
    labels = {found.label} | {a.label for a in found.alternatives}
    assert "discriminator_dominant" in labels
    assert found.to_dict()["alternatives"] == [a.to_dict() for a in found.alternatives]


def test_a_plan_for_another_trainer_speaks_of_its_networks_not_of_gantune_models():
    found = diagnose(guide_000_seed_trainer())
    foreign = prescribe(found, {"LEARNING_RATE_G": 1e-5, "LEARNING_RATE_D": 1e-4, "N_CRITIC": 5})
    assert "MODEL" not in {s.parameter for s in foreign.steps}
    architecture = [s for s in foreign.steps if s.parameter == ARCHITECTURE]
    assert architecture and "Upsample + Conv2d instead of ConvTranspose2d" in architecture[0].new
    own = prescribe(found, {"MODEL": "wgan_small", "LEARNING_RATE_G": 1e-5, "LEARNING_RATE_D": 1e-4})
    assert ("MODEL", "wgan_large") in {(s.parameter, s.new) for s in own.steps}


def test_the_diagnosis_core_imports_without_torch_ray_optuna_or_mlflow():
    import subprocess
    import sys

    blocked = ("import sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('torch', 'ray', 'optuna', 'mlflow'):\n"
               "            raise ImportError('blocked: ' + name)\n"
               "sys.meta_path.insert(0, Block())\n"
               "import tuner.core.diagnosis, tuner.core.signals, tuner.core.logs, tuner.core.stopping\n")
    proc = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_log_of_per_batch_rows_reads_like_its_epochs():
    # 50 batches an epoch, each row one batch's losses (noisy): guide 000's run is still the critic dominating,
    # and a healthy run whose margin settles from -57 to -7 is still healthy
    rng, n = np.random.default_rng(0), 40 * 50
    e = np.arange(n) / 50
    broken = log(np.interp(e, [0, 4, 12, 24, 39], [4.1, -34, -76, -97, -101]) + rng.normal(0, 8, n),
                 np.interp(e, [0, 4, 12, 24, 39], [0.1, 21, 40, 54, 55]) + rng.normal(0, 5, n))
    assert diagnose(broken).label == "discriminator_dominant"
    healthy = log(-7 - 50 * np.exp(-e / 6) + rng.normal(0, 6, n), 21 + rng.normal(0, 5, n))
    assert diagnose(healthy).label == "healthy"


def test_the_terminal_names_the_runner_up_and_what_would_settle_it(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(11)
    rows = "".join(f"{e};{math.log(4) + rng.uniform(-0.004, 0.004):.5f};{math.log(2) + rng.uniform(-0.01, 0.01):.5f}\n"
                   for e in range(1, 41))
    (tmp_path / "log.txt").write_text("# a PyTorch BCE trainer, D's terms added\nepoch;errD;errG\n" + rows)
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "autofix", "--run", str(tmp_path / "log.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("diagnosis: healthy (bce")
    assert "runner-up: mode_collapse" in proc.stdout and "not sure: the losses alone cannot tell" in proc.stdout


def test_a_per_iteration_log_is_judged_on_consecutive_means_and_keeps_a_blow_up():
    # 3,000 iterations of a healthy run whose every iteration jitters by its own size: read as 50 rows of means
    from tuner.core.signals import ROWS, condensed
    rng, n = np.random.default_rng(1), 3000
    e = np.arange(n) / 100
    frame = log(-0.3 - 2 * np.exp(-e / 4) + rng.normal(0, 0.3, n), 0.5 + rng.normal(0, 0.5, n))
    rows = condensed(frame)
    assert len(rows) == ROWS and rows["epoch"].iloc[1] == n // ROWS
    assert rows["d_loss"].diff().abs().median() < frame["d_loss"].diff().abs().median() / 3
    assert diagnose(frame).label == "healthy"
    frame.loc[2990:, "d_loss"] = np.nan  # the last iterations blow up: still a divergence, from its first row
    found = diagnose(frame)
    assert found.label == "diverged" and found.onset_epoch == (ROWS - 1) * n // ROWS and found.epochs == n
