"""`gantune watch`: the tail reads only appended bytes; a collapsing run of the seed project's real trainer is
called within the stopper's window and stopped (started by watch, or by --stop PID); a healthy run never is."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tuner.cli import main
from tuner.core.stopping import StopPolicy
from tuner.user_config import rewrite
from tuner.watch import Tail

SEED_PROJECT = Path(__file__).parent / "seed_project"
HEALTHY = {"N_CRITIC": 3, "LAMBDA_GP": 1.0, "LEARNING_RATE_G": 2.5e-4, "LEARNING_RATE_D": 1e-4}


def project(tmp_path: Path, values: dict[str, float] | None = None) -> Path:
    """The seed project's models/ringgan/ folder, its config broken (generator dominant) unless `values` fix it."""
    root = tmp_path / "proj"
    shutil.copytree(SEED_PROJECT, root, ignore=shutil.ignore_patterns("__pycache__", "outputs"))
    model = root / "models" / "ringgan"
    config = model / "config.py"
    config.write_text(rewrite(config, values or {}))
    return model


def test_the_tail_reads_only_appended_complete_lines_and_restarts_on_a_rewrite(tmp_path):
    log = tmp_path / "losses.csv"
    tail = Tail(log)
    assert tail.read() == ""  # not there yet
    log.write_text("epoch,d_loss,g_loss\n0,1.0,2")
    assert tail.read() == "epoch,d_loss,g_loss\n"  # the row being written waits for its newline
    with log.open("a") as f:
        f.write(".0\n1,1.5,2.5\n")
    assert tail.read() == "0,1.0,2.0\n1,1.5,2.5\n" and tail.offset == log.stat().st_size
    assert tail.read() == ""
    log.write_text("epoch,d_loss,g_loss\n")  # a new run rewrote it
    assert tail.read() == "epoch,d_loss,g_loss\n" and tail.restarted


def test_watch_calls_a_collapse_within_the_stoppers_window_and_stops_the_trainer_it_started(tmp_path, capsys):
    # the trainer is set to 60 epochs, watch judges by a 20-epoch run's window: a loaded machine's slower polling
    # cannot let the trainer finish before the call (at 20 it once did), and a stopped trainer leaves under 60 rows
    model = project(tmp_path, {"NUM_EPOCHS": 60})
    os.chdir(model)
    started = time.perf_counter()
    code = main(["watch", "../../outputs/ringgan/losses.csv", "--epochs", "20", "--poll", "0.2", "--confirm",
                 "generator_dominant", "--", sys.executable, "train.py"])
    out = capsys.readouterr().out
    assert code == 1, out[-2000:]
    assert "failure confirmed at epoch" in out and "diagnosis: generator_dominant" in out and "| stage |" in out
    assert "stopped the trainer" in out
    policy = StopPolicy(20)
    rows = pd.read_csv("../../outputs/ringgan/losses.csv")
    called = int(out.split("failure confirmed at epoch ")[1].split(":")[0])
    assert called + 1 <= max(policy.settled, policy.window) + 1  # onset at 0: called once the window allows
    assert len(rows) < 60  # the trainer was stopped before its epochs were done
    print(f"watch stopped the collapsing trainer after {len(rows)} epochs in {time.perf_counter() - started:.1f} s")


