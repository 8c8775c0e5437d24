"""The diagnosis core against a labelled corpus of real gantune runs.

    python bench/diagnosis.py            # score: accuracy per label, median onset error, healthy runs flagged
    python bench/diagnosis.py make       # regenerate the corpus in tests/data/diagnosis/ (about a minute)

Each corpus run is a real toy2d training (2,000 points of the mixture, 30 epochs, one CPU thread) whose config
makes the outcome known: the seed config on two seeds and on grid25 trains healthy; no gradient penalty with
learning rates of 0.5 diverges (from the start, or at epoch 12 when switched on after 12 healthy epochs, as
`gantune train --resume --set` would); a critic that cannot learn (LEARNING_RATE_D 1e-7) lets the generator
dominate; no penalty with a fast generator and N_CRITIC 1 lets the critic dominate; a generator that cannot
learn (LEARNING_RATE_G 1e-7) never leaves its initial point cloud (mode collapse); learning rates of 1e-2 with
Adam (0.9, 0.99), LAMBDA_GP 0.1 and N_CRITIC 1 make the losses swing and the gradient norm stay at 2-5 while the
samples never reach a mode (unstable; from the start, or from epoch 12). The true onset is the epoch
the bad config took effect. manifest.json records every run's phases. Two wgan_large runs at the cpu preset
(30 epochs of 480 sprites) are recorded once with `gantune train` (RECORDED): the seed config (healthy) and
guide 000's broken config (the critic dominates from the start; its W estimate climbs all run). Four cgan runs
(guide 004's BCE GAN at the cpu preset) are recorded the same way: two healthy, two discriminator-dominant.
The integrated corpus (bench/data/corpus/integrated: guide 002's system, a 'before' and an 'after' run) labels each
generator of a run from its sample grid, and each is judged on its own view of the log, as gantune judges it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.core.diagnosis import LABELS, Diagnosis  # noqa: E402  (the pure core: no torch, Ray or MLflow)

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "diagnosis"
BENCH_CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
BASE = {"dataset_size": 2000, "num_epochs": 30, "quality_every": 0}
DIVERGE = {"learning_rate_d": 0.5, "learning_rate_g": 0.5, "lambda_gp": 0.0}
# guide 001 1: "both losses oscillate wildly: learning rate too high or LAMBDA_GP too low"
UNSTABLE = {"learning_rate_d": 1e-2, "learning_rate_g": 1e-2, "beta1": 0.9, "beta2": 0.99, "lambda_gp": 0.1,
            "n_critic": 1}
# name -> (true label, true onset, phases: [(first epoch, overrides)])
RUNS = {
    "healthy_ring8_seed1": ("healthy", None, [(0, {"seed": 1})]),
    "healthy_ring8_seed2": ("healthy", None, [(0, {"seed": 2})]),
    "healthy_grid25": ("healthy", None, [(0, {"data": "grid25"})]),
    "diverged_from_start": ("diverged", 0, [(0, DIVERGE)]),
    "diverged_at_12": ("diverged", 12, [(0, {}), (12, DIVERGE)]),
    "generator_dominant_frozen_critic": ("generator_dominant", 0, [(0, {"learning_rate_d": 1e-7})]),
    "discriminator_dominant_no_penalty": ("discriminator_dominant", 0,
                                          [(0, {"lambda_gp": 0.0, "learning_rate_g": 3e-3, "n_critic": 1})]),
    "mode_collapse_frozen_generator": ("mode_collapse", 0, [(0, {"learning_rate_g": 1e-7})]),
    "unstable_from_start": ("unstable", 0, [(0, UNSTABLE)]),
    "unstable_at_12": ("unstable", 12, [(0, {}), (12, UNSTABLE)]),
}


# Runs recorded once with `gantune train` (minutes each on two cores), kept as they are by `make`.
_CPU = ["--preset", "cpu", "--set", "DATASET_SIZE=480", "--set", "QUALITY_EVERY=4", "--set", "CHECKPOINT_EVERY=4"]
_CGAN = "gantune train cgan --preset cpu,strong_d --set LEARNING_RATE_D=2e-3"
RECORDED = {  # name -> (true label, true onset, model, how it was made)
    "healthy_wgan_large_cpu": ("healthy", None, "wgan_large", "gantune train wgan_large " + " ".join(_CPU)),
    "discriminator_dominant_postmortem_cpu": ("discriminator_dominant", 0, "wgan_large", "gantune train wgan_large "
                                              + " ".join(_CPU).replace("cpu", "cpu,postmortem", 1)),
    # guide 000's fix (with LAMBDA_GP 5) in an autofix stage of bench/compute_to_healthy.py, seed 1: its g_loss and
    # W estimate still climb at epoch 14 while its quality rises fast (KID 2,160 -> 250): a healthy start
    "healthy_improving_wgan_large_cpu": ("healthy", None, "wgan_large",
                                         "bench/compute_to_healthy.py (seed 1), stage 2 trial 1"),
    # guide 004's BCE GAN (cgan, 32x32 sprites): its fixed config, healthy; LR_D 10x LR_G with no smoothing or
    # noise: D wins every epoch but a few (D(real) ~0.95, D(fake) ~0.05, G loss 3-5); with LR_G 5e-5 as well, the
    # guide's own picture (D loss 1e-4, D(real) 1.000, D(fake) 0.000, G loss rising past 10)
    "healthy_cgan_cpu": ("healthy", None, "cgan", "gantune train cgan --preset cpu --epochs 20"),
    "healthy_cgan_guide_004_fix_cpu": ("healthy", None, "cgan", _CGAN.replace("2e-3", "1e-4")
                                       + " --set LABEL_SMOOTHING=0.1 --set NOISE_STD=0.05 --epochs 30"),
    "discriminator_dominant_cgan_cpu": ("discriminator_dominant", 0, "cgan", _CGAN + " --epochs 30"),
    "discriminator_dominant_cgan_slow_g_cpu": ("discriminator_dominant", 0, "cgan", _CGAN
                                               + " --set LEARNING_RATE_G=5e-5 --set QUALITY_EVERY=4 --epochs 12"),
}


def make() -> None:
    import torch

    from trainables.config import build_config
    from trainables.registry import get_model
    from trainables.run import LossLog, make_trainer

    torch.set_num_threads(1)
    spec = get_model("toy2d")
    CORPUS.mkdir(parents=True, exist_ok=True)
    for name, (_, _, phases) in RUNS.items():
        trainer, log = None, LossLog(CORPUS / f"{name}.csv", keep_epochs=0)
        for epoch in range(BASE["num_epochs"]):
            for start, overrides in phases:
                if start == epoch:
                    cfg = build_config(spec.defaults, BASE, phases[0][1] if start else {}, overrides)
                    state = trainer.state_dict() if trainer else None
                    trainer = make_trainer(cfg, torch.device("cpu"))
                    if state:
                        trainer.load_state_dict(state)  # the learning rates of the new config win
            log.append(trainer.train_epoch())
        print(f"made {name}")
    manifest = {name: {"label": label, "onset": onset, "model": "toy2d", "base": BASE,
                       "phases": [{"from_epoch": s, "overrides": o} for s, o in phases]}
                for name, (label, onset, phases) in RUNS.items()}
    manifest.update({name: {"label": label, "onset": onset, "model": model, "command": command}
                     for name, (label, onset, model, command) in RECORDED.items()})
    (CORPUS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


# *_steps: a set's clear runs trained again and logged every iteration (bench/make_corpus.py --set held --steps)
CORPORA = {"gantune": CORPUS, "dev": BENCH_CORPUS / "dev", "held": BENCH_CORPUS / "held",
           "dev_steps": BENCH_CORPUS / "dev_steps", "held_steps": BENCH_CORPUS / "held_steps",
           "integrated": BENCH_CORPUS / "integrated"}
FIT_ON = ("gantune", "dev")  # the calibration is fitted on these; "held" is never tuned on
BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)


@dataclasses.dataclass(frozen=True)
class Call:
    """One run of a corpus: its true label and onset, and what the diagnosis said."""

    name: str
    truth: str
    onset: int | None
    clear: bool
    found: Diagnosis

    @property
    def right(self) -> bool:
        return self.found.label == self.truth


def log_path(folder: Path, name: str) -> Path:
    """A run's log: NAME.csv, else the one NAME.* that is not its sample trace."""
    if (folder / f"{name}.csv").is_file():
        return folder / f"{name}.csv"
    found = [p for p in folder.glob(f"{name}.*") if not p.name.endswith(".samples.csv")]
    if len(found) != 1:
        raise SystemExit(f"{folder}: no single log for run {name!r} (found {[p.name for p in found]})")
    return found[0]


