"""`gantune sweep` for real: a local Ray runtime, Optuna's TPE, an MLflow SQLite store or server, real training.

The Ray tests share one xdist group, so no two Ray runtimes fight over the two cores, and a test that kills a
process kills only the descendants of the sweep it started.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from tuner.cli import main

TOY = ["--set", "DATASET_SIZE=2000", "--set", "QUALITY_EVERY=5"]
DIVERGES = '{"learning_rate_g": 0.5, "learning_rate_d": 0.5, "lambda_gp": 0.0}'  # no penalty, huge steps
COLLAPSES = '{"learning_rate_g": 1e-7}'  # the generator never leaves its initial point cloud
SPACE = {"LEARNING_RATE_G": {"low": 1e-8, "high": 1.0, "log": True},
         "LEARNING_RATE_D": {"low": 1e-5, "high": 1.0, "log": True},
         "LAMBDA_GP": {"low": 0.0, "high": 10.0}, "N_CRITIC": [3, 5]}


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner.cli", "sweep", *args]


def run_sweep(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(sweep_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env)


def client() -> MlflowClient:
    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


def runs_of(sweep: str, mlflow: MlflowClient | None = None) -> list:
    mlflow = mlflow or client()
    exp = mlflow.get_experiment_by_name("gantune")
    return mlflow.search_runs([exp.experiment_id], filter_string=f"tags.`gantune.sweep` = '{sweep}'")


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def by_name(trials: list[dict]) -> dict[str, dict]:
    return {t["name"].split("_")[0]: t for t in trials}


def test_toy_sweep_stops_the_diverging_and_collapsing_trials_and_records_everything(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    result = run_sweep("toy2d", "--trials", "4", "--epochs", "20", *TOY, "--space", "space.json", "--no-asha",
                       "--name", "stops", "--enqueue", DIVERGES, "--enqueue", COLLAPSES, "--seed", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    trials = by_name(summary(tmp_path / "sweeps" / "stops")["trials"])
    # t001 is the seed config, t002 and t003 the enqueued ones, in that order
    assert trials["t001"]["status"] == "healthy" and trials["t001"]["epochs_run"] == 20
    assert trials["t002"]["status"] == "diverged" and trials["t002"]["epochs_run"] == 1
    assert trials["t003"]["status"] == "stopped:mode_collapse" and trials["t003"]["epochs_run"] < 20
    assert "diversity_ratio_tail" in trials["t003"]["reason"]
    assert "t002" in result.stdout and "diverged" in result.stdout and "trial-epochs saved" in result.stdout

    # Optuna holds the stopped trials as failures with the reason, never as completed values
    pkl = next((tmp_path / "sweeps" / "stops").glob("searcher-state-*.pkl"))
    study = pickle.loads(pkl.read_bytes())["_ot_study"]
    states = {t.number: (t.state.name, t.user_attrs.get("status")) for t in study.trials}
    assert states[0] == ("COMPLETE", "healthy")
    assert states[1] == ("FAIL", "diverged") and states[2] == ("FAIL", "stopped:mode_collapse")

    # MLflow: a parent and four children with params, per-epoch metrics, status tags and sample grids
    mlflow = client()
    runs = runs_of("stops", mlflow)
    parent = [r for r in runs if r.data.tags.get("gantune.kind") == "sweep"]
    children = {r.data.tags["gantune.trial"]: r for r in runs if "gantune.trial_id" in r.data.tags}
    assert len(parent) == 1 and len(children) == 4
    assert all(r.data.tags["mlflow.parentRunId"] == parent[0].info.run_id for r in children.values())
    seed = children["1"]
    assert seed.data.params["LAMBDA_GP"] == "1.0" and seed.data.tags["gantune.status"] == "healthy"
    assert [m.step for m in mlflow.get_metric_history(seed.info.run_id, "d_loss")] == list(range(20))
    assert len(mlflow.get_metric_history(seed.info.run_id, "quality")) == 4  # measured every 5 epochs only
    assert children["2"].data.tags["gantune.status"] == "diverged"
    assert children["3"].data.tags["gantune.status"] == "stopped:mode_collapse"
    assert "diversity_ratio_tail" in children["3"].data.tags["gantune.evidence"]
    images = [f.path for f in mlflow.list_artifacts(seed.info.run_id, "images")]
    assert sum(p.endswith(".png") for p in images) == 20
    assert [f.path for f in mlflow.list_artifacts(seed.info.run_id, "checkpoint")]  # a best trial's checkpoint
    assert parent[0].data.metrics["epochs_saved_by_stopper"] >= 19 + 7

    # the best config is a file `gantune train` accepts
    best = tmp_path / "sweeps" / "stops" / "best_config.json"
    assert json.loads(best.read_text())["LEARNING_RATE_G"] == 5e-4
    assert main(["train", "toy2d", "--config", str(best), "--dry-run", "--device", "cpu"]) == 0


def test_every_trial_writes_its_files_into_the_sweep_folder_and_the_log_a_line_per_event(tmp_path, capsys):
    # ASHA on: trials it stops, the one the collapse stopper stops and the ones that finish all keep their files
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    result = run_sweep("toy2d", "--trials", "4", "--epochs", "6", "--set", "DATASET_SIZE=500", "--set",
                       "QUALITY_EVERY=3", "--space", "space.json", "--name", "files", "--enqueue", DIVERGES,
                       "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep = tmp_path / "sweeps" / "files"
    trials = by_name(summary(sweep)["trials"])
    folders = {p.name.split("_")[0]: p for p in sweep.glob("t0*_*")}
    assert set(folders) == set(trials) and len(folders) == 4
    for name, folder in folders.items():
        losses = pd.read_csv(folder / "losses.csv")
        assert len(losses) == trials[name]["epochs_run"], name
        assert json.loads((folder / "config.json").read_text())["MODEL"] == "toy2d"
        assert len(list((folder / "samples").glob("*.png"))) == len(losses), name
    assert trials["t002"]["status"] == "diverged"  # stopped by the collapse stopper at its first epoch
    # stdout is a pipe, not a terminal: a line per trial event, never the table
    lines = result.stdout.splitlines()
    assert not any("progress" in ln and "diagnosis" in ln for ln in lines)
    for name, trial in trials.items():
        assert sum(ln.startswith(f"  {name} started: ") for ln in lines) == 1, result.stdout
        assert sum(ln.startswith(f"  {name} {trial['status']} at epoch ") for ln in lines) == 1, result.stdout
    capsys.readouterr()
    assert main(["autofix", "--run", str(folders["t002"])]) == 0
    assert "diagnosis: diverged" in capsys.readouterr().out


def test_a_bce_model_sweeps_guide_004s_knobs_through_optuna_from_its_seed_config(tmp_path):
    # guide 004's conditional GAN: the seed trial is its fixed config; the others sample the BCE space
    result = run_sweep("cgan", "--trials", "2", "--epochs", "4", "--set", "DATASET_SIZE=240", "--set",
                       "QUALITY_EVERY=2", "--no-asha", "--name", "bce", "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    trials = by_name(summary(tmp_path / "sweeps" / "bce")["trials"])
    assert set(trials) == {"t001", "t002"} and all(t["epochs_run"] == 4 for t in trials.values())
    pkl = next((tmp_path / "sweeps" / "bce").glob("searcher-state-*.pkl"))
    study = pickle.loads(pkl.read_bytes())["_ot_study"]
    seed, other = sorted(study.trials, key=lambda t: t.number)
    assert seed.params["learning_rate_d"] == 1e-4 and seed.params["label_smoothing"] == 0.1
    assert set(other.params) == set(seed.params) >= {"learning_rate_d", "noise_std", "d_train_ratio"}
    assert other.params != seed.params
    mlflow = client()
    children = [r for r in runs_of("bce", mlflow) if "gantune.trial_id" in r.data.tags]
    assert len(children) == 2
    for child in children:  # the BCE trainer's columns and a diagnosis, not an error
        assert {"d_acc", "g_acc", "d_real", "d_fake", "quality"} <= set(child.data.metrics)
        assert child.data.tags["gantune.status"] not in ("error", "running")
    assert json.loads((tmp_path / "sweeps" / "bce" / "best_config.json").read_text())["MODEL"] == "cgan"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Ray's raylet and workers below a sweep's driver)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_sweep(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(sweep_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def snapshot_time(sweep: Path) -> float:
    """When Ray last wrote its experiment state (what Tuner.restore resumes from)."""
    return max((p.stat().st_mtime for p in sweep.glob("experiment_state-*.json")), default=0.0)


def checkpoints(sweep: Path, trial: str) -> list[Path]:
    return sorted(sweep.glob(f"{trial}_*/checkpoint_*"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_joins_a_running_ray_cluster_and_logs_to_an_mlflow_server(tmp_path):
    ray_port, mlflow_port = free_port(), free_port()
    temp = Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp"))  # Ray's socket paths must stay under 107 bytes
    ray = Path(sys.executable).parent / "ray"
    head = subprocess.run([str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(ray_port),
                           "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
                           f"--temp-dir={temp}"], capture_output=True, text=True, timeout=120)
    assert head.returncode == 0, head.stdout + head.stderr
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                               f"sqlite:///{tmp_path}/server.db", "--artifacts-destination", str(tmp_path / "art"),
                               "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_for(lambda: _healthy(uri), 120, "the MLflow server")
        result = run_sweep("toy2d", "--trials", "2", "--epochs", "3", *TOY, "--address", f"127.0.0.1:{ray_port}",
                           "--tracking-uri", uri, "--name", "remote", "--no-asha")
        assert result.returncode == 0, result.stdout + result.stderr
        runs = runs_of("remote", MlflowClient(uri))
        assert len(runs) == 3  # the parent and two children, on the server
        assert not (tmp_path / "mlflow.db").exists() or not runs_of("remote")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        for pid in [p for p in _all_pids() if str(temp) in cmdline(p)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _healthy(uri: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(uri + "/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


@pytest.mark.parametrize(("args", "words"), [
    (["nosuchmodel"], ("unknown model", "nosuchmodel")),
    (["toy2d", "--space", "missing.yaml"], ("space file not found",)),
    (["toy2d", "--space", "bad.json"], ("space file", "BETA1")),
    (["toy2d", "--space", "broken.yaml"], ("space file", "cannot be read")),
    (["toy2d", "--address", "127.0.0.1:9"], ("Ray cluster address 127.0.0.1:9 is not reachable",)),
    (["toy2d", "--tracking-uri", "http://127.0.0.1:9"], ("MLflow tracking server", "not reachable")),
    (["toy2d", "--resume", "--name", "never"], ("no sweep to resume",)),
    (["toy2d", "--trials", "0"], ("--trials",)),
    (["toy2d", "--enqueue", "n_critic=2"], ("--enqueue expects a JSON object",)),
    (["toy2d", "--enqueue", '{"lambda_gp": 0.0}'], ("lambda_gp=0.0 is outside its range",)),
    (["toy2d", "--enqueue", '{"beta1": 0.5}'], ("'beta1' is not searched",)),
    (["wgan_small", "--data", "folder:nope"], ("image folder not found",)),
    (["wgan_small", "--data", "folder:one"], ("has 1 image", "at least 10")),
    (["cgan", "--data", "folder:flat"], ("cgan is conditional", "no classes")),
    (["toy2d", "--data", "sprites"], ("trains on points data",)),
])
def test_bad_sweep_input_gets_one_line_and_exit_2(tmp_path, capsys, args, words):
    (tmp_path / "bad.json").write_text(json.dumps({"BETA1": [0.0, 0.5]}))
    (tmp_path / "broken.yaml").write_text("LAMBDA_GP: [1, 2\n")
    (tmp_path / "one").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "one" / "only.png")
    (tmp_path / "flat").mkdir()
    for i in range(10):
        Image.new("RGB", (20, 20), (20 * i, 0, 0)).save(tmp_path / "flat" / f"{i}.png")
    assert main(["sweep", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())
