"""`autofix --apply`: walk the remedy ladder, one small sweep per stage, until a trial trains healthy.

Each stage is a sweep (tuner/sweep.py) over only that stage's parameters, around the current config: the
guide's values are the first trial (`stage_search`), Optuna searches around them, the same stopper stops trials
that fail again the way the broken run did, and the search ends at the first trial that is healthy by the
diagnosis core and beats the broken run's quality. A stage that finds nothing (or whose first `give_up_after`
trials fail again) escalates to the next, carrying its best config forward. ASHA is off: a stage holds a few
trials, and an early rung would judge the guide's own recommendation on its first noisy epochs.
MLflow gets one parent run for the autofix, a child per stage, the trials under it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.core.diagnosis import Diagnosis
from tuner.core.prescription import Plan, prescribe
from tuner.core.stopping import STOP_LABELS, beats
from tuner.external import BrokenTrainerError
from tuner.stage_search import StageSearch, stage_search
from tuner.sweep import Seek, Summary, SweepSettings, TrialOutcome, run_sweep
from tuner.targets import StageStart, Target
from tuner.tracking import Store, dumps


@dataclasses.dataclass(frozen=True)
class Broken:
    """The run to fix: where its log is, its diagnosis, its config in its trainer's keys, its quality, and what
    retrains it."""

    source: str
    diagnosis: Diagnosis
    config: Mapping[str, Any]  # gantune: field names (lower case); the user's trainer: keys as in their file
    quality: float  # the last measured quality (NaN when the log has none)
    epochs: int
    target: Target  # gantune's model, or the user's command
    checkpoints: tuple[tuple[int, Path], ...] = ()

    @functools.cached_property
    def plan(self) -> Plan:
        """The guides' plan for the broken run's own config, computed once."""
        return self.plan_for(self.config)

    def plan_for(self, config: Mapping[str, Any]) -> Plan:
        """The plan for a config the walk carries (the broken one with earlier stages' fixes)."""
        return prescribe(self.diagnosis, self.target.upper(config), list(self.checkpoints))


@dataclasses.dataclass(frozen=True)
class FixSettings:
    name: str
    epochs: int  # epochs each trial trains
    storage: Path = Path("autofix")
    trials: int = 4  # per stage
    budget: int | None = None  # trial-epochs in all; None: trials x epochs per stage
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    seed: int = 0
    experiment: str = "gantune"
    give_up_after: int = 2  # trials that fail again before a stage escalates
    command: str = ""
    resume: bool = False  # continue an interrupted autofix: its stages' sweeps are restored, not started again

    @property
    def path(self) -> Path:
        return self.storage.resolve() / self.name


@dataclasses.dataclass(frozen=True)
class StageResult:
    search: StageSearch
    summary: Summary | None
    fixed: TrialOutcome | None
    spent: int  # trial-epochs
    note: str
    seconds: float = 0.0  # the stage's wall time, its sweep's start and end included

    def to_dict(self) -> dict[str, Any]:
        trials = self.summary.trials if self.summary else ()
        return {"stage": self.search.stage, "changes": dict(self.search.changes),
                "space": {k: p.describe() for k, p in self.search.space.items()},
                "skipped": list(self.search.skipped), "trials": len(trials), "spent_trial_epochs": self.spent,
                "seconds": round(self.seconds, 1), "statuses": {t.name: t.verdict.status for t in trials},
                "fixed_by": self.fixed.name if self.fixed else None, "note": self.note}


@dataclasses.dataclass(frozen=True)
class FixResult:
    broken: Broken
    stages: tuple[StageResult, ...]
    config: Mapping[str, Any]  # the fixed config, or the best carried to the end
    fixed: TrialOutcome | None
    config_path: Path
    diff: str
    spent: int
    seconds: float
    parent_run_id: str
    trained: bool = True  # False: `config` holds guide's values no trial trained (labelled untrained)
    interrupted: str | None = None  # the stop signal that ended the walk (SIGINT, ...), None if it ran its course

    @property
    def fixed_stage(self) -> int | None:
        return next((s.search.stage for s in self.stages if s.fixed), None)

    def to_dict(self) -> dict[str, Any]:
        return {"diagnosis": self.broken.diagnosis.to_dict(), "source": self.broken.source,
                "original_quality": _json_float(self.broken.quality),
                "fixed": self.fixed is not None, "fixed_stage": self.fixed_stage, "interrupted": self.interrupted,
                "fixed_trial": self.fixed.name if self.fixed else None,
                "fixed_quality": _json_float(self.fixed.quality) if self.fixed else None,
                "config_file": str(self.config_path), "config_trained": self.trained,
                "spent_trial_epochs": self.spent,
                "seconds": round(self.seconds, 1), "stages": [s.to_dict() for s in self.stages]}


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ----- the walk --------------------------------------------------------------------------------------------------
def run_autofix(broken: Broken, settings: FixSettings, store: Store, on_stage: Any = None) -> FixResult:
    """Walk the ladder's stages in order until a trial fixes the run or the stages or the budget run out."""
    started = time.perf_counter()
    parent = _parent(broken, settings, store)
    try:
        results, current, trained = _walk(broken, settings, store, parent, on_stage)
    except BrokenTrainerError as err:
        store.log(parent, tags={"gantune.status": "trainer_error", "gantune.error": str(err)[:500]})
        store.end(parent, "FAILED")
        raise
    except KeyboardInterrupt:  # a second signal, or one between two stages' sweeps
        store.log(parent, tags={"gantune.status": "interrupted"})
        store.end(parent, "KILLED")
        raise
    fixed = next((r.fixed for r in results if r.fixed), None)
    path, diff = _write_config(broken, settings, current)
    signal = next((r.summary.interrupted for r in results if r.summary and r.summary.interrupted), None)
    result = FixResult(broken, tuple(results), current, fixed, path, diff, sum(r.spent for r in results),
                       time.perf_counter() - started, parent, trained, signal)
    _record(result, settings, store)
    return result


def _walk(broken: Broken, settings: FixSettings, store: Store, parent: str,
          on_stage: Any) -> tuple[list[StageResult], dict[str, Any], bool]:
    """The stages' results, the config carried to the end and whether a trial trained it."""
    budget = settings.budget or settings.trials * settings.epochs * len(_stages(broken))
    current, results, spent, trained = dict(broken.config), [], 0, True
    for stage in _stages(broken):
        target = broken.target
        search = stage_search(stage, target.applicable(broken.plan_for(current).stage(stage)), current, target.key,
                              target.adopt(current))
        started = time.perf_counter()
        result = _run_stage(broken, settings, store, parent, search, budget - spent)
        result = dataclasses.replace(result, seconds=time.perf_counter() - started)
        results.append(result)
        spent += result.spent
        _record_stage(result, spent, store, parent)
        if on_stage is not None:
            on_stage(result)
        if result.summary is not None and result.summary.interrupted:
            return results, current, trained
        _check_trained(result)
        if result.fixed is not None:
            return results, _full_config(broken, search, result.fixed.values), True
        if result.summary is not None and result.summary.best is not None:
            current, trained = _full_config(broken, search, result.summary.best.values), True
        elif search.changes:  # nothing finished: keep the guide's values (the first trial's) and climb on
            current, trained = dict(search.base), _first_trained(result)
        if budget - spent < settings.epochs:
            break
    return results, current, trained


def _first_trained(result: StageResult) -> bool:
    """Whether the stage's first trial (the guide's values) trained at least an epoch."""
    trials = sorted(result.summary.trials, key=lambda t: t.name) if result.summary else []
    return bool(trials) and trials[0].iterations > 0


def _check_trained(result: StageResult) -> None:
    """No stage escalates on errors: a stage whose every trial failed before training stops the walk."""
    trials = result.summary.trials if result.summary else ()
    errors = [t for t in trials if t.error]
    if errors and all(t.iterations == 0 for t in trials):
        raise BrokenTrainerError(f"no trial of stage {result.search.stage} trained an epoch: {errors[0].error} "
                                 f"(see {errors[0].path}/train.log)")


def _stages(broken: Broken) -> list[int]:
    return sorted({s.stage for s in broken.target.applicable(broken.plan.steps)})


def _run_stage(broken: Broken, settings: FixSettings, store: Store, parent: str, search: StageSearch,
               left: int) -> StageResult:
    if not search.changes:
        return StageResult(search, None, None, 0, "nothing to change at this stage for this config")
    if not search.space:
        return StageResult(search, None, None, 0, "no parameter of this stage can be searched")
    trials = min(settings.trials, left // settings.epochs)
    if trials < 1:
        return StageResult(search, None, None, 0, f"the budget is spent ({left} trial-epochs left)")
    stage_sweep, why = _sweep_settings(broken, settings, search, parent, trials)
    if settings.resume and stage_sweep.path.exists():  # a stage the interrupted autofix reached: restored
        stage_sweep = dataclasses.replace(stage_sweep, resume=True)
    summary = run_sweep(stage_sweep, store)
    spent = sum(t.iterations for t in summary.trials)
    winners = [t for t in summary.trials if t.verdict.status == "healthy" and beats(t.quality, broken.quality)]
    fixed = max(winners, key=lambda t: t.quality) if winners else None
    note = (f"{fixed.name} trains healthy with quality {fixed.quality:.4g}" if fixed else
            "no trial trained healthy and beat the broken run; escalating")
    return StageResult(search, summary, fixed, spent, f"{why}; {note}" if why else note)


def _sweep_settings(broken: Broken, settings: FixSettings, search: StageSearch, parent: str,
                    trials: int) -> tuple[SweepSettings, str]:
    """The stage's sweep, and how its trials start (fresh, or resumed and why)."""
    start = StageStart(broken.plan, broken.checkpoints, broken.source, settings.epochs)
    target, base, why = broken.target.stage(start, search)
    label = broken.diagnosis.label
    return SweepSettings(
        target=target, base=base, space=search.space,
        name=f"{settings.name}-stage{search.stage}", trials=trials, concurrency=settings.concurrency,
        cpus_per_trial=settings.cpus_per_trial, gpus_per_trial=settings.gpus_per_trial,
        seed=settings.seed + search.stage, storage=settings.path, experiment=settings.experiment,
        command=settings.command, preset=f"autofix stage {search.stage}", parent_run=parent,
        seek=Seek(broken.quality, settings.give_up_after), asha=False,
        confirmed=(label,) if label in STOP_LABELS else (), kind="autofix-stage"), why


def _full_config(broken: Broken, search: StageSearch, values: Mapping[str, Any]) -> dict[str, Any]:
    return broken.target.full_config(search, values, broken.config)


# ----- outputs ---------------------------------------------------------------------------------------------------
def _write_config(broken: Broken, settings: FixSettings, config: Mapping[str, Any]) -> tuple[Path, str]:
    """The fixed config in a file its trainer accepts, and a diff against the original."""
    settings.path.mkdir(parents=True, exist_ok=True)
    path, old = broken.target.write_fixed(config, broken.config, settings.path)
    diff = "".join(difflib.unified_diff(old.splitlines(keepends=True), path.read_text().splitlines(keepends=True),
                                        "original", path.name))
    return path, diff


def _parent(broken: Broken, settings: FixSettings, store: Store) -> str:
    run_id, _ = store.run(f"autofix {settings.name}", {"autofix": settings.name, "kind": "autofix"})
    d = broken.diagnosis
    plan = broken.plan
    store.log(run_id, params={"run": broken.source, "model": broken.target.name, "diagnosis": d.label,
                              "family": d.family, "onset_epoch": d.onset_epoch, "epochs": settings.epochs,
                              "trials_per_stage": settings.trials, "budget": settings.budget},
              tags={"gantune.command": settings.command, "gantune.diagnosis": d.label,
                    "gantune.evidence": dumps([e.to_dict() for e in d.evidence]),
                    "gantune.plan": dumps([s.to_dict() for s in plan.steps]),
                    "gantune.restart": dumps(plan.restart.to_dict()), "gantune.status": "running"})
    return run_id


def _record_stage(result: StageResult, spent: int, store: Store, parent: str) -> None:
    """The ledger on the parent run, one step per stage: its trial-epochs and wall time, and the totals so far."""
    store.log(parent, {"stage_trial_epochs": result.spent, "stage_seconds": result.seconds,
                       "trial_epochs_so_far": spent}, step=result.search.stage)


def _record(result: FixResult, settings: FixSettings, store: Store) -> None:
    report = settings.path / "autofix.json"
    report.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    (settings.path / "fixed_config.diff").write_text(result.diff)
    status = f"fixed:stage{result.fixed_stage}" if result.fixed else "interrupted" if result.interrupted \
        else "not_fixed"
    metrics = {"spent_trial_epochs": result.spent, "seconds": result.seconds,
               "original_quality": result.broken.quality,
               "fixed_quality": result.fixed.quality if result.fixed else math.nan,
               **{f"stage{s.search.stage}_trial_epochs": s.spent for s in result.stages},
               **{f"stage{s.search.stage}_seconds": s.seconds for s in result.stages}}
    store.log(result.parent_run_id, metrics, tags={"gantune.status": status})
    for path in (report, result.config_path, settings.path / "fixed_config.diff"):
        store.artifact(result.parent_run_id, path)
    store.end(result.parent_run_id, "FINISHED" if result.fixed else "KILLED" if result.interrupted else "FAILED")
