"""`gantune autofix --apply` for real: a broken run, the ladder's stages as real Ray Tune + Optuna sweeps, real
training (the user's own trainer script, and gantune's toy2d), an MLflow SQLite store, and the fixed config
trained again to show that it is healthy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tuner.cli import main
from tuner.core.diagnosis import diagnose
from tuner.user_config import read

EXAMPLE = Path(__file__).parent / "external_trainer"


def gantune(*args: str, timeout: int = 540) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def runs(tag: str, value: str) -> list:
    mlflow = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = mlflow.get_experiment_by_name("gantune")
    return mlflow.search_runs([exp.experiment_id], filter_string=f"tags.`gantune.{tag}` = '{value}'")


def example_project(tmp_path: Path) -> Path:
    """The example trainer in its own folder, run once with its broken config (the user's failed run)."""
    project = tmp_path / "mygan"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return project


def test_the_example_trainers_broken_config_is_fixed_end_to_end(tmp_path):
    project = example_project(tmp_path)
    broken = diagnose(pd.read_csv(project / "losses.csv"))
    assert broken.label == "generator_dominant"
    (project / "losses.csv").rename(tmp_path / "broken.csv")  # outside the project: trials log to losses.csv

    done = gantune("autofix", "--run", str(tmp_path / "broken.csv"), "--apply", "--config",
                   str(project / "config.py"), "--train-cmd", f"{sys.executable} train.py", "--trials", "2",
                   "--name", "fix", "--write", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "autofix" / "fix" / "autofix.json").read_text())
    assert json.loads(done.stdout) == report  # --json: stdout is the report alone, the progress went to stderr
    assert "stage 1:" in done.stderr
    stage1, stage2 = report["stages"]
    # stage 1 (LAMBDA_GP) fails again the broken run's way, is stopped early, and escalates
    assert stage1["changes"] == {"LAMBDA_GP": 1.0} and stage1["fixed_by"] is None
    assert set(stage1["statuses"].values()) == {"stopped:generator_dominant"}
    assert stage1["spent_trial_epochs"] < 2 * 20
    # stage 2 (N_CRITIC and the learning rates) fixes it; nothing after it runs
    assert report["fixed"] and report["fixed_stage"] == 2 and report["fixed_quality"] > report["original_quality"]
    fixed = read(project / "config.py")  # --write applied it, keeping a backup
    assert fixed["N_CRITIC"] > 1 and fixed["LAMBDA_GP"] == 1.0 and fixed["NUM_EPOCHS"] == 20
    assert "N_CRITIC = 1\n" in (project / "config.py.bak").read_text()
    assert "-N_CRITIC = 1" in (tmp_path / "autofix" / "fix" / "fixed_config.diff").read_text()
    assert not subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout  # no trainer left

    # the user's script with the fixed config trains healthy
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True, timeout=120)
    assert diagnose(pd.read_csv(project / "losses.csv")).label == "healthy"

    # MLflow: the autofix parent, a child per stage, the trials under their stage
    parent = runs("autofix", "fix")[0]
    assert parent.data.tags["gantune.status"] == "fixed:stage2" and parent.data.params["diagnosis"] == \
        "generator_dominant"
    stages = {r.data.tags["gantune.sweep"]: r for r in runs("kind", "autofix-stage")}
    assert set(stages) == {"fix-stage1", "fix-stage2"}
    assert {r.data.tags["mlflow.parentRunId"] for r in stages.values()} == {parent.info.run_id}
    for stage in ("fix-stage1", "fix-stage2"):
        trials = [t for t in runs("sweep", stage) if "gantune.trial_id" in t.data.tags]
        assert {t.data.tags.get("mlflow.parentRunId") for t in trials} == {stages[stage].info.run_id}
        assert all(t.info.status != "RUNNING" for t in trials)  # the search ended early: every run is closed
    stage2 = [t for t in runs("sweep", "fix-stage2") if "gantune.trial_id" in t.data.tags]
    assert [t.data.tags["gantune.status"] for t in stage2].count("healthy") == 1  # the search ended there
    assert any(t.info.run_name.endswith("t001 guide's values") for t in stage2)


