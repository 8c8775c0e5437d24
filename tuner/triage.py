"""Guide 003's controlled experiments as one Ray Tune grid: Plan A (the same seed several times: is the run
reproducible?) and Plan B (batch sizes x seeds: is it the seed, the batch size, or both?). Each run is judged by
the diagnosis core; `verdict` reads the outcomes with guide 003's "Interpret Results" table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.core.diagnosis import diagnose
from tuner.trial import TrialSetup, train_trial


@dataclasses.dataclass(frozen=True)
class TriageRun:
    plan: str  # "A" or "B" (a run both plans need is run once, as A)
    seed: int
    batch_size: int
    repeat: int = 0

    @property
    def name(self) -> str:
        return f"{self.plan}-seed{self.seed}-batch{self.batch_size}" + (f"-r{self.repeat}" if self.plan == "A" else "")


@dataclasses.dataclass(frozen=True)
class Outcome:
    run: TriageRun
    label: str  # the diagnosis core's label for the whole run
    epochs: int
    losses: tuple[tuple[float, float], ...]  # (d_loss, g_loss) per epoch, for the reproducibility check

    @property
    def ok(self) -> bool:
        return self.label == "healthy"


@dataclasses.dataclass(frozen=True)
class Verdict:
    cause: str  # "not reproducible", "random initialisation", "batch size", "both", "none", "neither"
    recommendation: str
    evidence: tuple[str, ...]


def plan(seed: int, repeats: int, batch_sizes: Sequence[int], seeds: Sequence[int], target: int) -> list[TriageRun]:
    """Plan A: `seed` at the target batch, `repeats` times; Plan B: `seed` at each batch size, then the target
    batch with each other seed. Plan B's (seed, target) run is Plan A's first."""
    runs = [TriageRun("A", seed, target, r) for r in range(repeats)]
    runs += [TriageRun("B", seed, b) for b in batch_sizes if b != target]
    runs += [TriageRun("B", s, target) for s in seeds if s != seed]
    return runs


def first_difference(outcomes: Sequence[Outcome]) -> int | None:
    """The first epoch at which the repeats' losses differ; None when they are identical."""
    base = outcomes[0].losses
    for other in outcomes[1:]:
        for epoch, (a, b) in enumerate(zip(base, other.losses)):
            if a != b:
                return epoch
        if len(base) != len(other.losses):
            return min(len(base), len(other.losses))
    return None


def verdict(outcomes: Sequence[Outcome], seed: int, target: int, device: str = "cpu") -> Verdict:
    """Guide 003 Step 3 on the grid's outcomes."""
    repeats = [o for o in outcomes if o.run.plan == "A"]
    differ = first_difference(repeats) if len(repeats) > 1 else None
    if len({o.label for o in repeats}) > 1 or differ is not None:
        source = ("non-deterministic GPU kernels (cuDNN autotuning, atomic adds): set "
                  "torch.use_deterministic_algorithms(True) and CUBLAS_WORKSPACE_CONFIG" if device == "cuda" else
                  "thread-count-dependent reductions or an unseeded random source")
        return Verdict("not reproducible", f"fix reproducibility before anything else; likely source: {source}",
                       (f"Plan A repeats: {', '.join(o.label for o in repeats)}; losses differ from epoch {differ}",))
    by_batch = {o.run.batch_size: o for o in outcomes if o.run.seed == seed}
    at_target = {o.run.seed: o for o in outcomes if o.run.batch_size == target}
    good_batches = sorted(b for b, o in by_batch.items() if o.ok)
    bad_seeds, good_seeds = [s for s, o in at_target.items() if not o.ok], [s for s, o in at_target.items() if o.ok]
    smallest_ok = by_batch[min(by_batch)].ok
    evidence = (f"seed {seed}: " + ", ".join(f"batch {b} {o.label}" for b, o in sorted(by_batch.items())),
                f"batch {target}: " + ", ".join(f"seed {s} {o.label}" for s, o in sorted(at_target.items())),
                "Plan A: the repeats match exactly")
    if not bad_seeds and len(good_batches) == len(by_batch):
        return Verdict("none", "every run trained healthy: the failure did not reproduce at this length", evidence)
    if not good_batches and not good_seeds:
        return Verdict("neither", "every batch size and seed fails: the config itself is wrong; run "
                                  "`gantune autofix --run` on one of these runs", evidence)
    if len(good_batches) == len(by_batch) and bad_seeds:
        return Verdict("random initialisation", f"use a known-good seed ({', '.join(map(str, good_seeds))}) or a "
                                                f"better weight initialisation", evidence)
    if smallest_ok and not good_seeds:
        cap = max(good_batches)
        return Verdict("batch size", f"cap BATCH_SIZE at {cap}, or scale the learning rates with the batch size "
                                     f"(x{target / cap:g} for {target})", evidence)
    cap = max(good_batches) if good_batches else min(by_batch)
    return Verdict("both", f"a large batch amplifies a poor initialisation: use BATCH_SIZE <= {cap}, or a "
                           f"known-good seed with a better initialisation", evidence)


def triage_trial(config: dict[str, Any], setup: TrialSetup, runs: tuple[TriageRun, ...]) -> None:
    """Ray Tune trainable: grid index -> that run's seed and batch size, trained like any sweep trial."""
    run = runs[int(config["run"])]
    train_trial({"seed": run.seed, "batch_size": run.batch_size}, setup)


def outcome_of(run: TriageRun, trial_dir: Path, family: str) -> Outcome:
    frame = pd.read_csv(trial_dir / "losses.csv")
    label = diagnose(frame, family).label
    return Outcome(run, label, len(frame), tuple(zip(frame["d_loss"].tolist(), frame["g_loss"].tolist())))


def run_grid(model: str, family: str, base: Mapping[str, Any], runs: tuple[TriageRun, ...], storage: Path,
             name: str, cpus: float, gpus: float, concurrency: int) -> list[Outcome]:
    """Every run of the plan as one Ray Tune grid; the outcomes in plan order."""
    from ray import tune

    setup = TrialSetup(base=dict(base), threads=max(1, int(cpus)), folder=storage.resolve() / name)
    trainable = tune.with_resources(tune.with_parameters(triage_trial, setup=setup, runs=runs),
                                    {"cpu": cpus, "gpu": gpus})
    tuner = tune.Tuner(trainable, param_space={"run": tune.grid_search(list(range(len(runs))))},
                       tune_config=tune.TuneConfig(max_concurrent_trials=concurrency),
                       run_config=tune.RunConfig(name=name, storage_path=str(storage.resolve()), verbose=0))
    grid = tuner.fit()
    found = {int(r.config["run"]): Path(r.path) for r in grid if r.config}
    missing = [runs[i].name for i in range(len(runs)) if i not in found or not (found[i] / "losses.csv").is_file()]
    if missing:
        from trainables.errors import GantuneError

        raise GantuneError(f"triage runs did not train: {', '.join(missing)}")
    return [outcome_of(runs[i], found[i], family) for i in range(len(runs))]
