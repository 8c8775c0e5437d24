"""Fault injection on real small sweeps: stop signals, a driver killed outright, a trial's worker killed, two sweeps
opening a new store at once. After each, the records must say what really happened, and `--resume` must end with
every trial exactly once in MLflow with its true status, nothing left RUNNING, no metric step logged twice, and
every trial's files in the sweep folder.

A sweep's driver is started in its own session, so a signal to its process group reaches it and the local Ray it
started, as Ctrl-C or a closed terminal would; a test that kills kills only that group.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.test_sweep import (
    checkpoints,
    client,
    cmdline,
    descendants,
    run_sweep,
    runs_of,
    snapshot_time,
    start_sweep,
    summary,
    wait_for,
)

TOY = ["--set", "DATASET_SIZE=5000", "--set", "QUALITY_EVERY=10", "--set", "CHECKPOINT_EVERY=2", "--no-asha"]


def children(name: str, mlflow: MlflowClient | None = None) -> list:
    return [r for r in runs_of(name, mlflow) if "gantune.trial_id" in r.data.tags]


def assert_whole(name: str, sweep: Path, trials: int, epochs: int, output: str) -> None:
    """Every trial once, run to its end, with its true status; nothing RUNNING; each metric step once; files."""
    ended = summary(sweep)["trials"]
    assert len(ended) == trials and all(t["epochs_run"] == epochs for t in ended), ended
    assert summary(sweep)["interrupted"] is None
    runs = runs_of(name)
    assert all(r.info.status != "RUNNING" for r in runs), [(r.info.run_name, r.info.status) for r in runs]
    kids = children(name)
    assert sorted(r.data.tags["gantune.trial_id"] for r in kids) == sorted(t["trial_id"] for t in ended)
    status = {t["trial_id"]: t["status"] for t in ended}
    for run in kids:
        assert run.data.tags["gantune.status"] == status[run.data.tags["gantune.trial_id"]]
        steps = [m.step for m in client().get_metric_history(run.info.run_id, "d_loss")]
        assert sorted(steps) == list(range(epochs)), (run.info.run_name, sorted(steps))  # each step exactly once
    for trial in ended:
        losses = pd.read_csv(sweep / trial["name"] / "losses.csv")
        assert losses["epoch"].tolist() == list(range(epochs)), trial["name"]
    assert "Traceback" not in output and "already reported" not in output, output[-3000:]


def resume_argv(output: str) -> list[str]:
    """The resume command the interrupted sweep printed, as this interpreter runs it."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("gantune sweep")]
    assert lines and "--resume" in lines[-1] and "--name" in lines[-1], output
    return shlex.split(lines[-1])[2:]


def epochs_logged(sweep: Path, trial: str) -> int:
    return sum(max(0, len(p.read_text().splitlines()) - 1) for p in sweep.glob(f"{trial}_*/losses.csv"))


# The resume after a SIGHUP is the one after SIGINT and SIGTERM (the same saved state): only its marking is checked.
@pytest.mark.parametrize(("sig", "to_group", "code", "resume"), [
    (signal.SIGINT, True, 130, True),  # Ctrl-C in the terminal: the driver and everything in its process group
    (signal.SIGTERM, False, 143, True),  # `kill PID` of the driver alone
    (signal.SIGHUP, True, 129, False),  # the terminal closed
], ids=["SIGINT-to-the-group", "SIGTERM-to-the-driver", "SIGHUP-to-the-group"])
def test_a_stopped_sweep_says_it_was_interrupted_and_its_resume_command_finishes_it(tmp_path, sig, to_group, code,
                                                                                   resume):
    name = f"stop-{sig.name.lower()}"
    sweep = tmp_path / "sweeps" / name
    at = random.Random().randint(1, 6)  # a random point: after this many epochs of the first trial
    driver = start_sweep("toy2d", "--trials", "2", "--epochs", "10", *TOY, "--concurrency", "2", "--name", name)
    try:
        wait_for(lambda: epochs_logged(sweep, "t001") >= at and epochs_logged(sweep, "t002") >= 1, 300,
                 f"{at} epochs of the first trial and one of the second")
        (os.killpg if to_group else os.kill)(driver.pid, sig)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == code, f"signalled after {at} epochs: {out}"
    assert f"interrupted by {sig.name}" in out and "Traceback" not in out, out
    cut = summary(sweep)
    assert cut["interrupted"] == sig.name
    statuses = {t["name"].split("_")[0]: t["status"] for t in cut["trials"]}
    assert statuses["t001"] == statuses["t002"] == "interrupted", cut  # not `stopped:asha`, not `error`
    runs = runs_of(name)
    assert all(r.info.status != "RUNNING" for r in runs)
    (parent,) = [r for r in runs if "gantune.trial_id" not in r.data.tags]
    assert parent.info.status == "KILLED" and parent.data.tags["gantune.status"] == "interrupted"
    assert {r.data.tags["gantune.status"] for r in children(name)} == {"interrupted"}
    if not resume:
        return
    resumed = run_sweep(*resume_argv(out))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_whole(name, sweep, 2, 10, resumed.stdout + resumed.stderr)
    (parent,) = [r for r in runs_of(name) if "gantune.trial_id" not in r.data.tags]
    assert parent.info.status == "FINISHED" and parent.data.tags["gantune.status"] == "finished"


