"""A seed-layout project (models/NAME/train.py + config.py, a shared `common/` two levels up, relative DATA_DIR and
OUTPUT_DIR) fixed by `gantune autofix --apply` run from models/NAME/, as the README says: real Ray, Optuna,
MLflow (SQLite) and the project's own PyTorch trainer on a tiny 2-D ring."""

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
from tuner.user_config import read, rewrite

SEED_PROJECT = Path(__file__).parent / "seed_project"


def seed_project(tmp_path: Path, git: bool = True, train: bool = True) -> Path:
    """The example project in its own folder (a git repository unless told otherwise), trained once with its
    broken config from models/ringgan/: the user's failed run is outputs/ringgan/losses.csv."""
    root = tmp_path / "proj"
    shutil.copytree(SEED_PROJECT, root, ignore=shutil.ignore_patterns("__pycache__", "outputs"))
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    if train:
        train_py(root / "models" / "ringgan")
    return root


def train_py(model: Path, *args: str) -> None:
    subprocess.run([sys.executable, "train.py", *args], cwd=model, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


def gantune_in(folder: Path, *args: str, timeout: int = 540) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True, cwd=folder,
                          timeout=timeout, env=env)


def test_autofix_fixes_a_seed_layout_project_from_its_model_folder(tmp_path):
    root = seed_project(tmp_path)
    model = root / "models" / "ringgan"
    broken = (root / "outputs" / "ringgan" / "losses.csv").read_text()
    assert diagnose(pd.read_csv(root / "outputs" / "ringgan" / "losses.csv")).label == "generator_dominant"

    done = gantune_in(model, "autofix", "--run", "../../outputs/ringgan/losses.csv", "--apply", "--config",
                      "config.py", "--train-cmd", f"{sys.executable} train.py", "--trials", "2", "--name", "fix",
                      "--write")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "runs your command in models/ringgan and reads outputs/ringgan/losses.csv" in done.stdout
    report = json.loads((model / "autofix" / "fix" / "autofix.json").read_text())
    assert report["fixed"] and report["config_trained"]
    trials = sorted((model / "autofix" / "fix").glob("fix-stage*/t[0-9]*"))
    assert trials
    for trial in trials:  # each trial: the whole project, its own outputs, the data and `common` linked
        assert (trial / "outputs" / "ringgan" / "losses.csv").is_file()
        assert (trial / "dataset").is_symlink() and (trial / "common").is_symlink()
        assert not (trial / "models" / "ringgan" / "autofix").exists()
    assert (root / "outputs" / "ringgan" / "losses.csv").read_text() == broken  # the user's run untouched
    fixed = read(model / "config.py")
    assert fixed["OUTPUT_DIR"] == "../../outputs/ringgan" and fixed["N_CRITIC"] > 1
    mlflow = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])  # the trials' sample scatters, as for gantune's trials
    fixer = next(r for r in mlflow.search_runs([mlflow.get_experiment_by_name("gantune").experiment_id])
                 if "gantune.trial_id" in r.data.tags and r.data.tags.get("gantune.status") == "healthy")
    assert any(f.path.endswith(".png") for f in mlflow.list_artifacts(fixer.info.run_id, "images"))

    subprocess.run([sys.executable, "train.py"], cwd=model, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert diagnose(pd.read_csv(root / "outputs" / "ringgan" / "losses.csv")).label == "healthy"


def test_sweep_searches_a_seed_layout_project_over_the_keys_its_config_has(tmp_path):
    root = seed_project(tmp_path)
    model = root / "models" / "ringgan"
    done = gantune_in(model, "sweep", "--train-cmd", f"{sys.executable} train.py", "--config", "config.py",
                      "--trials", "3", "--epochs", "8", "--name", "s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "reading outputs/ringgan/losses.csv" in done.stdout  # the config's OUTPUT_DIR, without --run
    assert "space: LEARNING_RATE_G, LEARNING_RATE_D, N_CRITIC, LAMBDA_GP, BATCH_SIZE" in done.stdout
    best = read(model / "sweeps" / "s" / "best_config.py")  # the user's format, the best trial's values
    assert best["OUTPUT_DIR"] == "../../outputs/ringgan" and best["NUM_EPOCHS"] == 8
    summary = json.loads((model / "sweeps" / "s" / "summary.json").read_text())
    assert len(summary["trials"]) == 3 and summary["best"]
    for trial in (model / "sweeps" / "s").glob("t[0-9]*"):
        rows = pd.read_csv(trial / "outputs" / "ringgan" / "losses.csv")
        assert 1 <= len(rows) <= 8 and (trial / "models" / "ringgan" / "config.py").is_file()
    mlflow = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs([mlflow.get_experiment_by_name("gantune").experiment_id],
                              filter_string="tags.`gantune.sweep` = 's'")
    assert len([r for r in runs if "gantune.trial_id" in r.data.tags]) == 3


def test_a_late_failure_resumes_your_trainer_from_the_checkpoint_before_its_onset(tmp_path):
    root = seed_project(tmp_path, train=False)
    model = root / "models" / "ringgan"
    config = model / "config.py"
    healthy = {"N_CRITIC": 3, "LAMBDA_GP": 1.0, "LEARNING_RATE_G": 2.5e-4, "LEARNING_RATE_D": 1e-4}
    config.write_text(rewrite(config, healthy))
    train_py(model, "--epochs", "15")  # healthy for 15 epochs, a checkpoint every 5
    config.write_text(rewrite(config, {"LAMBDA_GP": 0.0}))  # then no penalty and huge steps: it diverges
    train_py(model, "--resume", "../../outputs/ringgan/checkpoints/checkpoint_epoch_0014.pt", "--lr", "0.5",
             "--epochs", "24")
    broken = pd.read_csv(root / "outputs" / "ringgan" / "losses.csv")

    done = gantune_in(model, "autofix", "--run", "../../outputs/ringgan/losses.csv", "--apply", "--config",
                      "config.py", "--train-cmd", f"{sys.executable} train.py", "--resume-arg",
                      "--resume {checkpoint}", "--resume-applies", "LAMBDA_GP", "--trials", "1", "--epochs", "4",
                      "--name", "late")
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert "is diverged since epoch 15" in done.stdout and "checkpoint_epoch_0014.pt" in done.stdout
    assert "stage 1: LAMBDA_GP" in done.stdout and "resumes from" in done.stdout.split("\nstage 2:")[0]
    trial = next((model / "autofix" / "late" / "late-stage1").glob("t[0-9]*"))
    rows = pd.read_csv(trial / "outputs" / "ringgan" / "losses.csv")
    assert rows["epoch"].tolist() == list(range(19))  # the run's 15 epochs, then the trial's 4
    assert rows.iloc[:15].equals(broken.iloc[:15])
    assert read(trial / "models" / "ringgan" / "config.py")["NUM_EPOCHS"] == 19
    if "\nstage 2:" in done.stdout:  # the learning rates: the trainer restores its optimisers' own on resume
        assert "trains fresh: your trainer does not apply LEARNING_RATE" in done.stdout


def test_a_trainer_that_cannot_start_ends_autofix_at_the_first_trials_with_exit_2(tmp_path):
    root = seed_project(tmp_path, git=False)  # no git and no --project: the trials hold only models/ringgan
    model = root / "models" / "ringgan"
    done = gantune_in(model, "autofix", "--run", "../../outputs/ringgan/losses.csv", "--apply", "--config",
                      "config.py", "--train-cmd", f"{sys.executable} train.py", "--trials", "4", "--concurrency",
                      "1", "--name", "nocommon", timeout=300)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    err = done.stderr.strip().splitlines()[-1]
    assert "No module named 'common'" in err and "train.log" in err and "Traceback" not in done.stderr
    stages = [s for s in (model / "autofix" / "nocommon").glob("nocommon-stage*") if s.is_dir()]
    assert [s.name for s in stages] == ["nocommon-stage1"]
    assert len(list(stages[0].glob("t[0-9]*"))) == 2  # the second trial's same error ends the search


def test_project_names_the_root_that_runs(tmp_path):
    root = seed_project(tmp_path, git=False)
    model = root / "models" / "ringgan"
    done = gantune_in(model, "autofix", "--run", "../../outputs/ringgan/losses.csv", "--apply", "--config",
                      "config.py", "--train-cmd", f"{sys.executable} train.py", "--project", "/nonexistent")
    assert done.returncode == 2 and "--project /nonexistent" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["toy2d", "--train-cmd", "python train.py", "--config", "config.py"], "(not both)"),
    ([], "give a MODEL"),
    (["--train-cmd", "python train.py"], "--train-cmd needs --config"),
    (["--train-cmd", "python train.py", "--config", "config.py", "--set", "N_CRITIC=2"], "your config decides"),
    (["--train-cmd", "python train.py", "--config", "config.py", "--space", "space.yaml"],
     "unknown parameter 'WIDTH_X'"),
    (["toy2d", "--config", "config.py"], "are for --train-cmd"),
])
def test_bad_sweep_input_for_your_trainer_gets_one_clear_line_and_exit_2(tmp_path, capsys, args, words):
    shutil.copy(SEED_PROJECT / "models" / "ringgan" / "config.py", "config.py")
    Path("space.yaml").write_text("N_CRITIC: [1, 2]\nWIDTH_X: [1, 2]\n")
    assert main(["sweep", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not Path("sweeps").exists()


def test_a_stage_whose_changes_the_trainer_ignores_on_resume_trains_fresh_and_says_why(tmp_path):
    from tuner.autofix import Broken
    from tuner.core.logs import find_checkpoints, read_run
    from tuner.external import ResumeFlag, setup_for
    from tuner.stage_search import stage_search
    from tuner.targets import CommandTarget, StageStart

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for epoch in (4, 9, 14):
        (run / "checkpoints" / f"checkpoint_epoch_{epoch:04d}.pt").write_bytes(b"")
    rows = [(e, -1.0 - 0.05 * (e % 3), 0.3) for e in range(15)] + [(e, 1e4 * 3 ** (e - 14), 1e5) for e in range(15, 24)]
    (run / "losses.csv").write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},{d},{g}\n" for e, d, g in rows))
    log = read_run(run / "losses.csv")
    config = {"LAMBDA_GP": 0.0, "LEARNING_RATE_G": 2.5e-4, "LEARNING_RATE_D": 1e-4, "N_CRITIC": 3, "NUM_EPOCHS": 24}
    (tmp_path / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    checkpoints = tuple(find_checkpoints(run))
    plan = Broken(str(log.source), diagnose(log.frame), config, -1e4, 24,
                  CommandTarget(setup_for(f"{sys.executable} train.py", tmp_path / "config.py", config, 4, "wgan")),
                  checkpoints).plan
    assert plan.restart.mode == "resume"
    for applies, resumes in ((frozenset({"LAMBDA_GP"}), True), (frozenset({"N_CRITIC"}), False), (None, False)):
        setup = setup_for(f"{sys.executable} train.py", tmp_path / "config.py", config, 4, "wgan",
                          resumable=ResumeFlag("--resume {checkpoint}", applies) if applies is not None else None)
        stage = stage_search(1, plan.stage(1), config)
        resume, why = CommandTarget(setup).resume(StageStart(plan, checkpoints, str(log.source), 4), stage)
        assert (resume is not None) == resumes, why
        if resumes:
            assert resume.epoch == 14 and resume.argv()[0] == "--resume" and why.startswith("resumes from")
        else:
            assert why.startswith("trains fresh: ") and ("LAMBDA_GP" in why or "no --resume-arg" in why)
