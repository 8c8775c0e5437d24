"""Trial-epochs from guide 000's broken run to the first healthy config that beats its quality.

    python bench/compute_to_healthy.py [--seeds 0 1 2] [--epochs 16] [--out bench_results/compute_to_healthy]

For each seed: train wgan_large at the cpu preset with the post-mortem's broken config (the `postmortem`
preset: LEARNING_RATE_G 1e-5, LEARNING_RATE_D 1e-4, N_CRITIC 5, BATCH_SIZE 32, EMA_DECAY 0.999) for --epochs,
diagnose it, then count the trial-epochs each method trains until a config is healthy by the diagnosis core
and beats the broken run's quality:
  (a) autofix --apply: the remedy ladder, stage by stage, with the collapse stopper;
  (b) a plain Optuna TPE + ASHA sweep over the model's full space from the broken config (the broken config is
      its first trial, as in any sweep), no collapse stopper, no ladder;
  (c) the guides' manual procedure: the plan's changes one at a time, in order, each trained --epochs.
Every method trains one trial at a time (2 CPUs each), so trial-epochs are counted exactly up to the success;
(a) and (b) end their search there. Prints a table per seed and the medians with the ratio a/b (target <= 1/3).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_SWEEP_TRIALS = 12


def broken_run(seed: int, epochs: int, root: Path) -> Path:
    import torch

    from trainables.config import build_config
    from trainables.registry import get_model, preset_overrides
    from trainables.run import train

    out = root / f"broken_seed{seed}"
    if not (out / "losses.csv").is_file():
        spec = get_model("wgan_large")
        cfg = build_config(spec.defaults, preset_overrides(spec, "cpu"), preset_overrides(spec, "postmortem"),
                           {"num_epochs": epochs, "seed": seed, "dataset_size": 480, "quality_every": 4,
                            "checkpoint_every": epochs})
        train(cfg, out, torch.device("cpu"))
    return out


def load(run_dir: Path, epochs: int):
    import argparse as ap

    from tuner.cli.autofix_apply import load_broken

    args = ap.Namespace(run=str(run_dir), family=None, train_cmd=None, config=None, model=None, data=None,
                        epochs=epochs, cpus_per_trial=2.0)
    return load_broken(args)


def method_autofix(broken, seed: int, epochs: int, root: Path, store) -> dict:
    from tuner.autofix import FixSettings, run_autofix

    settings = FixSettings(name=f"a_seed{seed}", epochs=epochs, storage=root, trials=4, concurrency=1,
                           cpus_per_trial=2.0, seed=seed)
    result = run_autofix(broken, settings, store)
    return {"trial_epochs": result.spent, "fixed": result.fixed is not None, "stage": result.fixed_stage,
            "trials": sum(len(s.summary.trials) for s in result.stages if s.summary)}


def method_sweep(broken, seed: int, epochs: int, root: Path, store) -> dict:
    from search_spaces.spaces import model_space
    from tuner.core.stopping import beats
    from tuner.sweep import Seek, SweepSettings, run_sweep
    from tuner.targets import ModelTarget

    base = {**broken.config, "num_epochs": epochs}
    settings = SweepSettings(target=ModelTarget("wgan_large"), base=base, space=model_space("wgan_large"),
                             name=f"b_seed{seed}", trials=MAX_SWEEP_TRIALS, concurrency=1, cpus_per_trial=2.0,
                             seed=seed, storage=root, stopper=False, asha=True, seek=Seek(broken.quality))
    summary = run_sweep(settings, store)
    ordered = sorted(summary.trials, key=lambda t: t.name)
    spent, fixed = 0, False
    for t in ordered:
        spent += t.iterations
        if t.verdict.status == "healthy" and beats(t.quality, broken.quality):
            fixed = True
            break
    return {"trial_epochs": spent, "fixed": fixed, "trials": len(ordered)}


def method_manual(broken, seed: int, epochs: int, root: Path) -> dict:
    """One change at a time, in the plan's order, each trained `epochs` from scratch (guide 000's restart)."""
    import pandas as pd
    import torch

    from trainables.config import GanConfig
    from trainables.run import train
    from tuner.core.diagnosis import diagnose
    from tuner.core.stopping import beats

    config, spent = {**broken.config, "num_epochs": epochs}, 0
    for i, step in enumerate(broken.target.applicable(broken.plan.steps)):
        if isinstance(step.new, str) and step.parameter != "MODEL":
            continue
        config[step.parameter.lower()] = step.new
        out = root / f"c_seed{seed}" / f"change{i}_{step.parameter.lower()}"
        torch.set_num_threads(2)
        train(GanConfig(**config), out, torch.device("cpu"))
        spent += epochs
        frame = pd.read_csv(out / "losses.csv")
        quality = float(frame["quality"].dropna().iloc[-1])
        if diagnose(frame).label == "healthy" and beats(quality, broken.quality):
            return {"trial_epochs": spent, "fixed": True, "changes": i + 1}
    return {"trial_epochs": spent, "fixed": False, "changes": i + 1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--out", default="bench_results/compute_to_healthy")
    args = parser.parse_args()
    root = Path(args.out).resolve()
    root.mkdir(parents=True, exist_ok=True)

    from tuner.run_context import RunOptions, run_context

    results = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else {}
    options = RunOptions(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="compute_to_healthy")
    with run_context(options) as store:
        for seed in args.seeds:
            run_dir = broken_run(seed, args.epochs, root)
            broken = load(run_dir, args.epochs)
            row = results.get(str(seed), {"label": broken.diagnosis.label, "quality": broken.quality})
            print(f"seed {seed}: broken run {broken.diagnosis.label}, quality {broken.quality:.4g}", flush=True)
            for name, method in (("a", method_autofix), ("b", method_sweep), ("c", None)):
                if name in row:
                    continue
                started = time.perf_counter()
                row[name] = (method(broken, seed, args.epochs, root, store) if method else
                             method_manual(broken, seed, args.epochs, root))
                row[name]["seconds"] = round(time.perf_counter() - started, 1)
                print(f"  ({name}) {row[name]}", flush=True)
                results[str(seed)] = row
                (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results, args.epochs)


def report(results: dict, epochs: int) -> None:
    print("\n| seed | broken | (a) autofix | (b) TPE+ASHA sweep | (c) manual, one change at a time |")
    print("|---|---|---|---|---|")
    for seed, row in sorted(results.items()):
        cells = [_cell(row.get(m)) for m in "abc"]
        print(f"| {seed} | {row['label']} ({row['quality']:.3g}) | " + " | ".join(cells) + " |")
    med = {m: statistics.median(r[m]["trial_epochs"] for r in results.values() if m in r)
           for m in "abc" if all(m in r for r in results.values())}
    print(f"| median | | {med.get('a', math.nan):g} | {med.get('b', math.nan):g} | {med.get('c', math.nan):g} |")
    if med.get("b"):
        print(f"\nratio (a)/(b) = {med['a'] / med['b']:.2f} (target <= 0.33); (a)/(c) = "
              f"{med['a'] / med['c']:.2f}; {epochs} epochs per trial")


def _cell(result: dict | None) -> str:
    if not result:
        return "-"
    mark = "" if result["fixed"] else " (not fixed)"
    return f"{result['trial_epochs']}{mark}"


if __name__ == "__main__":
    main()