def test_a_sweep_whose_driver_was_killed_resumes_without_losing_or_duplicating_trials(tmp_path):
    args = ["toy2d", "--trials", "3", "--epochs", "40", *TOY, "--concurrency", "1", "--name", "resumable"]
    sweep = tmp_path / "sweeps" / "resumable"
    driver = start_sweep(*args)
    try:
        wait_for(lambda: len(checkpoints(sweep, "t002")) >= 2, 300, "the second trial's second checkpoint")
        second = checkpoints(sweep, "t002")[1].stat().st_mtime
        wait_for(lambda: snapshot_time(sweep) > second + 1, 60, "Ray's experiment-state snapshot after it")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started, mid-trial
        driver.wait()
    assert not (sweep / "summary.json").exists()
    assert any(r.info.status == "RUNNING" for r in runs_of("resumable"))  # what the next resume must close
    resumed = run_sweep(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_whole("resumable", sweep, 3, 40, resumed.stdout + resumed.stderr)
    second = next(r for r in children("resumable") if r.data.tags["gantune.trial"] == "2")
    steps = [m.step for m in client().get_metric_history(second.info.run_id, "d_loss")]
    timestamps = {m.step: m.timestamp for m in client().get_metric_history(second.info.run_id, "d_loss")}
    assert len(steps) == 40 and timestamps[0] < timestamps[39]


def test_a_trial_whose_worker_is_killed_is_retried_from_its_checkpoint(tmp_path):
    args = ["toy2d", "--trials", "1", "--epochs", "30", *TOY, "--name", "retry"]
    sweep = tmp_path / "sweeps" / "retry"
    driver = start_sweep(*args)
    try:
        wait_for(lambda: len(checkpoints(sweep, "t001")) >= 2, 300, "two checkpoints")
        workers = [p for p in descendants(driver.pid) if "ImplicitFunc" in cmdline(p)]
        assert workers, "no trial worker found below the sweep's driver"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        out, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, out
    assert_whole("retry", sweep, 1, 30, out)
    (child,) = children("retry")
    assert child.data.tags.get("gantune.retries") == "1"


def test_two_sweeps_started_together_on_a_new_store_both_record_their_trials(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"  # created by whichever driver opens it first
    args = ["toy2d", "--trials", "1", "--epochs", "2", "--set", "DATASET_SIZE=500", "--set", "QUALITY_EVERY=0",
            "--no-asha", "--tracking-uri", uri]
    drivers = {name: start_sweep(*args, "--name", name) for name in ("one", "two")}
    try:
        outputs = {name: d.communicate(timeout=400)[0] for name, d in drivers.items()}
    finally:
        for d in drivers.values():
            if d.poll() is None:
                os.killpg(d.pid, signal.SIGKILL)
    assert {name: d.returncode for name, d in drivers.items()} == {"one": 0, "two": 0}, outputs
    for name in ("one", "two"):
        runs = runs_of(name, MlflowClient(uri))
        assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}, (name, runs)
        assert len(summary(tmp_path / "sweeps" / name)["trials"]) == 1
        assert json.loads((tmp_path / "sweeps" / name / "summary.json").read_text())["interrupted"] is None


def test_resume_command_keeps_the_options_and_adds_the_name(monkeypatch):
    from tuner.run_context import resume_command

    argv = ["sweep", "toy2d", "--epochs", "14", "--set", "A=1 2"]
    assert resume_command("toy-1", argv) == "gantune sweep toy2d --epochs 14 --set 'A=1 2' --name toy-1 --resume"
    assert resume_command("x", ["sweep", "toy2d", "--name", "x"]) == "gantune sweep toy2d --name x --resume"
    monkeypatch.setattr(sys, "argv", ["gantune", "sweep", "toy2d", "--name", "y", "--resume"])
    assert resume_command("y") == "gantune sweep toy2d --name y --resume"


def test_an_interrupted_autofix_is_recorded_as_such_and_its_resume_command_ends_the_walk(tmp_path):
    from tuner.cli import main

    assert main(["train", "toy2d", "--out", "broken", "--epochs", "30", "--quiet", "--set", "LAMBDA_GP=0",
                 "--set", "LEARNING_RATE_G=3e-3", "--set", "N_CRITIC=1", "--set", "DATASET_SIZE=2000",
                 "--set", "QUALITY_EVERY=0"]) == 0
    stage = tmp_path / "autofix" / "cut" / "cut-stage1"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    import subprocess

    driver = subprocess.Popen([sys.executable, "-m", "tuner.cli", "autofix", "--run", "broken", "--apply",
                               "--trials", "2", "--name", "cut"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, start_new_session=True)
    try:
        wait_for(lambda: any(len(p.read_text().splitlines()) > 2 for p in stage.glob("t00*/losses.csv")), 300,
                 "stage 1's first epochs")
        os.killpg(driver.pid, signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == 130, out
    assert "interrupted by SIGINT at stage 1" in out and "Traceback" not in out, out
    report = json.loads((tmp_path / "autofix" / "cut" / "autofix.json").read_text())
    assert report["interrupted"] == "SIGINT" and report["fixed"] is False
    assert "interrupted" in report["stages"][0]["statuses"].values()
    everything = runs_of("cut-stage1")
    (parent,) = [r for r in client().search_runs([r.info.experiment_id for r in everything][:1],
                                                 filter_string="tags.`gantune.autofix` = 'cut'")]
    assert parent.info.status == "KILLED" and parent.data.tags["gantune.status"] == "interrupted"
    assert all(r.info.status != "RUNNING" for r in everything), [(r.info.run_name, r.info.status) for r in everything]

    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("gantune autofix")]
    assert lines and "--resume" in lines[-1] and "--name cut" in lines[-1], out
    resumed = subprocess.run([sys.executable, "-m", "tuner.cli", *shlex.split(lines[-1])[1:]], capture_output=True,
                             text=True, env=env, timeout=600)
    output = resumed.stdout + resumed.stderr
    report = json.loads((tmp_path / "autofix" / "cut" / "autofix.json").read_text())
    assert resumed.returncode == (0 if report["fixed"] else 1), output[-3000:]
    assert report["interrupted"] is None and "Traceback" not in output, output[-3000:]
    assert "interrupted" not in report["stages"][0]["statuses"].values(), report["stages"][0]
    (parent,) = [r for r in client().search_runs([parent.info.experiment_id],
                                                 filter_string="tags.`gantune.autofix` = 'cut'")]
    assert parent.info.status != "RUNNING" and parent.data.tags["gantune.status"] != "interrupted"
    for stage_run in [r for r in runs_of("cut-stage1") if "gantune.trial_id" in r.data.tags]:
        assert stage_run.info.status != "RUNNING", stage_run.info.run_name
        steps = [m.step for m in client().get_metric_history(stage_run.info.run_id, "d_loss")]
        assert len(steps) == len(set(steps)), (stage_run.info.run_name, sorted(steps))  # each epoch once