def test_a_gantune_run_is_fixed_and_its_config_trains_with_gantune(tmp_path):
    # no gradient penalty, a fast generator and one critic step: the critic dominates (the corpus's run, which
    # measures no quality: the trials measure it anyway, and any healthy one fixes it). Its 30 epochs: at 24 the
    # critic's lead is still spiking and falling back (margin held 0.38 of its peak), not yet held
    assert main(["train", "toy2d", "--out", "broken", "--epochs", "30", "--quiet", "--set", "LAMBDA_GP=0",
                 "--set", "LEARNING_RATE_G=3e-3", "--set", "N_CRITIC=1", "--set", "DATASET_SIZE=2000",
                 "--set", "QUALITY_EVERY=0"]) == 0
    done = gantune("autofix", "--run", "broken", "--apply", "--trials", "2", "--name", "toyfix")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "is discriminator_dominant" in done.stdout and "fixed at stage" in done.stdout
    report = json.loads((tmp_path / "autofix" / "toyfix" / "autofix.json").read_text())
    assert report["original_quality"] is None and report["fixed_quality"] is not None
    fixed = tmp_path / "autofix" / "toyfix" / "fixed_config.json"
    assert json.loads(fixed.read_text())["LAMBDA_GP"] >= 0.5  # stage 1 turned the penalty back on
    assert main(["train", "toy2d", "--config", str(fixed), "--out", "again", "--quiet"]) == 0
    assert diagnose(pd.read_csv("again/losses.csv")).label == "healthy"


def test_a_healthy_run_has_nothing_to_fix(tmp_path, capsys):
    assert main(["train", "toy2d", "--out", "ok", "--epochs", "30", "--quiet", "--set", "DATASET_SIZE=2000",
                 "--set", "QUALITY_EVERY=0", "--seed", "1"]) == 0  # the corpus's healthy_ring8_seed1
    assert main(["autofix", "--run", "ok", "--apply"]) == 0
    assert "nothing to fix" in capsys.readouterr().out
    assert not Path("autofix").exists()