def score(folder: Path) -> list[Call]:
    """Every run of a corpus folder (a manifest.json beside the logs) diagnosed from its log alone; a manifest of
    multi-network runs (its `runs`) gives one call per network."""
    from tuner.core.diagnosis import diagnose
    from tuner.core.logs import read_run

    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise SystemExit(f"{folder}: no manifest.json (make the corpus first: bench/make_corpus.py)")
    manifest = json.loads(manifest_file.read_text())
    if "runs" in manifest:
        return score_networks(folder, manifest["runs"])
    calls = []
    for name, truth in sorted(manifest.items()):
        run = read_run(folder / truth["log"] if "log" in truth else log_path(folder, name))
        calls.append(Call(name, truth["label"], truth.get("onset_logged", truth.get("onset")), truth.get("clear", True),
                          diagnose(run.frame, run.family)))
    return calls


def score_networks(folder: Path, runs: dict[str, dict]) -> list[Call]:
    """Each generator of each integrated run (its true label `label_<network>`, read from its sample grid) judged
    on its own view of the log, as gantune's diagnosis of the integrated system judges it."""
    from tuner.core.logs import read_run
    from tuner.diagnosis_integrated import diagnose_networks

    calls = []
    for name, truth in sorted(runs.items()):
        found = diagnose_networks(read_run(log_path(folder, name)).frame).by_network
        calls += [Call(f"{name}/{network}", truth[f"label_{network}"], truth.get(f"onset_{network}"), True, d)
                  for network, d in found.items()]
    return calls


