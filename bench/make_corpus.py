"""Generate a labelled corpus of GAN training logs with the independent reference trainer in bench/refgan.

    python bench/make_corpus.py --set dev            # all dev runs (skips those already in the manifest)
    python bench/make_corpus.py --set held --list    # the run specs only
    python bench/make_corpus.py --set dev --only NAME [--force]
    python bench/make_corpus.py --set held --steps  # the set's clear runs again, logged every iteration

Each run writes bench/data/corpus/<set>/<name>.<csv|tsv|txt> (the log, in one of refgan.layouts' layouts),
<name>.samples.csv (the per-epoch sample trace) and its manifest.json entry. Labels come from the sample trace and
the critic probe (refgan.labels), never from the config meant to provoke them. `--steps` trains a set's clear runs
again and writes corpus/<set>_steps/: each log one row per generator step (`iteration,d_loss,g_loss[,d_acc]`, the
d_loss of the step's last critic update), as trainers that print every iteration write them; its onsets count
iterations.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refgan.config import RunConfig  # noqa: E402
from refgan.data import load  # noqa: E402
from refgan.labels import label_run  # noqa: E402
from refgan.layouts import BY_NAME, LAYOUTS, read_log, write_log  # noqa: E402
from refgan.recipes import RECIPES, plan  # noqa: E402
from refgan.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parent / "data" / "corpus"
HEALTHY_PRONE = ("bce_ring", "wgan_ring")
# rng seed, runs in the main plan, extra recipes appended (the main plan's settings rarely end healthy)
SETS = {
    "dev": (1, 60, HEALTHY_PRONE * 7 + ("frozen_critic",) * 3 + ("bce_ring",) * 8 + ("wgan_ring",) * 2),
    "held": (2, 36, HEALTHY_PRONE * 7 + ("frozen_critic",) * 3 + ("bce_ring",) * 3 + ("wgan_ring",)),
}


def write_trace(path: Path, trace: list[dict]) -> None:
    keys = sorted({k for row in trace for k in row}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, keys, restval="")
        writer.writeheader()
        for row in trace:
            writer.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_trace(path: Path) -> list[dict]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def label_entry(logs: list[dict], trace: list[dict], layout_name: str) -> dict:
    result = label_run(logs, trace)
    onset = result["onset"]
    logged = None if onset is None else onset + BY_NAME[layout_name].base
    keep = ("label", "clear", "why")
    return {"onset": onset, "onset_logged": logged, **{k: result[k] for k in keep}}


def run_one(out: Path, name: str, recipe: str, cfg: RunConfig, layout_name: str) -> dict:
    data = load(cfg.data, cfg.data_std, cfg.n_data, cfg.seed)
    logs, trace = train(cfg, data)
    layout = BY_NAME[layout_name]
    write_log(out / f"{name}.{layout.ext}", layout, logs)
    write_trace(out / f"{name}.samples.csv", trace)
    about = {"family": cfg.loss, "data": cfg.data, "layout": layout_name, "log": f"{name}.{layout.ext}"}
    return {
        **label_entry(logs, trace, layout_name),
        **about,
        "recipe": recipe,
        "intended": RECIPES[recipe][0],
        "config": asdict(cfg),
    }


def run_steps(out: Path, name: str, entry: dict) -> dict:
    """One run of a set again (its config and seed), logged one row per generator step."""
    cfg = RunConfig(**{k: tuple(v) if isinstance(v, list) and k == "betas" else v for k, v in entry["config"].items()})
    data = load(cfg.data, cfg.data_std, cfg.n_data, cfg.seed)
    steps: list[dict] = []
    logs, trace = train(cfg, data, steps)
    keys = [k for k in ("iteration", "d_loss", "g_loss", "d_acc") if k in steps[0]]
    with (out / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in steps)
    write_trace(out / f"{name}.samples.csv", trace)
    labelled = label_entry(logs, trace, entry["layout"])
    per_epoch = len(steps) // len(logs)
    onset = labelled["onset"]
    return {**entry, **labelled, "layout": "steps", "log": f"{name}.csv",
            "onset_logged": None if onset is None else onset * per_epoch}


def generate_steps(name: str, data: tuple[str, ...] | None) -> None:
    source = load_manifest(ROOT / name / "manifest.json")
    out = ROOT / f"{name}_steps"
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = load_manifest(manifest_path)
    for run, entry in sorted(source.items()):
        if not entry["clear"] or run in manifest or (data and entry["data"] not in data):
            continue
        t0 = time.time()
        manifest[run] = run_steps(out, run, entry)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        print(f"{run:32} {manifest[run]['label']:24} clear={manifest[run]['clear']!s:5} {time.time() - t0:5.1f}s",
              flush=True)


def relabel(out: Path, manifest: dict) -> None:
    """Recompute every label from the stored logs and sample traces (after a change to refgan.labels)."""
    for name, entry in manifest.items():
        logs = read_log(out / entry["log"], BY_NAME[entry["layout"]])
        entry.update(label_entry(logs, read_trace(out / f"{name}.samples.csv"), entry["layout"]))


def summary(manifests: dict[str, dict]) -> str:
    labels = sorted({e["label"] for m in manifests.values() for e in m.values()})
    lines = [f"{'label':24}" + "".join(f"{s:>14}" for s in manifests)]
    for label in labels:
        cells = []
        for m in manifests.values():
            hits = [e for e in m.values() if e["label"] == label]
            cells.append(f"{len(hits):>5} ({sum(e['clear'] for e in hits)} clear)")
        lines.append(f"{label:24}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def load_manifest(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), required=True)
    parser.add_argument("--only", help="run just this spec")
    parser.add_argument("--list", action="store_true", help="list the run specs and exit")
    parser.add_argument("--force", action="store_true", help="rerun specs already in the manifest")
    parser.add_argument("--relabel", action="store_true", help="relabel the stored runs without training")
    parser.add_argument("--steps", action="store_true",
                        help="train the set's clear runs again, logged every generator step, into <set>_steps/")
    parser.add_argument("--data", help="with --steps: only runs on these data sets (e.g. ring8,grid25)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.steps:
        generate_steps(args.set, tuple(args.data.split(",")) if args.data else None)
        return
    seed, count, extra = SETS[args.set]
    specs = plan(random.Random(seed), count, extra, LAYOUTS, seed_base=1000 * seed)
    if args.list:
        for name, _, cfg, layout in specs:
            print(name, layout, cfg)
        return
    generate(args, specs)


def generate(args, specs) -> None:
    out = ROOT / args.set
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = load_manifest(manifest_path)
    start = time.time()
    if args.relabel:
        relabel(out, manifest)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        specs = []
    for name, recipe, cfg, layout in specs:
        if (args.only and name != args.only) or (name in manifest and not args.force and not args.only):
            continue
        t0 = time.time()
        manifest[name] = run_one(out, name, recipe, cfg, layout)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        entry = manifest[name]
        print(f"{name:32} {entry['label']:24} clear={entry['clear']!s:5} {time.time() - t0:5.1f}s", flush=True)
    print(f"total {time.time() - start:.0f}s")
    manifests = {s: load_manifest(ROOT / s / "manifest.json") for s in SETS}
    print(summary({s: m for s, m in manifests.items() if m}))


if __name__ == "__main__":
    main()
