"""`gantune triage MODEL`: guide 003's Plan A and Plan B as one Ray Tune grid, recorded under one MLflow parent
run, with the guide's evidence table and its verdict."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from trainables.config import build_config, parse_set
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, preset_overrides
from tuner.run_context import add_run_options


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=f"one of: {', '.join(model_names())}")
    p.add_argument("--preset", default="cpu", help="preset(s) of the model (default cpu)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fix a config key")
    p.add_argument("--data", help="dataset (default: the model's)")
    p.add_argument("--epochs", type=int, help="NUM_EPOCHS of every run")
    p.add_argument("--seed", type=int, default=42, help="Plan A's seed and Plan B's batch-size seed (default 42)")
    p.add_argument("--repeats", type=int, default=3, help="Plan A's runs of the same seed (default 3)")
    p.add_argument("--batch-sizes", type=_ints, default=[256, 512, 1024], help="Plan B (default 256,512,1024)")
    p.add_argument("--seeds", type=_ints, default=[123, 456], help="Plan B's other seeds (default 123,456)")
    p.add_argument("--target-batch", type=int, help="the batch size under test (default the largest)")
    p.add_argument("--name", help="results in triage/NAME (default MODEL-TIMESTAMP)")
    add_run_options(p)


def run(args: argparse.Namespace) -> int:
    """Tell a bad seed from a bad batch size (guide 003): Plan A and Plan B as one Ray grid, with a verdict."""
    from tuner.run_context import cuda_available, run_context, run_options
    from tuner.triage import plan, run_grid, verdict

    spec = get_model(args.model)
    if args.repeats < 2:
        raise ConfigError(f"--repeats must be at least 2 to test reproducibility, got {args.repeats}")
    target = args.target_batch or max(args.batch_sizes)
    layers = {k: v for k, v in {"num_epochs": args.epochs, "data": args.data}.items() if v is not None}
    fixed = parse_set(args.set)
    base = build_config(spec.defaults_for(fixed.get("data", args.data)), preset_overrides(spec, args.preset), layers,
                        fixed)
    runs = tuple(plan(args.seed, args.repeats, sorted(set(args.batch_sizes) | {target}), args.seeds, target))
    name = args.name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = Path("triage")
    if (storage / name).exists():
        raise ConfigError(f"triage {name!r} already exists at {storage / name}; choose another --name")
    options = run_options(args)
    res = options.resources(cuda_available())

    def announce(uri: str) -> None:
        print(f"gantune triage {spec.name}: {len(runs)} runs x {base.num_epochs} epochs (Plan A: seed {args.seed} x "
              f"{args.repeats} at batch {target}; Plan B: batches {sorted(set(args.batch_sizes))}, seeds "
              f"{args.seeds})", flush=True)

    with run_context(options, announce) as store:
        outcomes = run_grid(spec.name, spec.family, base.__dict__, runs, storage, name, res.cpus_per_trial,
                            res.gpus_per_trial, res.concurrency)
    device = "cuda" if res.gpus_per_trial > 0 else "cpu"
    result = verdict(outcomes, args.seed, target, device)
    table = _table(outcomes)
    _record(store, name, spec.name, outcomes, result, table)
    (storage / name / "triage.md").write_text(table + f"\n\nverdict: {result.cause}\n{result.recommendation}\n")
    print(table)
    print(f"\nverdict: {result.cause}")
    for line in result.evidence:
        print(f"  {line}")
    print(f"recommendation: {result.recommendation}")
    return 0


def _table(outcomes) -> str:
    rows = ["| run | plan | seed | batch | epochs | diagnosis | outcome |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        rows.append(f"| {o.run.name} | {o.run.plan} | {o.run.seed} | {o.run.batch_size} | {o.epochs} | {o.label} | "
                    f"{'success' if o.ok else 'failure'} |")
    return "\n".join(rows)


def _record(store, name: str, model: str, outcomes, result, table: str) -> None:
    parent, _ = store.run(f"triage {name}", {"triage": name, "kind": "triage"})
    store.log(parent, params={"model": model, "runs": len(outcomes)},
              tags={"gantune.verdict": result.cause, "gantune.recommendation": result.recommendation,
                    "gantune.table": table})
    for o in outcomes:
        child, _ = store.run(o.run.name, {"triage": name, "kind": "triage-run", "run": o.run.name}, parent)
        store.log(child, metrics={"epochs": o.epochs, "success": float(o.ok)},
                  params={"plan": o.run.plan, "seed": o.run.seed, "batch_size": o.run.batch_size,
                          "repeat": o.run.repeat}, tags={"gantune.diagnosis": o.label})
        store.end(child)
    store.end(parent)
