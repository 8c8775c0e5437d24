"""Trial-epochs from a broken run to the first config that is healthy, beats its quality and passes the sample bar.

    python bench/compute_to_healthy.py --quick          # toy2d's four kinds, seed 0, 20 epochs, cap 6 trials
    python bench/compute_to_healthy.py                  # every kind (bench/broken_kinds.py), seeds 0-2
    python bench/compute_to_healthy.py --kinds unstable bce_slow_g --seeds 0 1 2 --epochs 30 --out DIR

For each kind and seed: train the broken config (bench/broken_kinds.py), diagnose it, then run each method from it
with two trials at once (one CPU each) until a config ends healthy by the diagnosis core and beats the broken run's
quality; that config must then pass the sample bar (broken_kinds.Bar), or the method counts its cap:
  (a) autofix --apply: the remedy ladder, stage by stage; its trial-epochs and seconds are read from its ledger
      (autofix.json's stages);
  (b) Optuna TPE + ASHA over the model's full space (search_spaces.spaces.model_space), the broken config its first
      trial, no collapse stopper, no ladder; the search ends at the first fix;
  (c) random search over the same space: points drawn by Optuna's RandomSampler, after the broken config;
  (d) the guides' changes one at a time, in the plan's order, each kept and trained from scratch.
A method's trial-epochs are every epoch its trials trained until its search ended (the trial still in flight
included); a method that reaches its cap (--cap-trials x epochs) without a fix counts the cap and is marked.
Prints the table per kind and seed, per-kind and overall medians, and the ratios (a)/(b) and (a)/(c).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import broken_kinds  # noqa: E402
from broken_kinds import Bar, Kind  # noqa: E402

METHODS = {"a": "autofix --apply", "b": "TPE + ASHA", "c": "random search", "d": "one change at a time"}


def load(run_dir: Path, epochs: int) -> Any:
    """The broken run as autofix --apply reads it (its log, diagnosis, config and target)."""
    from tuner.cli.autofix_apply import load_broken

    args = argparse.Namespace(run=str(run_dir), family=None, train_cmd=None, config=None, model=None, data=None,
                              epochs=epochs, cpus_per_trial=1.0)
    return load_broken(args)


def judged(trial_dir: Path | None, bar: Bar) -> tuple[bool, str]:
    if trial_dir is None or not (Path(trial_dir) / "losses.csv").is_file():
        return False, "no trial"
    return bar.passes(broken_kinds.last_measured(Path(trial_dir)))


def method_autofix(broken: Any, name: str, epochs: int, cap: int, root: Path, store: Any, bar: Bar) -> dict:
    from tuner.autofix import FixSettings, run_autofix

    settings = FixSettings(name=name, epochs=epochs, storage=root, trials=4, budget=cap, concurrency=2,
                           cpus_per_trial=1.0, seed=0)
    result = run_autofix(broken, settings, store)
    ledger = json.loads((settings.path / "autofix.json").read_text())
    spent = sum(s["spent_trial_epochs"] for s in ledger["stages"])
    ok, why = judged(Path(result.fixed.path) if result.fixed else None, bar)
    return {"trial_epochs": spent, "seconds": sum(s["seconds"] for s in ledger["stages"]),
            "fixed": result.fixed is not None, "samples_healthy": ok, "samples": why, "stage": ledger["fixed_stage"]}


def _sweep(broken: Any, name: str, epochs: int, cap: int, root: Path, store: Any, bar: Bar, asha: bool,
           points: tuple = ()) -> dict:
    from search_spaces.spaces import model_space
    from tuner.core.stopping import beats
    from tuner.sweep import Seek, SweepSettings, run_sweep

    settings = SweepSettings(target=broken.target, base={**broken.config, "num_epochs": epochs},
                             space=model_space(broken.target.name), name=name, trials=max(1, cap // epochs),
                             concurrency=2, cpus_per_trial=1.0, seed=0, storage=root, stopper=False, asha=asha,
                             seek=Seek(broken.quality), points=points)
    started = time.perf_counter()
    summary = run_sweep(settings, store)
    fixes = sorted((t for t in summary.trials if t.verdict.status == "healthy" and beats(t.quality, broken.quality)),
                   key=lambda t: t.name)
    ok, why = judged(Path(fixes[0].path) if fixes else None, bar)
    return {"trial_epochs": sum(t.iterations for t in summary.trials), "seconds": time.perf_counter() - started,
            "fixed": bool(fixes), "samples_healthy": ok, "samples": why, "trials": len(summary.trials)}


def method_tpe(broken: Any, name: str, epochs: int, cap: int, root: Path, store: Any, bar: Bar) -> dict:
    return _sweep(broken, name, epochs, cap, root, store, bar, asha=True)


def method_random(broken: Any, name: str, epochs: int, cap: int, root: Path, store: Any, bar: Bar) -> dict:
    import optuna

    from search_spaces.spaces import model_space, suggest

    space = model_space(broken.target.name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    points = tuple(suggest(study.ask(), space) for _ in range(max(0, cap // epochs - 1)))
    return _sweep(broken, name, epochs, cap, root, store, bar, asha=False, points=points)


def method_manual(broken: Any, name: str, epochs: int, cap: int, root: Path, store: Any, bar: Bar) -> dict:
    """The plan's changes one at a time, each kept, each trained `epochs` from scratch (guide 000's restart)."""
    import pandas as pd

    from trainables.config import GanConfig
    from tuner.core.diagnosis import diagnose
    from tuner.core.stopping import beats

    config, spent, started = {**broken.config, "num_epochs": epochs}, 0, time.perf_counter()
    steps = [s for s in broken.target.applicable(broken.plan.steps) if not isinstance(s.new, str)]
    for i, step in enumerate(steps):
        if spent + epochs > cap:
            break
        config[step.parameter.lower()] = step.new
        out = broken_kinds.train_once(GanConfig(**config), root / name / f"change{i}_{step.parameter.lower()}")
        spent += epochs
        frame = pd.read_csv(out / "losses.csv")
        quality = float(frame["quality"].dropna().iloc[-1])
        if diagnose(frame, broken.diagnosis.family).label == "healthy" and beats(quality, broken.quality):
            ok, why = judged(out, bar)
            return {"trial_epochs": spent, "seconds": time.perf_counter() - started, "fixed": True,
                    "samples_healthy": ok, "samples": why, "changes": i + 1}
    return {"trial_epochs": spent, "seconds": time.perf_counter() - started, "fixed": False,
            "samples_healthy": False, "samples": "no fix", "changes": len(steps)}


RUNNERS = {"a": method_autofix, "b": method_tpe, "c": method_random, "d": method_manual}


def run_kind(kind: Kind, seed: int, args: argparse.Namespace, root: Path, store: Any, row: dict,
             save: Any) -> None:
    """The broken run, its sample bar and each method not yet in `row`; `save` after each (the bench resumes)."""
    folder = root / kind.name / f"seed{seed}"
    broken_dir = broken_kinds.train_once(broken_kinds.config(kind, seed, args.epochs), folder / "broken")
    broken = load(broken_dir, args.epochs)
    bar = broken_kinds.bar(kind, seed, args.epochs, root)
    row.update({"label": broken.diagnosis.label, "quality": broken.quality, "bar": bar.to_dict()})
    print(f"{kind.name} seed {seed}: broken run {broken.diagnosis.label} (expected {kind.expect}), quality "
          f"{broken.quality:.4g}", flush=True)
    cap = args.cap_trials * args.epochs
    for m in args.methods:
        if m in row:
            continue
        result = RUNNERS[m](broken, f"{m}", args.epochs, cap, folder, store, bar)
        healthy = result["fixed"] and result["samples_healthy"]
        result.update({"counted": result["trial_epochs"] if healthy else cap, "capped": not healthy, "cap": cap})
        row[m] = result
        print(f"  ({m}) {METHODS[m]}: {result}", flush=True)
        save()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="toy2d's kinds, seed 0, 20 epochs")
    parser.add_argument("--kinds", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--methods", default="abcd")
    parser.add_argument("--cap-trials", type=int, help="trials' worth of epochs a method may spend (6 quick, 8 full)")
    parser.add_argument("--out", default="bench_results/compute_to_healthy")
    args = parser.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.epochs = args.epochs or (20 if args.quick else 30)
    args.cap_trials = args.cap_trials or (6 if args.quick else 8)
    root = Path(args.out).resolve() / f"e{args.epochs}"
    root.mkdir(parents=True, exist_ok=True)

    from tuner.run_context import RunOptions, run_context

    path = root / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    options = RunOptions(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="compute_to_healthy")
    chosen = broken_kinds.kinds(args.kinds, args.quick)

    def save() -> None:
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")

    with run_context(options) as store:
        for kind in chosen:
            for seed in args.seeds:
                run_kind(kind, seed, args, root, store, results.setdefault(f"{kind.name}/{seed}", {}), save)
    report({k: v for k, v in results.items() if k.split("/")[0] in {c.name for c in chosen}
            and int(k.split("/")[1]) in args.seeds}, args)


def report(results: dict, args: argparse.Namespace) -> None:
    methods = args.methods
    print(f"\n{args.epochs} epochs per trial, cap {args.cap_trials} trials ({args.cap_trials * args.epochs} "
          f"trial-epochs) per method; trial-epochs to a config healthy by the core and by its samples "
          f"(* = cap reached or the fix failed the sample bar); seconds of wall time in brackets\n")
    print("| kind | seed | broken run | " + " | ".join(f"({m}) {METHODS[m]}" for m in methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    for key, row in results.items():
        kind, seed = key.split("/")
        cells = [_cell(row.get(m)) for m in methods]
        print(f"| {kind} | {seed} | {row['label']} ({row['quality']:.3g}) | " + " | ".join(cells) + " |")
    per_kind = {}
    for key, row in results.items():
        per_kind.setdefault(key.split("/")[0], []).append(row)
    for kind, rows in per_kind.items():
        print(f"| {kind} | median | | " + " | ".join(_median(rows, m) for m in methods) + " |")
    print("| **all** | **median** | | " + " | ".join(f"**{_median(list(results.values()), m)}**" for m in methods)
          + " |")
    overall = {m: _median_value(list(results.values()), m) for m in methods}
    for other in "bc":
        if "a" in overall and other in overall and overall[other]:
            print(f"\nratio (a)/({other}) = {overall['a'] / overall[other]:.2f}", end="")
    print()


def _median_value(rows: list[dict], m: str) -> float:
    values = [r[m]["counted"] for r in rows if m in r]
    return statistics.median(values) if values else math.nan


def _median(rows: list[dict], m: str) -> str:
    return f"{_median_value(rows, m):g}"


def _cell(result: dict | None) -> str:
    if not result:
        return "-"
    mark = "" if not result["capped"] else "*" if result["fixed"] else "* (cap)"
    return f"{result['counted']}{mark} [{result['seconds']:.0f}s]"


if __name__ == "__main__":
    main()
