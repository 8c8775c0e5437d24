"""The diagnosis core and `gantune autofix` on guide 000's scenario, a healthy log, real runs and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import tiny_overrides
from trainables.config import build_config
from trainables.registry import get_model
from trainables.run import train
from tuner.core.diagnosis import diagnose
from tuner.core.prescription import prescribe

POSTMORTEM = ("LEARNING_RATE_G = 1e-5  # TTUR, 10x\nLEARNING_RATE_D = 1e-4\nN_CRITIC = 5\nBATCH_SIZE = 32\n"
              "EMA_DECAY = 0.999\nLAMBDA_GP = 10.0\n")


def guide_000_log(broken: bool, epochs: int = 1261, seed: int = 0) -> pd.DataFrame:
    """Broken: guide 000's config on the seed project's own trainer, 40 epochs (d_loss 4.1 -> -34 -> -76 -> -97 ->
    -101, g_loss 0.1 -> 21 -> 40 -> 54 -> 55; gray samples). Healthy: WGAN_small's tail in 000's table (-7 / 21
    stable), d_loss settling from -57 as 000 says a healthy run's should."""
    rng = np.random.default_rng(seed)
    if broken:
        e = np.arange(40)
        d = np.interp(e, [0, 4, 12, 24, 39], [4.1, -34, -76, -97, -101])
        g = np.interp(e, [0, 4, 12, 24, 39], [0.1, 21, 40, 54, 55])
        return pd.DataFrame({"epoch": e, "d_loss": d + rng.normal(0, 1.5, 40), "g_loss": g + rng.normal(0, 1, 40)})
    e = np.arange(epochs)
    d, g = -7 - 50 * np.exp(-e / 30), 21 + 10 * np.exp(-e / 50)
    return pd.DataFrame({"epoch": e, "d_loss": d + rng.normal(0, 1, epochs), "g_loss": g + rng.normal(0, 2, epochs)})


