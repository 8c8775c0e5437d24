"""Overhead of `gantune sweep` over the ideal: the same N short trials through the sweep (Ray Tune + Optuna +
the collapse stopper + MLflow) and through an in-process Optuna loop calling the same trainer.

    python bench/sweep_overhead.py [--trials 20] [--epochs 10] [--concurrency 2] [--dataset-size 2000]

The sweep runs the toy2d model with its default space, ASHA and the stopper off; the in-process loop then runs
exactly the configs the sweep's trials ran, so both do the same work. Ideal = the serial in-process time /
concurrency. Printed: the sweep's wall time as the user waits for it (Ray start included) and without the Ray
start, the same trials over plain processes (what the hardware gives), and the ratios to the ideal.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.spaces import resolve  # noqa: E402
from trainables.config import FIELDS, GanConfig, build_config  # noqa: E402
from trainables.registry import get_model  # noqa: E402
from trainables.run import make_trainer  # noqa: E402


def base(epochs: int, dataset_size: int) -> dict:
    spec = get_model("toy2d")
    cfg = build_config(spec.defaults, {"num_epochs": epochs, "dataset_size": dataset_size, "quality_every": epochs})
    return {k: getattr(cfg, k) for k in FIELDS}


def train_one(config: dict) -> float:
    """One trial: a fresh trainer trained for its epochs (quality measured at the end)."""
    torch.set_num_threads(1)
    trainer = make_trainer(GanConfig(**config), torch.device("cpu"))
    row = {}
    for _ in range(config["num_epochs"]):
        row = trainer.train_epoch()
    return row.get("quality", float("nan"))


def in_process(configs: list[dict]) -> float:
    """Serial in-process Optuna loop over exactly the sweep's configs (enqueued), calling the same trainer."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    for i in range(len(configs)):
        study.enqueue_trial({"index": i})
    start = time.perf_counter()
    study.optimize(lambda trial: train_one(configs[trial.suggest_int("index", 0, len(configs) - 1)]),
                   n_trials=len(configs))
    return time.perf_counter() - start


def plain_parallel(configs: list[dict], workers: int) -> float:
    """The same configs over `workers` plain processes, no Ray: what the hardware gives in parallel."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.map(train_one, configs[:workers])  # warm the workers' imports, as Ray's reused actors are
        start = time.perf_counter()
        pool.map(train_one, configs, chunksize=1)
        return time.perf_counter() - start


def through_sweep(trials: int, epochs: int, dataset_size: int, concurrency: int, seed: int
                  ) -> tuple[float, float, list[dict]]:
    """(wall time of the command, its time after Ray started, the configs its trials ran) for
    `gantune sweep toy2d` in a scratch folder."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        cmd = [sys.executable, "-m", "tuner.cli", "sweep", "toy2d", "--trials", str(trials), "--epochs", str(epochs),
               "--set", f"DATASET_SIZE={dataset_size}", "--set", f"QUALITY_EVERY={epochs}",
               "--concurrency", str(concurrency), "--no-asha", "--no-stopper", "--seed", str(seed), "--name", "bench"]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise SystemExit(f"sweep failed:\n{done.stdout}\n{done.stderr}")
        trials_run = json.loads((Path(tmp) / "sweeps" / "bench" / "summary.json").read_text())["trials"]
    minutes = float(re.search(r"done in ([0-9.]+) min", done.stdout).group(1))
    b = base(epochs, dataset_size)
    return wall, minutes * 60, [resolve(b, t["values"]) for t in trials_run]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--dataset-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    wall, after_start, configs = through_sweep(a.trials, a.epochs, a.dataset_size, a.concurrency, a.seed)
    serial = in_process(configs)
    ideal = serial / a.concurrency
    parallel = plain_parallel(configs, a.concurrency)
    print(f"toy2d, {a.trials} trials x {a.epochs} epochs ({a.dataset_size} points), concurrency {a.concurrency}, "
          f"{os.cpu_count()} CPUs")
    print("| measure | seconds | ratio to ideal |\n|---|---|---|")
    print(f"| in-process Optuna loop, serial | {serial:.1f} | |")
    print(f"| ideal = serial / {a.concurrency} | {ideal:.1f} | 1.00 |")
    print(f"| the same trials in {a.concurrency} plain processes (no Ray, no tracking) | {parallel:.1f} | "
          f"{parallel / ideal:.2f} |")
    print(f"| gantune sweep, command wall time | {wall:.1f} | {wall / ideal:.2f} |")
    print(f"| gantune sweep, after Ray started | {after_start:.1f} | {after_start / ideal:.2f} |")
    print(f"per trial: in-process {serial / a.trials:.2f} s serial; sweep {after_start * a.concurrency / a.trials:.2f} "
          f"s of a worker; sweep after Ray started / plain parallel = {after_start / parallel:.2f}")


if __name__ == "__main__":
    main()
