"""Ray Tune callbacks of a sweep, run in the driver: MLflow child runs per trial, and the broken-trainer watch (the
live view is in live_table.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.tune import Callback

from search_spaces.spaces import DERIVED
from trainables.vocabulary import ALL_METRICS
from tuner.core.stopping import INTERRUPTED, StopPolicy, Verdict, outcome
from tuner.interrupt import received
from tuner.tracking import Store

# what a trial logs to MLflow each epoch, besides ALL_METRICS
REPORT_METRICS = ("diagnosis_streak", "diagnosis_confidence", "diagnosis_onset")


def trial_number(trial: Any) -> int:
    """Ray's 1-based trial counter (the head of the trial's experiment tag)."""
    head = str(getattr(trial, "experiment_tag", "")).split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def trial_dirname(trial: Any) -> str:
    """`t003_1c26c9bc`: the trial's directory under the sweep, and its short name everywhere."""
    return f"t{trial_number(trial):03d}_{trial.trial_id}"


def trial_name(model: str, trial: Any, values: Mapping[str, Any], seed: Mapping[str, Any],
               seed_label: str = "seed config") -> str:
    """`wgan_large-t003 n_critic=2 learning_rate_d=3.1e-04`: the values that differ from the seed config."""
    changed = [f"{k}={_short(v)}" for k, v in values.items() if k not in seed or seed[k] != v]
    label = " ".join(changed[:4]) + (" ..." if len(changed) > 4 else "") if changed else seed_label
    return f"{model}-t{trial_number(trial):03d} {label}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"
    return str(value)


class SweepTracker(Callback):
    """One MLflow child run per trial under the sweep's parent run."""

    def __init__(self, store: Store, sweep: str, parent_id: str, model: str, policy: StopPolicy,
                 config_of: Any, seed: Mapping[str, Any], seed_label: str = "seed config") -> None:
        self.store, self.sweep, self.parent_id, self.model = store, sweep, parent_id, model
        self.policy, self.config_of, self.seed = policy, config_of, dict(seed)
        self.seed_label = seed_label
        self.runs: dict[str, str] = {}
        self.logged: dict[str, int] = {}  # trial id -> the last epoch in MLflow (a resumed trial replays some)
        self.pending: dict[str, list[tuple[str, int]]] = {}  # sample grids not yet readable

    def setup(self, **info) -> None:
        """At the start of a sweep and of a resumed one: the child runs that exist already, in one search."""
        self.known = {r.data.tags["gantune.trial_id"]: r.info.run_id
                      for r in self.store.search(sweep=self.sweep) if "gantune.trial_id" in r.data.tags}

    def _run(self, trial: Any) -> str:
        if trial.trial_id not in self.runs:
            name = trial_name(self.model, trial, trial.config, self.seed, self.seed_label)
            run_id, created = self.store.run(name, {"sweep": self.sweep, "trial_id": trial.trial_id}, self.parent_id,
                                             getattr(self, "known", None))
            self.runs[trial.trial_id] = run_id
            self.logged[trial.trial_id] = -1 if created else self.store.last_step(run_id)
            if created:
                cfg = self.config_of(trial.config)
                params = {**cfg.to_dict(), **{k.upper(): v for k, v in trial.config.items() if k in DERIVED}}
                self.store.log(run_id, params=params, tags={"gantune.status": "running", "gantune.model": self.model,
                                                            "gantune.trial": trial_number(trial),
                                                            "gantune.search_values": dict(trial.config)})
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._run(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info) -> None:
        run_id, epoch = self._run(trial), int(result.get("epoch", 0))
        if epoch <= self.logged.get(trial.trial_id, -1):
            return  # an epoch replayed from the trial's checkpoint after a resume: MLflow holds it already
        self.logged[trial.trial_id] = epoch
        keys = ALL_METRICS + REPORT_METRICS
        metrics = {k: result[k] for k in keys if k in result}
        if not result.get("quality_measured"):
            metrics.pop("quality", None)  # carried forward for ASHA, not a new measurement
        self.store.log(run_id, metrics, step=epoch, tags={"gantune.diagnosis": result.get("diagnosis", "")})
        if result.get("sample_png"):
            self.pending.setdefault(trial.trial_id, []).append((result["sample_png"], epoch))
        self._log_images(trial, run_id)

    def _log_images(self, trial: Any, run_id: str) -> None:
        """Sample grids, read where the trial wrote them (this node) or where Ray synced them (storage)."""
        waiting = []
        for path, epoch in self.pending.pop(trial.trial_id, []):
            places = [Path(path)] + ([Path(trial.path) / "samples" / Path(path).name] if trial.path else [])
            if not any(self.store.image(run_id, p, "samples", epoch) for p in places if p.is_file()):
                waiting.append((path, epoch))
        if waiting:
            self.pending[trial.trial_id] = waiting

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._finish(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        if received() is None:  # a trial that fails as the sweep is interrupted stays open: the summary says so
            self._finish(trial, error=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self.store.log(self._run(trial), tags={"gantune.retries": trial.num_failures})

    def _finish(self, trial: Any, error: bool) -> None:
        verdict = outcome(trial.last_result, self.policy, error)
        reason = verdict.reason if not error else f"{verdict.reason}: {error_line(trial)}"
        tags = {**verdict_tags(verdict, reason),
                "gantune.evidence": (trial.last_result or {}).get("diagnosis_evidence", "[]")}
        run_id = self._run(trial)
        self._log_images(trial, run_id)
        self.store.log(run_id, tags=tags)
        self.store.end(run_id, "FAILED" if error else run_state(verdict))


def verdict_tags(verdict: Verdict, reason: str | None = None) -> dict[str, Any]:
    """A finished trial's MLflow tags: its status, diagnosis, stop reason and epoch."""
    return {"gantune.status": verdict.status, "gantune.diagnosis": verdict.label,
            "gantune.stop_reason": verdict.reason if reason is None else reason, "gantune.stop_epoch": verdict.epoch}


def run_state(verdict: Verdict) -> str:
    return "KILLED" if verdict.collapsed or verdict.status == INTERRUPTED else "FINISHED"


def error_line(trial: Any) -> str:
    path = getattr(trial, "error_file", None) or ""
    try:
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError:
        return "see the trial's error file"
    return lines[-1][:300] if lines else "see the trial's error file"


class BrokenTrainerWatch(Callback):
    """Two trials in a row whose trainer failed before its first epoch with the same output line: the trainer is
    broken whatever the config (an import error, a missing file), so the search ends at once (`stop_all`)."""

    def __init__(self) -> None:
        self.last: str | None = None  # the previous finished trial's early error, None if it trained
        self.found: tuple[str, str] | None = None  # (the error line, the trial directory)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self.last = None

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        from tuner.external import early_error

        try:
            line = early_error(Path(getattr(trial, "error_file", None) or "").read_text())
        except OSError:
            line = None
        if line is not None and line == self.last and self.found is None:
            self.found = (line, str(trial.path or trial.local_path))
        self.last = line

    def stop_all(self) -> bool:
        return self.found is not None

    def check(self) -> None:
        from tuner.external import BrokenTrainerError

        if self.found is not None:
            line, where = self.found
            raise BrokenTrainerError(f"your trainer fails before its first epoch whatever the config: {line} "
                                     f"(see {where}/train.log)")
