"""A sweep: Ray Tune runs the trials, Optuna's TPE chooses them, the diagnosis core stops the doomed ones,
ASHA stops the poor ones, and MLflow records everything. `run_sweep` is the library entry point behind
`gantune sweep`; it returns a `Summary` read back from Ray's results with the same policy the stopper used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_spaces.spaces import Param, seed_point
from trainables.errors import ConfigError
from tuner.core.stopping import StopPolicy, Verdict, interrupted, outcome
from tuner.targets import Target
from tuner.tracking import Store, dumps

METRIC, MODE = "quality", "max"
STOPPER_STATE = "stopper.json"  # the collapse stopper's state, beside Ray's experiment state


@dataclasses.dataclass(frozen=True)
class Seek:
    """How autofix ends a stage's search: at the first trial that fixes the run, or after `give_up_after` trials
    collapsed again."""

    goal: float | None  # the broken run's quality, which a fix must beat (None or NaN: any healthy trial)
    give_up_after: int | None = None  # None: never give up


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    target: Target  # what each trial trains: gantune's model or the user's command
    base: Mapping[str, Any]  # resolved base config, field names (preset, --set and --epochs applied)
    space: Mapping[str, Param]
    name: str
    trials: int = 8
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    seed: int = 0
    storage: Path = Path("sweeps")
    experiment: str = "gantune"
    resume: bool = False
    points: tuple[Mapping[str, Any], ...] = ()  # extra configs to try first, in search coordinates
    stopper: bool = True  # the diagnosis-core stopper (off only for comparisons)
    asha: bool = True
    progress_every: float = 20.0
    command: str = ""
    preset: str = ""
    parent_run: str | None = None  # the MLflow run this sweep nests under (an autofix stage's)
    seek: Seek | None = None  # end the whole search at the first fix (autofix); None: run every trial
    confirmed: tuple[str, ...] = ()  # labels stopped without a sample signal (the broken run's, in autofix)
    kind: str = "sweep"

    @property
    def model(self) -> str:
        return self.target.name

    @property
    def epochs(self) -> int:
        return self.target.epochs(self.base)

    @property
    def path(self) -> Path:
        return self.storage.resolve() / self.name

    @property
    def policy(self) -> StopPolicy:
        return StopPolicy(self.epochs, confirmed=self.confirmed, asha=self.asha)


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    name: str  # t003_1c26c9bc
    trial_id: str
    values: Mapping[str, Any]
    verdict: Verdict
    quality: float
    epochs_run: int  # the last epoch reported + 1
    iterations: int  # epochs this trial trained (fewer than epochs_run when it resumed a checkpoint)
    path: str
    checkpoint: str | None
    error: str | None = None  # the last line of the trial's error, when it raised one


@dataclasses.dataclass(frozen=True)
class Summary:
    settings: SweepSettings
    trials: tuple[TrialOutcome, ...]
    best: TrialOutcome | None
    best_config_path: Path | None
    parent_run_id: str
    interrupted: str | None = None  # the stop signal that ended the sweep before its trials did (SIGINT, ...)

    @property
    def counts(self) -> Counter:
        return Counter(t.verdict.status for t in self.trials)

    def epochs_saved(self, collapsed: bool) -> int:
        return sum(self.settings.epochs - t.epochs_run for t in self.trials
                   if t.verdict.collapsed == collapsed and t.verdict.status.startswith(("stopped:", "diverged")))

    def table(self) -> str:
        rows = ["| trial | status | epochs | quality | reason |", "|---|---|---|---|---|"]
        for t in sorted(self.trials, key=lambda t: t.name):
            rows.append(f"| {t.name} | {t.verdict.status} | {t.epochs_run} | {t.quality:.4g} | "
                        f"{t.verdict.reason[:200].replace('|', '/')} |")
        return "\n".join(rows)


def _trainable(settings: SweepSettings):
    from ray import tune

    trainable = settings.target.trainable(settings.base, max(1, int(settings.cpus_per_trial)), settings.path)
    return tune.with_resources(trainable, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})


def config_of(settings: SweepSettings, values: Mapping[str, Any]) -> Any:
    """A trial's whole config from its search values: a GanConfig, or the user's config."""
    return settings.target.config(settings.base, values)


def _stopper(settings: SweepSettings) -> Any:
    """The collapse stopper (unless off), wrapped for autofix's seek, its state kept in the sweep's folder."""
    from tuner.ray_hooks import CollapseStopper, Persisted, SeekStopper

    stopper = CollapseStopper(settings.policy) if settings.stopper else None
    if settings.seek is not None:
        stopper = SeekStopper(stopper, settings.policy, settings.seek.goal, settings.seek.give_up_after)
    return Persisted(stopper, settings.path / STOPPER_STATE) if stopper else None


def _tuner(settings: SweepSettings, callbacks: list, broken: Any):
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search_spaces.spaces import DefineByRun
    from tuner.ray_hooks import EndWhenBroken, HonestOptunaSearch
    from tuner.sweep_callbacks import trial_dirname

    policy = settings.policy
    points = [seed_point(settings.space, settings.base), *map(dict, settings.points)]
    sampler = TPESampler(seed=settings.seed, n_startup_trials=min(10, max(3, settings.trials // 3)))
    searcher = HonestOptunaSearch(space=DefineByRun(settings.space), metric=METRIC, mode=MODE,
                                  points_to_evaluate=points, sampler=sampler, policy=policy)
    every = int(settings.base.get("quality_every") or 1)
    scheduler = (ASHAScheduler(time_attr="training_iteration", metric=METRIC, mode=MODE, max_t=settings.epochs,
                               grace_period=min(max(every, 1), settings.epochs), reduction_factor=3)
                 if settings.asha else FIFOScheduler())
    run_config = tune.RunConfig(
        name=settings.name, storage_path=str(settings.storage.resolve()), callbacks=callbacks, verbose=0,
        stop=EndWhenBroken(_stopper(settings), broken),
        failure_config=tune.FailureConfig(max_failures=settings.target.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2))
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings.trials,
                                  max_concurrent_trials=settings.concurrency, reuse_actors=True,
                                  trial_dirname_creator=trial_dirname,
                                  trial_name_creator=trial_dirname)
    return tune.Tuner(_trainable(settings), tune_config=tune_config, run_config=run_config)


# ----- the sweep -------------------------------------------------------------------------------------------------
def run_sweep(settings: SweepSettings, store: Store) -> Summary:
    from ray import tune

    from tuner.interrupt import Interruption
    from tuner.live_table import LiveView
    from tuner.sweep_callbacks import BrokenTrainerWatch, SweepTracker

    check_paths(settings)
    parent_id = _parent(settings, store)
    broken = BrokenTrainerWatch()
    callbacks = [SweepTracker(store, settings.name, parent_id, settings.model, settings.policy,
                              functools.partial(config_of, settings), seed_point(settings.space, settings.base),
                              "guide's values" if settings.kind == "autofix-stage" else "seed config"),
                 LiveView(settings.policy, settings.progress_every), broken]
    if settings.resume:
        tuner = tune.Tuner.restore(str(settings.path), trainable=_trainable(settings), resume_unfinished=True,
                                   resume_errored=True)
    else:
        tuner = _tuner(settings, callbacks, broken)
    with Interruption() as interruption:
        grid = tuner.fit()
    summary = _summarise(settings, grid, store, parent_id, interruption.received)
    broken.check()  # the trainer cannot run: one line and exit 2, not a ladder of errors
    return summary


def check_paths(settings: SweepSettings) -> None:
    from ray import tune

    exists = settings.path.exists()
    if settings.resume and not (exists and tune.Tuner.can_restore(str(settings.path))):
        raise ConfigError(f"no sweep to resume at {settings.path}")
    if not settings.resume and exists:
        raise ConfigError(f"sweep {settings.name!r} already exists at {settings.path}; use --resume to continue "
                          f"it or --name for a new one")


def _parent(settings: SweepSettings, store: Store) -> str:
    run_id, created = store.run(settings.name, {"sweep": settings.name, "kind": settings.kind},
                                settings.parent_run)
    if created:
        params = {"model": settings.model, "preset": settings.preset, "trials": settings.trials,
                  "epochs": settings.epochs, "concurrency": settings.concurrency, "seed": settings.seed,
                  "cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial}
        space = {k: p.describe() for k, p in settings.space.items()}
        store.log(run_id, params=params, tags={"gantune.command": settings.command, "gantune.space": dumps(space),
                                               "gantune.storage": str(settings.path)})
        settings.path.mkdir(parents=True, exist_ok=True)
        (settings.path.parent / f"{settings.name}.space.json").write_text(dumps(space) + "\n")
    return run_id


def _summarise(settings: SweepSettings, grid: Any, store: Store, parent_id: str,
               signal: str | None = None) -> Summary:
    policy = settings.policy
    cut = _open_trials(settings, store) if signal else set()
    trials = []
    for result in grid:
        metrics = result.metrics or {}
        trial_id = str(metrics.get("trial_id") or Path(result.path).name.partition("_")[2])
        if signal and (trial_id in cut or not metrics):
            verdict = interrupted(metrics, signal)
        else:
            verdict = outcome(metrics, policy, error=result.error is not None)
        epoch = metrics.get("epoch")
        trials.append(TrialOutcome(
            name=Path(result.path).name, trial_id=trial_id, values=dict(result.config or {}),
            verdict=verdict, quality=float(metrics.get(METRIC, float("nan"))),
            epochs_run=int(epoch) + 1 if epoch is not None else 0,
            iterations=int(metrics.get("training_iteration", 0)), path=str(result.path),
            checkpoint=result.checkpoint.path if result.checkpoint else None, error=_error_text(result.error)))
    best = _best(trials)
    best_path = None
    if best is not None:
        best_path = settings.target.write_best(settings.base, best.values, settings.path / "best_config.json")
    summary = Summary(settings, tuple(trials), best, best_path, parent_id, signal)
    _record(summary, store)
    return summary


def _open_trials(settings: SweepSettings, store: Store) -> set[str]:
    """Trials whose MLflow run is still open: in an interrupted sweep, those the signal cut (a trial that ended
    before it was closed by the tracker as it ended)."""
    return {run.data.tags.get("gantune.trial_id", "") for run in store.search(sweep=settings.name)
            if run.info.status == "RUNNING"}


def _error_text(error: Any) -> str | None:
    lines = [ln for ln in str(error).splitlines() if ln.strip()] if error is not None else []
    return lines[-1][:300] if lines else None


def _best(trials: list[TrialOutcome]) -> TrialOutcome | None:
    """The highest quality among healthy trials that ran to the end; failing that, among any that completed."""
    for ok in (lambda t: t.verdict.status == "healthy", lambda t: t.verdict.optuna_state == "COMPLETE"):
        pool = [t for t in trials if ok(t) and t.quality == t.quality]
        if pool:
            return max(pool, key=lambda t: t.quality)
    return None


def _record(summary: Summary, store: Store) -> None:
    counts = summary.counts
    metrics = {"trials": len(summary.trials), "best_quality": summary.best.quality if summary.best else float("nan"),
               "epochs_saved_by_stopper": summary.epochs_saved(True),
               "epochs_saved_by_asha": summary.epochs_saved(False),
               **{f"n_{status.replace(':', '_')}": n for status, n in counts.items()}}
    tags = {"gantune.best_trial": summary.best.name if summary.best else "",
            "gantune.status": "interrupted" if summary.interrupted else "finished",
            "gantune.interrupted_by": summary.interrupted or ""}
    store.log(summary.parent_run_id, metrics, tags=tags)
    folder = summary.settings.path
    heading = f"Interrupted by {summary.interrupted}; resume the sweep to finish it.\n\n" if summary.interrupted \
        else ""
    (folder / "summary.md").write_text(heading + summary.table() + "\n")
    (folder / "summary.json").write_text(json.dumps(
        {"best": summary.best.name if summary.best else None, "counts": dict(counts),
         "interrupted": summary.interrupted,
         "trials": [{"name": t.name, "trial_id": t.trial_id, "values": t.values, "quality": t.quality,
                     "epochs_run": t.epochs_run, **t.verdict.to_dict()} for t in summary.trials]},
        indent=2, default=str) + "\n")
    for path in (folder / "summary.md", folder / "summary.json", summary.best_config_path):
        if path is not None:
            store.artifact(summary.parent_run_id, path)
    _log_best_checkpoints(summary, store)
    _close_open_runs(summary, store)
    _close_lost_runs(summary, store)
    store.end(summary.parent_run_id, "KILLED" if summary.interrupted else "FINISHED")


def _close_open_runs(summary: Summary, store: Store) -> None:
    """Children still RUNNING once Ray is done (a search that ended early never completes its last trials in the
    callbacks): closed with the status the summary gives them."""
    from tuner.sweep_callbacks import run_state, verdict_tags

    verdicts = {t.trial_id: t.verdict for t in summary.trials}
    for run in store.search(sweep=summary.settings.name):
        verdict = verdicts.get(run.data.tags.get("gantune.trial_id", ""))
        if verdict is not None and run.info.status == "RUNNING":
            store.log(run.info.run_id, tags=verdict_tags(verdict))
            store.end(run.info.run_id, run_state(verdict))


def _close_lost_runs(summary: Summary, store: Store) -> None:
    """Children of trials Ray never recorded (the driver died before its state snapshot): closed, not left
    RUNNING, and tagged so the UI says what happened."""
    known = {t.trial_id for t in summary.trials}
    for run in store.search(sweep=summary.settings.name):
        trial_id = run.data.tags.get("gantune.trial_id")
        if trial_id and trial_id not in known and run.info.status == "RUNNING":
            store.log(run.info.run_id, tags={"gantune.status": "lost", "gantune.stop_reason":
                      "the sweep's driver stopped before Ray recorded this trial; the resumed sweep reran it"})
            store.end(run.info.run_id, "KILLED")


def _log_best_checkpoints(summary: Summary, store: Store, top: int = 3) -> None:
    ranked = sorted((t for t in summary.trials if t.verdict.status == "healthy" and t.checkpoint),
                    key=lambda t: -t.quality)[:top]
    for t in ranked:
        run_id = store.find(sweep=summary.settings.name, trial_id=t.trial_id)
        if run_id:
            store.client.log_artifacts(run_id, t.checkpoint, "checkpoint")