def test_watch_never_stops_a_healthy_run_and_ends_with_exit_0(tmp_path, capsys):
    # the losses alone call this run discriminator_dominant for a few epochs in its middle (the critic's margin
    # grows, then falls): the sweep's rule leaves such a call to the samples, and so does watch
    model = project(tmp_path, HEALTHY)
    os.chdir(model)
    code = main(["watch", "../../outputs/ringgan/losses.csv", "--config", "config.py", "--poll", "0.2", "--json",
                 "--", sys.executable, "train.py"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0, lines[-3:]
    epochs = [line for line in lines if "epoch" in line]
    assert [e["epoch"] for e in epochs] == list(range(20)) and {"d_loss", "diagnosis", "streak"} <= set(epochs[0])
    assert lines[-1]["end"] and lines[-1]["epochs"] == 20 and lines[-1]["trainer_exit"] == 0


def test_watch_stop_pid_sends_sigint_to_a_trainer_it_did_not_start(tmp_path, capsys):
    model = project(tmp_path)
    trainer = subprocess.Popen([sys.executable, "train.py"], cwd=model, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        code = main(["watch", str(model / "../../outputs/ringgan"), "--stop", str(trainer.pid), "--epochs", "20",
                     "--poll", "0.2", "--confirm", "generator_dominant,discriminator_dominant"])
        assert code == 1 and f"sent SIGINT to process {trainer.pid}" in capsys.readouterr().out
        assert trainer.wait(30) != 0  # the trainer's KeyboardInterrupt ended it
    finally:
        if trainer.poll() is None:
            trainer.send_signal(signal.SIGKILL)


def test_watch_reads_a_finished_log_to_its_end(tmp_path, capsys):
    log = tmp_path / "losses.csv"
    log.write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},{-1 - e % 3 / 10},{0.5}\n" for e in range(12)))
    assert main(["watch", str(log), "--epochs", "12", "--poll", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nepoch ") + out.startswith("epoch ") == 12 and "ended after 12 epochs" in out


# a tiny integrated system (guide 002): 16x16 images, two-channel stages, 32 sprites
INTEGRATED_TINY = {"IMAGE_SIZE": 16, "GEN_FEATURE_MAPS": 2, "DISC_FEATURE_MAPS": 2, "LATENT_DIM": 4,
                   "DATASET_SIZE": 32, "BATCH_SIZE": 16, "NUM_SAMPLES": 20, "QUALITY_EVERY": 0, "NUM_EPOCHS": 4}


def test_watch_diagnoses_a_watched_integrated_run_per_generator_as_autofix_does(tmp_path, capsys, monkeypatch):
    from tuner.core.diagnosis import diagnose
    from tuner.core.logs import infer_family, read_run
    from tuner.diagnosis_integrated import diagnose_integrated

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = tmp_path / "integ"
    sets = [arg for key, value in INTEGRATED_TINY.items() for arg in ("--set", f"{key}={value}")]
    code = main(["watch", str(run), "--poll", "0.2", "--json", "--", sys.executable, "-m", "tuner.cli", "train",
                 "integrated", *sets, "--device", "cpu", "--out", str(run)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0, lines[-3:]
    frame = read_run(run / "losses.csv").frame
    per_generator = [diagnose_integrated(frame.iloc[:k + 1]) for k in range(len(frame))]
    watched = [(e["diagnosis"], e["confidence"]) for e in lines if "epoch" in e]
    assert len(watched) == INTEGRATED_TINY["NUM_EPOCHS"]
    assert watched == [(d.label, round(d.confidence, 4)) for d in per_generator]
    # the log's own family rules read it otherwise (its d_loss holds 10 x the gradient penalty)
    raw = [diagnose(frame.iloc[:k + 1], infer_family(frame)) for k in range(len(frame))]
    assert [(d.label, d.confidence) for d in raw] != [(d.label, d.confidence) for d in per_generator]


def test_watch_reads_a_finished_integrated_run_by_its_own_diagnosis_and_ladder(tmp_path, capsys):
    # the corpus's 'after' run: its own family's rules read its d_loss (10 x the gradient penalty) as a critic's and
    # call the generator side dominant, which no sample signal confirms; read per generator, the NCA's samples
    # (diversity 0.47 of the data's, D(fake) 0.05, from epoch 28) are confirmed alike and rejected, and the plan
    # is guide 002's ladder
    from trainables.config import build_config, write_config
    from trainables.registry import get_model, preset_overrides

    spec = get_model("integrated")
    run = tmp_path / "after"
    run.mkdir()
    shutil.copy(Path(__file__).parents[1] / "bench" / "data" / "corpus" / "integrated" / "after_cpu60.csv",
                run / "losses.csv")
    write_config(build_config(spec.defaults, preset_overrides(spec, "cpu,after"), {"num_epochs": 60}),
                 run / "config.json")
    code = main(["watch", str(run), "--epochs", "60", "--poll", "0.05"])
    out = capsys.readouterr().out
    assert code == 1, out[-2000:]
    assert "failure confirmed at epoch" in out and "diagnosis: mode_collapse (bce" in out
    assert "| diversity_ratio_low |" in out and "| 4 transformer isolation | `T_SCHEDULE` |" in out


@pytest.mark.parametrize("args, words", [
    (["missing.csv"], "not found: missing.csv"),
    (["losses.csv", "--stop", "999999999"], "--stop 999999999: no such process"),
    (["losses.csv", "--epochs", "0"], "--epochs at least 1"),
    (["losses.csv", "--confirm", "healthy"], "--confirm healthy: labels must be among"),
    (["losses.csv", "--"], "`--` must be followed by a command"),
])
def test_bad_watch_input_gets_one_clear_line_and_exit_2(tmp_path, capsys, args, words):
    Path("losses.csv").write_text("epoch,d_loss,g_loss\n0,1,2\n")
    try:
        code = main(["watch", *args])
    except SystemExit as end:  # argparse's own errors
        code = end.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