def report(title: str, calls: list[Call], verbose: bool) -> None:
    clear = [c for c in calls if c.clear]
    right = sum(c.right for c in clear)
    print(f"\n## {title}: {len(calls)} runs, {len(clear)} clear; {right}/{len(clear)} clear runs right "
          f"({right / max(1, len(clear)):.1%}), all runs {sum(c.right for c in calls)}/{len(calls)}")
    _per_label(clear)
    _confusion(clear)
    flagged = [c.name for c in calls if c.truth == "healthy" and c.found.label != "healthy"]
    print(f"\nhealthy runs flagged (clear or not): {len(flagged)} {flagged if flagged else ''}")
    _calibration(clear)
    if verbose:
        for c in calls:
            mark = "  " if c.right else "XX"
            print(f"  {mark} {c.name:<40} true {c.truth:<23} found {c.found.label:<23} conf {c.found.confidence:.2f} "
                  f"onset {c.onset} -> {c.found.onset_epoch}{'' if c.clear else '  (unclear)'}")


def _per_label(calls: list[Call]) -> None:
    print("\n| label | runs | right | accuracy | median onset error (epochs) |\n|---|---|---|---|---|")
    for label in LABELS:
        rows = [c for c in calls if c.truth == label]
        if not rows:
            continue
        right = [c for c in rows if c.right]
        errors = [abs(c.found.onset_epoch - c.onset) for c in right
                  if c.onset is not None and c.found.onset_epoch is not None]
        onset = f"{statistics.median(errors):g}" if errors else "-"
        print(f"| {label} | {len(rows)} | {len(right)} | {len(right) / len(rows):.0%} | {onset} |")


def _confusion(calls: list[Call]) -> None:
    short = {label: label.replace("discriminator_", "d_").replace("generator_", "g_") for label in LABELS}
    print("\n| true \\ found | " + " | ".join(short[x] for x in LABELS) + " |\n" + "|---" * (len(LABELS) + 1) + "|")
    for truth in LABELS:
        counts = [sum(c.truth == truth and c.found.label == found for c in calls) for found in LABELS]
        if sum(counts):
            print(f"| {short[truth]} | " + " | ".join(str(n) if n else "." for n in counts) + " |")


def _calibration(calls: list[Call]) -> None:
    """The reliability table (stated confidence against the share right, by bin) and the Brier score."""
    print("\n| confidence | runs | mean stated | share right |\n|---|---|---|---|")
    for low, high in zip(BINS, BINS[1:]):
        rows = [c for c in calls if low <= c.found.confidence < high]
        if rows:
            stated = statistics.mean(c.found.confidence for c in rows)
            print(f"| {low:.2f}-{min(high, 1):.2f} | {len(rows)} | {stated:.2f} | "
                  f"{sum(c.right for c in rows) / len(rows):.2f} |")
    brier = statistics.mean((c.found.confidence - c.right) ** 2 for c in calls) if calls else math.nan
    print(f"Brier score (confidence that the label is right): {brier:.3f}")


def fit(corpora: dict[str, Path]) -> None:
    """Count each rule's right calls on the fitting corpora's clear runs; write them as the core's calibration."""
    from tuner.core.diagnosis import CALIBRATION, reload_calibration

    counts: dict[str, list[int]] = {}
    for name in FIT_ON:
        if not (corpora[name] / "manifest.json").is_file():
            raise SystemExit(f"fit: no {name} corpus at {corpora[name]}")
        for call in (c for c in score(corpora[name]) if c.clear):
            right, total = counts.get(call.found.rule, [0, 0])
            counts[call.found.rule] = [right + call.right, total + 1]
    CALIBRATION.write_text(json.dumps({"fitted_on": list(FIT_ON), "rules": dict(sorted(counts.items()))},
                                      indent=1) + "\n")
    reload_calibration()
    print(f"wrote {CALIBRATION} ({len(counts)} rules, {sum(t for _, t in counts.values())} runs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", nargs="?", default="score", choices=("score", "make", "fit"))
    p.add_argument("--corpus", action="append", default=[],
                   help="a corpus to score: gantune, dev, held, dev_steps, held_steps, integrated, or a folder "
                        "with manifest.json (default: all six)")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per run")
    args = p.parse_args()
    if args.command == "make":
        make()
    if args.command == "fit":
        fit(CORPORA)
    for name in args.corpus or list(CORPORA):
        folder = CORPORA.get(name, Path(name))
        if not (folder / "manifest.json").is_file():
            print(f"\n## {name}: no corpus at {folder} (skipped)")
            continue
        report(name, score(folder), args.verbose)


if __name__ == "__main__":
    main()
