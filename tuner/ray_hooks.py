"""gantune's policy plugged into Ray Tune: the collapse Stopper and an Optuna searcher that tells TPE the truth.

Ray's OptunaSearch tells Optuna that every stopped trial COMPLETED with its last value, so TPE would learn a
collapsed trial's early quality as a real result. Here a trial the diagnosis core stopped (diverged, collapsed)
is told as FAIL with the reason in its user attributes, a trial ASHA stopped as PRUNED (TPE ranks those by
their last intermediate value, which is what they are), and only a trial that ran its epochs as COMPLETE.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from ray.tune import Stopper
from ray.tune.search.optuna import OptunaSearch

from tuner.core.stopping import StopPolicy, fixes, outcome, stop_decision

log = logging.getLogger(__name__)


class CollapseStopper(Stopper):
    """Stops a trial the moment `stop_decision` calls it diverged or collapsed, and remembers which it stopped."""

    def __init__(self, policy: StopPolicy) -> None:
        self.policy = policy
        self.collapsed: set[str] = set()

    def __call__(self, trial_id: str, result: dict) -> bool:
        stop = stop_decision(result, self.policy) is not None
        if stop:
            self.collapsed.add(trial_id)
        return stop

    def stop_all(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"collapsed": sorted(self.collapsed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.collapsed = set(state.get("collapsed", ()))


class SeekStopper(Stopper):
    """Wraps a collapse stopper (or none, which stops no trial) for autofix: the whole search also ends once a
    trial `fixes` the run (healthy at its end, beating `goal`: the broken run's quality), or once `give_up_after`
    trials were stopped as collapsed again (the stage's remedy does not work: escalate)."""

    def __init__(self, inner: CollapseStopper | None, policy: StopPolicy, goal: float | None,
                 give_up_after: int | None = None) -> None:
        self.inner, self.policy, self.goal, self.give_up_after = inner, policy, goal, give_up_after
        self.done = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        stop = bool(self.inner and self.inner(trial_id, result))
        if stop:
            self.done |= self.give_up_after is not None and len(self.inner.collapsed) >= self.give_up_after
        elif fixes(result, self.policy, self.goal):
            self.done = True
        return stop

    def stop_all(self) -> bool:
        return self.done

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done, "inner": self.inner.state_dict() if self.inner else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.done = bool(state.get("done", False))
        if self.inner and state.get("inner"):
            self.inner.load_state_dict(state["inner"])


class Persisted(Stopper):
    """Wraps a stopper with state: its state_dict is kept in `path` (the sweep's folder), so a resumed sweep's
    stopper (Ray unpickles the one the sweep started with) takes up where the interrupted one was."""

    def __init__(self, inner: CollapseStopper | SeekStopper, path: Path) -> None:
        self.inner, self.path = inner, path
        self.loaded = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        self._load()
        before = self.inner.state_dict()
        stop = self.inner(trial_id, result)
        state = self.inner.state_dict()
        if state != before:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(state) + "\n")
        return stop

    def stop_all(self) -> bool:
        self._load()
        return self.inner.stop_all()

    def _load(self) -> None:
        if not self.loaded and self.path.is_file():
            self.inner.load_state_dict(json.loads(self.path.read_text()))
        self.loaded = True


class EndWhenBroken(Stopper):
    """Wraps a stopper (or none): the search also ends when `broken.stop_all()` says the trainer cannot run."""

    def __init__(self, inner: Stopper | None, broken: Any) -> None:
        self.inner, self.broken = inner, broken

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(self.inner and self.inner(trial_id, result))

    def stop_all(self) -> bool:
        return self.broken.stop_all() or bool(self.inner and self.inner.stop_all())


class HonestOptunaSearch(OptunaSearch):
    def __init__(self, *args, policy: StopPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.last: dict[str, dict] = {}  # trial id -> its last report (saved with the searcher's state)
        self.reported: dict[str, int] = {}  # trial id -> the last step told to Optuna (saved likewise)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.last[trial_id] = result
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        value, step = result.get(self.metric), int(result["training_iteration"])
        if step <= self.reported.get(trial_id, 0):
            return  # a step replayed from the trial's checkpoint after a resume: Optuna holds it already
        if isinstance(value, int | float) and value == value:  # Optuna refuses NaN intermediate values
            self._ot_trials[trial_id].report(float(value), step)
            self.reported[trial_id] = step

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or self.last.get(trial_id)
        verdict = outcome(result, self.policy, error)
        ot_trial = self._ot_trials[trial_id]
        for key, value in (("status", verdict.status), ("label", verdict.label), ("reason", verdict.reason[:500]),
                           ("epoch", verdict.epoch)):
            ot_trial.set_user_attr(key, value)
        state = TrialState[verdict.optuna_state]
        value = (result or {}).get(self.metric)
        try:
            if state == TrialState.COMPLETE and isinstance(value, int | float) and value == value:
                self._ot_study.tell(ot_trial, float(value), state=state)
            else:
                self._ot_study.tell(ot_trial, state=TrialState.FAIL if state == TrialState.COMPLETE else state)
        except Exception as err:  # Optuna refuses a second tell; never let bookkeeping end a sweep
            log.warning("optuna tell for %s failed: %s", trial_id, err)
        self._completed_trials.add(trial_id)
        self.last.pop(trial_id, None)

    def study(self):
        return self._ot_study
