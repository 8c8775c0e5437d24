"""Anchor gantune's quality metrics to the literature's mode-collapse benchmarks.

    python bench/quality_anchors.py search --data ring8 --trials 24     # Optuna TPE over toy2d's space
    python bench/quality_anchors.py search --data grid25 --trials 12 --epochs 100 --startup 4 [--seeds-per-trial 2]
    python bench/quality_anchors.py points --seeds 5 [--epochs N] [--set KEY=VALUE]  # ring8 and grid25 tables
    python bench/quality_anchors.py stacked                             # Stacked digits: real row vs wgan_small
    python bench/quality_anchors.py bridges runs/anchors/anchor-grid25-s*   # where the off-mode samples lie

`search` runs a seeded Optuna TPE study (maximising `quality`) over the toy2d space in search_spaces/spaces.py,
starting from the seed config and every found config (this mixture's too), and writes the best config to
search_spaces/found/toy2d_DATA.json; with --seeds-per-trial K a trial trains K seeds (in --workers processes) and
scores their mean, since one seed's end-of-run share varies by several points. `points` trains that config with 5
seeds per mixture (--workers at a time, one thread each) and prints modes captured and high-quality % beside the
VEEGAN and PacGAN tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.spaces import TOY2D_SPACE, seed_point, suggest, tie  # noqa: E402
from trainables.config import build_config, overrides_from, parse_set, write_config  # noqa: E402
from trainables.data import load_dataset, to_float  # noqa: E402
from trainables.data import points as points_data  # noqa: E402
from trainables.errors import GantuneError  # noqa: E402
from trainables.quality import HIGH_QUALITY_SIGMAS, NEAREST_K, QualityReference, generate, reference, score  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402
from trainables.run import load_run, train  # noqa: E402

FOUND = Path(__file__).resolve().parents[1] / "search_spaces" / "found"
RUNS = Path("runs") / "anchors"
PERFECT_HQ = 98.9  # % of a perfect sampler's samples within 3 sigma of their mode (2-D Gaussian)
# (modes, high-quality %) as the papers print them
PUBLISHED = {
    "ring8": [("GAN (VEEGAN paper)", 1, 99.3), ("VEEGAN", 8, 52.9), ("GAN (PacGAN paper)", 6.3, 98.2),
              ("PacGAN4", 7.8, 95.9)],
    "grid25": [("VEEGAN", 24.6, 40.0), ("GAN (PacGAN paper)", 17.3, 94.8), ("PacGAN4", 24.8, 93.6)],
}


def _train_toy(overrides: dict, data: str, seed: int, tag: str) -> dict[str, float]:
    spec = get_model("toy2d")
    cfg = build_config(spec.defaults, {**overrides, "data": data, "seed": seed, "quality_every": 0})
    start = time.perf_counter()
    trainer = train(cfg, RUNS / f"{tag}-{data}-s{seed}", torch.device("cpu"))
    return {**trainer.quality(), "train_s": time.perf_counter() - start}


def _seed_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for a trial's seeds, one torch thread each (the machine's cores, not torch's threads)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=torch.set_num_threads, initargs=(1,))


def _start_points(data: str, refine: list[str]) -> list[dict]:
    """The trials a search starts with. Without `refine`: the seed config, as the sweep does, then every found config
    (this mixture's too). With it: this mixture's found config with each value of each named knob in turn, the
    others kept (a coordinate step around what an earlier search found)."""
    if not refine:
        defaults = dataclasses.asdict(build_config(get_model("toy2d").defaults))
        found = [overrides_from(json.loads(path.read_text())) for path in sorted(FOUND.glob("toy2d_*.json"))]
        return [seed_point(TOY2D_SPACE, config) for config in (defaults, *found)]
    path = FOUND / f"toy2d_{data}.json"
    if not path.is_file():
        sys.exit(f"error: --refine starts from {path}, which does not exist; run a search without --refine first")
    incumbent = seed_point(TOY2D_SPACE, overrides_from(json.loads(path.read_text())))
    points = [incumbent]
    for key in refine:
        param = TOY2D_SPACE.get(key.lower())
        if param is None or param.kind == "float":
            discrete = sorted(k.upper() for k, p in TOY2D_SPACE.items() if p.kind != "float")
            sys.exit(f"error: --refine {key}: not a discrete knob of toy2d's space (choose from {', '.join(discrete)})")
        values = param.choices if param.kind == "choice" else range(int(param.low), int(param.high) + 1)
        for value in values:
            point = {**incumbent, key.lower(): value}
            if point not in points:
                points.append(point)
    return points


def search(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=args.startup)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for point in _start_points(args.data, args.refine):
        study.enqueue_trial(point)
    seeds = [args.seed + i for i in range(args.seeds_per_trial)]

    def objective(trial: optuna.Trial) -> float:
        overrides = {**tie(suggest(trial, TOY2D_SPACE)), "num_epochs": args.epochs}
        start = time.perf_counter()
        tags = [f"search{trial.number}"] * len(seeds)
        runs = list(pool.map(_train_toy, [overrides] * len(seeds), [args.data] * len(seeds), seeds, tags))
        m = {key: statistics.mean(r[key] for r in runs) for key in runs[0]}  # each metric's mean over the seeds
        for key in ("modes_captured", "high_quality_pct", "reverse_kl", "mode_spread"):
            trial.set_user_attr(key, m[key])
        per_seed = " ".join(format(r["high_quality_pct"], ".1f") for r in runs)
        print(f"trial {trial.number:>3}  quality {m['quality']:.3f}  modes {m['modes_captured']:.1f}  "
              f"hq {m['high_quality_pct']:.1f}% (seeds {per_seed})  "
              f"{time.perf_counter() - start:.0f}s  {overrides}", flush=True)
        return m["quality"] if args.objective == "quality" else anchor_score(m, args.data)

    with _seed_pool(min(args.workers, len(seeds))) as pool:
        study.optimize(objective, n_trials=args.trials)
    best = {**tie(study.best_trial.params), "num_epochs": args.epochs}
    FOUND.mkdir(exist_ok=True)
    path = FOUND / f"toy2d_{args.data}.json"
    cfg = build_config(get_model("toy2d").defaults, overrides_from({k.upper(): v for k, v in best.items()}),
                       {"data": args.data})
    write_config(cfg, path)
    print(f"best trial {study.best_trial.number}: {args.objective} {study.best_value:.3f} -> {path}")


def anchor_score(metrics: dict[str, float], data: str) -> float:
    """The anchors' target as one number: the share of modes captured times the high-quality share, the latter
    capped at a perfect sampler's 98.9% (above it the samples sit on the mode centres: collapse, not quality)."""
    modes = len(points_data.mode_centres(data))
    return metrics["modes_captured"] / modes * min(metrics["high_quality_pct"], PERFECT_HQ) / 100.0


def points(args: argparse.Namespace) -> None:
    jobs = {data: _points_overrides(args, data) for data in args.data}
    with _seed_pool(args.workers) as pool:  # every (mixture, seed) run at once, as many at a time as workers
        futures = {data: [pool.submit(_train_toy, overrides, data, seed, "anchor") for seed in range(args.seeds)]
                   for data, overrides in jobs.items()}
        for data, runs in futures.items():
            rows = [run.result() for run in runs]
            for seed, row in enumerate(rows):
                print(f"  {data} seed {seed}: modes {row['modes_captured']:.0f}  hq {row['high_quality_pct']:.1f}%  "
                      f"spread {row['mode_spread']:.2f}  quality {row['quality']:.3f}  {row['train_s']:.0f}s",
                      flush=True)
            _points_table(data, rows, jobs[data]["num_epochs"], args.workers)


def _points_overrides(args: argparse.Namespace, data: str) -> dict:
    """The config `points` trains on a mixture: its found config (or --config), with --epochs and --set applied."""
    path = Path(args.config) if args.config else FOUND / f"toy2d_{data}.json"
    if args.config and not path.is_file():
        sys.exit(f"error: config not found: {path}")
    if not path.is_file():  # no search of its own yet: the ring's found config, said so
        print(f"{data}: no {path.name}; using {FOUND / 'toy2d_ring8.json'}", flush=True)
        path = FOUND / "toy2d_ring8.json"
    overrides = {k: v for k, v in overrides_from(json.loads(path.read_text())).items() if k not in ("seed", "data")}
    if args.epochs:
        overrides["num_epochs"] = args.epochs
    overrides.update(parse_set(args.set))
    build_config(get_model("toy2d").defaults, {**overrides, "data": data})  # bad values: one line, before training
    return overrides


def _points_table(data: str, rows: list[dict], epochs: int, workers: int) -> None:
    modes = statistics.mean(r["modes_captured"] for r in rows)
    hq = statistics.mean(r["high_quality_pct"] for r in rows)
    kl = statistics.mean(r["reverse_kl"] for r in rows)
    spread = statistics.mean(r["mode_spread"] for r in rows)
    seconds = statistics.mean(r["train_s"] for r in rows)
    real = _real_points(data)
    print(f"\n{data}: method | modes | high-quality % | reverse KL | mode spread")
    for name, m, h in PUBLISHED[data]:
        print(f"  {name:<22} | {m:>5} | {h:>5.1f} | | ")
    print(f"  {'gantune toy2d (found)':<22} | {modes:>5.2f} | {hq:>5.1f} | {kl:.4f} | {spread:.2f}   mean of "
          f"{len(rows)} seeds, {epochs} epochs, {seconds:.0f}s per seed on one CPU thread ({workers} at a time)")
    print(f"  {'real samples':<22} | {real['modes_captured']:>5.0f} | {real['high_quality_pct']:>5.1f} | "
          f"{real['reverse_kl']:.4f} | {real['mode_spread']:.2f}")


def _real_points(data: str) -> dict[str, float]:
    ref = reference(load_dataset(data, 32, seed=0))
    return score(load_dataset(data, 32, seed=1, size=2500).tensor, ref)


def stacked(args: argparse.Namespace) -> None:
    if args.samples < 2 * NEAREST_K:
        sys.exit(f"error: --samples {args.samples}: the quality metrics need at least {2 * NEAREST_K} samples")
    ref_data = load_dataset("stacked_digits", 32, 3, seed=0)
    ref = reference(ref_data)
    held_out = load_dataset("stacked_digits", 32, 3, seed=1, size=args.samples)
    real = score(to_float(held_out.tensor), ref)
    spec = get_model("wgan_small")
    cfg = build_config(spec.defaults, preset_overrides(spec, "cpu"),
                       {"data": "stacked_digits", "quality_every": 0, "num_epochs": args.epochs})
    start = time.perf_counter()
    trainer = train(cfg, RUNS / "stacked-wgan_small", torch.device("cpu"))
    trained = trainer.quality(args.samples)
    print(f"\nstacked_digits ({args.samples} samples; classifier held-out accuracy "
          f"{ref.classifier.accuracy:.3f} per digit)")
    print("  row | modes covered (of 1000) | KL(generated || real) | quality | kid")
    for name, m in (("held-out real triples", real), (f"wgan_small cpu, {args.epochs} epochs", trained)):
        print(f"  {name:<28} | {m['modes_hit']:>5.0f} | {m['mode_kl']:.3f} | {m['quality']:.3f} | {m['kid']:.3f}")
    print(f"  training took {time.perf_counter() - start:.0f}s")


def bridges(args: argparse.Namespace) -> None:
    """Where a mixture run's samples outside 3 sigma lie: between two neighbouring modes (the generator's
    transitions), or elsewhere; and how tight the modes are. For the EMA generator and the raw one."""
    trainers = {}
    for root in args.runs:
        trainers[Path(root).name], _ = load_run(Path(root))
        if trainers[Path(root).name].cfg.model != "toy2d":
            sys.exit(f"error: {root} is not a toy2d run; bridges reads toy2d runs on ring8 or grid25")
    print(f"{args.samples} samples per generator; sigma = the mixture's per-mode std")
    print("run | generator | high-quality % | within 1 sigma % | outside 3 sigma % | their median sigma | "
          "with a 2nd mode within one spacing % | (nearest, 2nd) mode pairs among them | largest pair %")
    for name, trainer in trainers.items():
        nets = {"ema": trainer.ema.model} if trainer.ema is not None else {}
        for kind, net in {**nets, "raw": trainer.generator}.items():
            row = _bridge_row(generate(net, trainer.cfg.latent_dim, args.samples, seed=trainer.cfg.seed + 1),
                              trainer.quality_reference)
            print(f"{name} | {kind} | " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row),
                  flush=True)