@pytest.mark.parametrize("args, words", [
    (["--train-cmd", "python train.py"], "--train-cmd needs --config"),
    (["--train-cmd", "no-such-program-xyz train.py", "--config", "config.py"], "is not a program on PATH"),
    (["--model", "no_such_model"], "no_such_model"),
    ([], "no config.json"),
    (["--model", "toy2d", "--epochs", "0"], "--epochs must be at least 1"),
    (["--train-cmd", "python train.py", "--config", "config.py", "--resume-arg=--resume"], "must hold {checkpoint}"),
    (["--train-cmd", "python train.py", "--config", "config.py", "--project", "nowhere"], "--project nowhere"),
])
def test_bad_apply_input_gets_one_clear_line_and_exit_2(tmp_path, capsys, args, words):
    shutil.copy(EXAMPLE / "config.py", "config.py")
    Path("losses.csv").write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},{1 + e / 5},{-e / 5}\n" for e in range(20)))
    assert main(["autofix", "--run", "losses.csv", "--apply", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert Path("losses.csv").exists() and not Path("autofix").exists()


def test_a_late_collapse_is_retrained_from_the_checkpoint_before_its_onset(tmp_path):
    toy = ["--quiet", "--set", "DATASET_SIZE=1000", "--set", "QUALITY_EVERY=0", "--set", "CHECKPOINT_EVERY=7"]
    assert main(["train", "toy2d", "--out", "broken", "--epochs", "14", *toy]) == 0
    assert main(["train", "toy2d", "--resume", "broken/checkpoints/checkpoint_epoch_0013.pt", "--epochs", "24",
                 "--set", "LEARNING_RATE_G=0.5", "--set", "LEARNING_RATE_D=0.5", "--set", "LAMBDA_GP=0",
                 "--quiet"]) == 0  # no penalty and huge steps from epoch 14 on: diverges
    done = gantune("autofix", "--run", "broken", "--apply", "--trials", "1", "--epochs", "3", "--name", "late")
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert "is diverged since epoch 14" in done.stdout and "restart: resume from" in done.stdout
    trials = sorted((tmp_path / "autofix" / "late").glob("late-stage*/t*/losses.csv"))
    assert trials
    for losses in trials:  # every trial continued the run from epoch 14, with the stage's settings
        epochs = pd.read_csv(losses)["epoch"].tolist()
        assert epochs[0] == 14 and len(epochs) <= 3
        config = json.loads((losses.parent / "config.json").read_text())
        # stage 1 turns the penalty on (at least toy2d's canonical 1, searched within x/÷ 2), stage 2 lowers the rates
        assert config["LAMBDA_GP"] >= 0.5 or config["LEARNING_RATE_D"] < 0.5


def test_a_bce_run_whose_discriminator_dominates_is_fixed_by_guide_004s_first_step(tmp_path):
    # guide 004's run before its fixes, at CPU scale: LR_D ten times LR_G, no label smoothing, no noise
    small = ["--preset", "cpu,strong_d", "--set", "DATASET_SIZE=240", "--set", "LEARNING_RATE_D=2e-3",
             "--epochs", "20", "--quiet"]
    assert main(["train", "cgan", "--out", "broken", *small]) == 0
    broken = diagnose(pd.read_csv("broken/losses.csv"), "bce")
    assert broken.label == "discriminator_dominant" and broken.from_start
    done = gantune("autofix", "--run", "broken", "--apply", "--trials", "1", "--name", "bcefix")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "is discriminator_dominant" in done.stdout and "stage 5: MODEL cgan -> wgan_small" in done.stdout
    report = json.loads((tmp_path / "autofix" / "bcefix" / "autofix.json").read_text())
    stage1 = report["stages"][0]
    assert stage1["changes"] == {"learning_rate_d": 1e-4} and report["fixed_stage"] == 1
    assert report["fixed_quality"] > report["original_quality"]
    fixed = json.loads((tmp_path / "autofix" / "bcefix" / "fixed_config.json").read_text())
    assert fixed["MODEL"] == "cgan" and fixed["LEARNING_RATE_D"] < 2e-3 and fixed["LABEL_SMOOTHING"] == 0.0
    trial = next((tmp_path / "autofix" / "bcefix").glob("bcefix-stage1/t001*/losses.csv"))
    assert diagnose(pd.read_csv(trial), "bce").label == "healthy"


def toy_config(path: Path, **overrides) -> Path:
    """A full toy2d config file from the model's seed row (what `gantune train --config` then trains exactly)."""
    from trainables.config import GanConfig
    from trainables.registry import get_model

    base = {**get_model("toy2d").defaults, "dataset_size": 2000, "num_epochs": 30, "quality_every": 0}
    path.write_text(json.dumps(GanConfig(**{**base, **overrides}).to_dict()))
    return path


def test_an_unstable_toy2d_run_ends_fixed_with_a_plan_sized_to_the_distance_and_wgan_gps_betas(tmp_path):
    # issue 23's run (the corpus's unstable_from_start): rates 1e-2 (20x toy2d's 5e-4), Adam (0.9, 0.99),
    # LAMBDA_GP 0.1, N_CRITIC 1. The old ladder raised the penalty to the image guides' 10 (on toy2d a one-step
    # critic then failed) and halved the rates (still 10x too hot): it ended not fixed
    hot = toy_config(tmp_path / "hot.json", learning_rate_g=1e-2, learning_rate_d=1e-2, beta1=0.9, beta2=0.99,
                     lambda_gp=0.1, n_critic=1, quality_every=5)
    assert main(["train", "toy2d", "--config", str(hot), "--out", "broken", "--quiet"]) == 0
    assert diagnose(pd.read_csv("broken/losses.csv")).label == "unstable"
    done = gantune("autofix", "--run", "broken", "--apply", "--trials", "2", "--name", "hot", timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the plan: the penalty back to toy2d's canonical 1, the rates most of the way back to 5e-4, the betas restored
    for step in ("stage 1: LAMBDA_GP 0.1 -> 1.0", "stage 2: LEARNING_RATE_G 0.01 -> 0.00105737",
                 "stage 2: LEARNING_RATE_D 0.01 -> 0.00105737", "stage 2: N_CRITIC 1 -> 3", "stage 2: BETA1 0.9 -> 0.0",
                 "stage 2: BETA2 0.99 -> 0.9"):
        assert step in done.stdout, step
    report = json.loads((tmp_path / "autofix" / "hot" / "autofix.json").read_text())
    assert report["fixed"] and report["fixed_quality"] > report["original_quality"]
    fixed = json.loads((tmp_path / "autofix" / "hot" / "fixed_config.json").read_text())
    assert fixed["LAMBDA_GP"] >= 0.5  # stage 1's penalty (searched within x/÷ 2 of 1) is carried in every fix
    if report["fixed_stage"] == 2:
        assert fixed["LEARNING_RATE_G"] < 1e-2 / 3 and (fixed["BETA1"], fixed["BETA2"]) == (0.0, 0.9)
    trial = next((tmp_path / "autofix" / "hot").glob(f"hot-stage*/{report['fixed_trial']}/losses.csv"))
    assert diagnose(pd.read_csv(trial)).label == "healthy"  # the fixing trial's own log, read again


def test_a_bce_run_with_a_slow_generator_is_fixed_by_raising_lr_g(tmp_path):
    # the corpus's discriminator_dominant_cgan_slow_g_cpu: LR_D 2e-3 and LR_G 5e-5; lowering LR_D alone left a
    # generator too slow to near the data in 12 epochs, and the ladder never raised LR_G (not fixed in 115 epochs)
    small = ["--preset", "cpu,strong_d", "--set", "DATASET_SIZE=240", "--set", "LEARNING_RATE_D=2e-3",
             "--set", "LEARNING_RATE_G=5e-5", "--set", "QUALITY_EVERY=4", "--epochs", "12", "--quiet"]
    assert main(["train", "cgan", "--out", "broken", *small]) == 0
    assert diagnose(pd.read_csv("broken/losses.csv"), "bce").label == "discriminator_dominant"
    done = gantune("autofix", "--run", "broken", "--apply", "--trials", "2", "--name", "slowg", timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stage 1: LEARNING_RATE_G 5e-05 -> 0.0002" in done.stdout
    report = json.loads((tmp_path / "autofix" / "slowg" / "autofix.json").read_text())
    assert report["stages"][0]["changes"] == {"learning_rate_d": 1e-4, "learning_rate_g": 2e-4}
    assert report["fixed"] and report["fixed_quality"] > report["original_quality"]
    fixed = json.loads((tmp_path / "autofix" / "slowg" / "fixed_config.json").read_text())
    assert fixed["LEARNING_RATE_G"] > 5e-5 and fixed["LEARNING_RATE_D"] < 2e-3
    # the ledger: each stage's trial-epochs and wall time in autofix.json and on the MLflow parent run
    stages = report["stages"]
    assert sum(s["spent_trial_epochs"] for s in stages) == report["spent_trial_epochs"] > 0
    assert all(s["seconds"] > 0 for s in stages) and sum(s["seconds"] for s in stages) <= report["seconds"]
    parent = runs("autofix", "slowg")[0]
    for s in stages:
        assert parent.data.metrics[f"stage{s['stage']}_trial_epochs"] == s["spent_trial_epochs"]
        assert parent.data.metrics[f"stage{s['stage']}_seconds"] == pytest.approx(s["seconds"], abs=0.1)
    history = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_metric_history(parent.info.run_id,
                                                                                "stage_trial_epochs")
    assert {(m.step, m.value) for m in history} == {(s["stage"], s["spent_trial_epochs"]) for s in stages}