def gantune(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_guide_000_is_discriminator_dominant_from_the_start_and_gets_the_post_mortem_fix(tmp_path):
    log = guide_000_log(broken=True)
    log.to_csv(tmp_path / "losses.csv", index=False)
    (tmp_path / "config.py").write_text(POSTMORTEM)
    out = json.loads(gantune("autofix", "--run", str(tmp_path / "losses.csv"), "--config",
                             str(tmp_path / "config.py"), "--json").stdout)
    assert out["diagnosis"]["label"] == "discriminator_dominant"
    assert out["diagnosis"]["onset_epoch"] <= 4
    assert out["restart"]["mode"] == "fresh"
    signals = {e["signal"] for e in out["diagnosis"]["evidence"]}
    assert {"critic_margin_held", "critic_margin_not_falling"} <= signals
    stage2 = {s["parameter"]: s for s in out["plan"] if s["stage"] == 2}
    assert stage2["LEARNING_RATE_G"]["from"] == 1e-5 and stage2["LEARNING_RATE_G"]["to"] == 1e-4  # = LR_D
    assert stage2["N_CRITIC"]["to"] < stage2["N_CRITIC"]["from"] == 5
    stages = [s["stage"] for s in out["plan"]]
    assert stages == sorted(stages) and stages[0] == 1  # LAMBDA_GP first, as the ladder orders it


@pytest.mark.parametrize("seed", range(5))
def test_a_wgan_small_like_log_is_healthy(seed):
    d = diagnose(guide_000_log(broken=False, seed=seed))
    assert d.label == "healthy", d.evidence
    assert prescribe(d).steps == ()


def test_divergence_is_found_at_the_first_nan():
    log = guide_000_log(broken=False, epochs=100)
    log.loc[60:, "d_loss"] = np.nan
    d = diagnose(log)
    assert d.label == "diverged" and d.onset_epoch == 60 and not d.from_start


def test_a_late_collapse_resumes_from_the_checkpoint_before_its_onset(tmp_path):
    log = guide_000_log(broken=False, epochs=200)
    log.loc[120:, "d_loss"] = np.inf
    ckpts = [(e, tmp_path / f"checkpoint_epoch_{e:04d}.pt") for e in (49, 99, 149, 199)]
    plan = prescribe(diagnose(log), {"LEARNING_RATE_G": 1e-4, "LEARNING_RATE_D": 1e-4, "LAMBDA_GP": 10.0}, ckpts)
    assert plan.restart.mode == "resume" and plan.restart.checkpoint.endswith("checkpoint_epoch_0099.pt")
    assert {s.parameter: s.new for s in plan.stage(2)} == {"LEARNING_RATE_G": 2e-5, "LEARNING_RATE_D": 2e-5}


def test_bce_signatures_of_guides_003_and_004():
    e = np.arange(60)
    strong = pd.DataFrame({"epoch": e, "d_loss": 0.02 + 0 * e, "g_loss": 40 + e, "d_real": 0.99 + 0 * e,
                           "d_fake": 0.01 + 0 * e})
    assert diagnose(strong, "bce").label == "discriminator_dominant"
    stuck = pd.DataFrame({"epoch": e, "d_loss": 0.73 + 0 * e, "g_loss": 0.57 + 0 * e, "d_acc": 0.5 + 0 * e,
                          "g_acc": 0.998 + 0 * e})
    assert diagnose(stuck, "bce").label == "mode_collapse"
    rng = np.random.default_rng(1)
    ok = pd.DataFrame({"epoch": e, "d_loss": 0.69 + rng.normal(0, 0.01, 60), "g_loss": 0.6 + rng.normal(0, 0.02, 60),
                       "d_acc": np.linspace(0.65, 0.53, 60), "g_acc": np.linspace(0.8, 0.95, 60)})
    assert diagnose(ok, "bce").label == "healthy"


def test_a_discriminator_past_guide_004s_healthy_ranges_dominates_even_with_a_moderate_g_loss():
    e, rng = np.arange(30), np.random.default_rng(2)
    # D wins every comparison (D(real) ~0.95, D(fake) ~0.05) with the odd spike when G catches up; G loss ~4
    spikes = np.where(e % 7 == 4, 2.0, 0.0)
    winning = pd.DataFrame({"epoch": e, "d_loss": 0.15 + rng.uniform(0, 0.05, 30) + spikes,
                            "g_loss": 4 + rng.normal(0, 0.3, 30), "d_real": 0.95 - spikes / 10,
                            "d_fake": 0.05 + spikes / 10})
    verdict = diagnose(winning, "bce")
    assert verdict.label == "discriminator_dominant" and verdict.from_start
    assert [e.signal for e in verdict.evidence] == ["d_outputs_outside_healthy"]
    # guide 004's healthy monitoring line: D_loss 0.5-1.5, G_loss 2-15, D(real) 0.7-0.9, D(fake) 0.1-0.3
    healthy = pd.DataFrame({"epoch": e, "d_loss": rng.uniform(0.5, 1.5, 30), "g_loss": rng.uniform(2, 15, 30),
                            "d_real": rng.uniform(0.7, 0.9, 30), "d_fake": rng.uniform(0.1, 0.3, 30)})
    assert diagnose(healthy, "bce").label == "healthy"


def test_a_real_gantune_run_directory_is_read_with_its_config_and_checkpoints(tmp_path):
    cfg = build_config(get_model("wgan_small").defaults, tiny_overrides(num_epochs=3))
    train(cfg, tmp_path / "run", torch.device("cpu"))
    proc = gantune("autofix", "--run", str(tmp_path / "run"), "--plot", str(tmp_path / "losses.png"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("diagnosis: ")
    assert "restart: " in proc.stdout
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_applies_the_first_step_and_keeps_a_backup(tmp_path):
    guide_000_log(broken=True).to_csv(tmp_path / "losses.csv", index=False)
    config = tmp_path / "config.py"
    config.write_text(POSTMORTEM)
    proc = gantune("autofix", "--run", str(tmp_path / "losses.csv"), "--config", str(config), "--write")
    assert proc.returncode == 0, proc.stderr
    assert "-LAMBDA_GP = 10.0" in proc.stdout and "+LAMBDA_GP = 5.0" in proc.stdout
    assert "LAMBDA_GP = 5.0" in config.read_text() and "# TTUR, 10x" in config.read_text()
    assert (tmp_path / "config.py.bak").read_text() == POSTMORTEM


def test_the_plan_prints_its_values_rounded(tmp_path):
    guide_000_log(broken=True).to_csv(tmp_path / "losses.csv", index=False)
    (tmp_path / "config.py").write_text(POSTMORTEM.replace("LAMBDA_GP = 10.0", "LAMBDA_GP = 5.3881673400335695"))
    proc = gantune("autofix", "--run", str(tmp_path / "losses.csv"), "--config", str(tmp_path / "config.py"))
    assert proc.returncode == 0, proc.stderr
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]  # the evidence and the plan
    assert any("| `LAMBDA_GP` | `5.388` | `2.694` |" in ln for ln in table)
    assert not any("5.3881673400335695" in ln or "2.6940836700167847" in ln for ln in table)  # (the diff is exact)


@pytest.mark.parametrize("content,words", [
    (None, "not found"), ("", "empty"), ("epoch,d_loss,g_loss\n", "no rows"),
    ("a,b,c\n1,2,3\n", "no loss columns"), ("epoch,d_loss,g_loss\n0,1.0,abc\n", "abc"),
    (b"\x00\x01\x02binary", "binary"),
])
def test_unreadable_logs_get_one_clear_line_and_exit_2(tmp_path, content, words):
    path = tmp_path / "losses.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    proc = gantune("autofix", "--run", str(path))
    assert proc.returncode == 2
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_healthy_run_with_a_checkerboard_or_blur_is_healthy_with_guide_001s_fix():
    e, rng = np.arange(30), np.random.default_rng(3)
    settling = -7 - 50 * np.exp(-e / 6)  # 000: d_loss starts at -50..-100 and settles (to -5..-15)
    base = {"epoch": e, "d_loss": settling + rng.normal(0, 0.3, 30), "g_loss": 21 + rng.normal(0, 0.5, 30)}
    grid = diagnose(pd.DataFrame({**base, "checkerboard_ratio": 30.0 + 0 * e}))
    assert grid.label == "healthy" and [x.signal for x in grid.evidence] == ["checkerboard_ratio_tail"]
    plan = prescribe(grid, {"MODEL": "wgan_small"}, [(29, Path("c.pt"))])
    assert [(s.stage, s.parameter, s.new) for s in plan.steps] == [(3, "MODEL", "wgan_large")]
    assert plan.restart.mode == "fresh"  # new networks: the checkpoint cannot carry over
    soft = diagnose(pd.DataFrame({**base, "sharpness_ratio": 0.2 + 0 * e}))
    assert soft.label == "healthy" and soft.confidence < 1
    soft_plan = prescribe(soft, {"MODEL": "wgan_small", "LEARNING_RATE_G": 1e-4}, [(29, Path("c.pt"))])
    assert [(s.stage, s.parameter) for s in soft_plan.steps] == [(2, "LEARNING_RATE_G"), (3, "MODEL")]
    assert soft_plan.restart.mode == "resume"  # its first stage keeps the networks: continue from the checkpoint
    clean = diagnose(pd.DataFrame({**base, "checkerboard_ratio": 1.5 + 0 * e, "sharpness_ratio": 0.9 + 0 * e}))
    assert clean.label == "healthy" and clean.evidence == () and prescribe(clean).steps == ()