def _bridge_row(points: torch.Tensor, ref: QualityReference) -> tuple:
    dist = torch.cdist(points, ref.centres)
    two = dist.topk(2, dim=1, largest=False)
    sigmas = two.values[:, 0] / ref.mode_std
    off = sigmas >= HIGH_QUALITY_SIGMAS
    centre_gaps = torch.cdist(ref.centres, ref.centres)
    spacing = float(centre_gaps[centre_gaps > 0].min())
    between = off & (two.values[:, 1] <= spacing * 1.01)
    pairs = torch.sort(two.indices[off], dim=1).values
    _, counts = torch.unique(pairs, dim=0, return_counts=True)
    pct = 100.0 / len(points)
    return (pct * float((~off).sum()), pct * float((sigmas < 1).sum()), pct * float(off.sum()),
            float(sigmas[off].median()) if off.any() else float("nan"),
            100.0 * float(between.sum()) / max(int(off.sum()), 1), len(counts),
            pct * float(counts.max()) if len(counts) else 0.0)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--data", default="ring8", choices=("ring8", "grid25"))
    s.add_argument("--trials", type=_positive, default=24)
    s.add_argument("--epochs", type=_positive, default=30)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--startup", type=int, default=10, help="TPE's random trials before it models the results")
    s.add_argument("--objective", choices=("quality", "anchor"), default="quality",
                   help="quality (the sweep's), or anchor: modes captured x high-quality share (capped at 98.9%%)")
    s.add_argument("--seeds-per-trial", type=_positive, default=1,
                   help="train each trial with this many seeds (SEED, SEED+1, ...) and score their mean")
    s.add_argument("--workers", type=_positive, default=2, help="processes training a trial's seeds at once")
    s.add_argument("--refine", action="append", default=[], metavar="KEY",
                   help="start from this mixture's found config with each value of KEY (a discrete knob) in turn")
    p = sub.add_parser("points")
    p.add_argument("--seeds", type=_positive, default=5)
    p.add_argument("--data", nargs="+", default=["ring8", "grid25"], choices=("ring8", "grid25"))
    p.add_argument("--epochs", type=_positive, help="train this long instead of the found config's NUM_EPOCHS")
    p.add_argument("--config", help="a config.json to train instead of search_spaces/found/toy2d_DATA.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key of that config")
    p.add_argument("--workers", type=_positive, default=2, help="processes training seeds at once (one thread each)")
    k = sub.add_parser("stacked")
    k.add_argument("--epochs", type=_positive, default=30)
    k.add_argument("--samples", type=_positive, default=10000)
    b = sub.add_parser("bridges", help="where a toy2d run's off-mode samples lie")
    b.add_argument("runs", nargs="+", metavar="RUN_DIR")
    b.add_argument("--samples", type=_positive, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        {"search": search, "points": points, "stacked": stacked, "bridges": bridges}[args.what](args)
    except GantuneError as err:  # a bad --set, run directory or sample count: one line, not a traceback
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
