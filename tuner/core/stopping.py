"""What a sweep does with the diagnosis core's verdicts: when to stop a trial, and what each trial's outcome is.

Each trial reports, every epoch, the label `diagnose` gives its history so far and for how many consecutive
epochs that label has held (`diagnosis_streak`). One pure policy turns such a report into a decision, and every
consumer calls it: the Ray Stopper (stop now?), the Optuna searcher (what to tell TPE), the MLflow tracker (which
status tag) and the summary. Divergence stops at once; a collapse label stops once it has held for a confirmation
window after the run has settled, so a noisy healthy trial is not killed; `unstable` is left to ASHA.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from tuner.core.signals import GRACE, TAIL_MIN

STOP_LABELS = ("mode_collapse", "discriminator_dominant", "generator_dominant")
# Stopping kills a trial, so the samples must agree: a dominance label from the losses alone (g_loss climbing
# for a few epochs is normal early in WGAN training) is left to ASHA unless a sample signal fired with it.
SAMPLE_SIGNALS = ("collapse_score_share", "diversity_ratio_tail", "diversity_ratio_low")
CUT = ("stopped:asha", "stopped:ended")  # ended early for a reason other than the trial's own health
INTERRUPTED = "interrupted"  # the sweep was stopped by a signal while this trial ran; a resume continues it


@dataclasses.dataclass(frozen=True)
class StopPolicy:
    max_epochs: int
    confirm: int = 3  # a collapse label must hold for at least this many consecutive epochs...
    confirm_frac: float = 0.1  # ...and this fraction of the run
    settle_frac: float = 0.25  # no collapse call in the first quarter of the run (nor before GRACE + TAIL_MIN)
    # Labels that stop a trial without a sample signal: autofix passes the broken run's label, since that run
    # already showed where this failure leads ("trials that collapse again are stopped early").
    confirmed: tuple[str, ...] = ()
    asha: bool = True  # what else ends a trial early: ASHA, or (autofix) the search ending

    @property
    def window(self) -> int:
        return max(self.confirm, math.ceil(self.confirm_frac * self.max_epochs))

    @property
    def settled(self) -> int:
        """Epochs a trial must have run before a collapse label counts."""
        return max(GRACE + TAIL_MIN, math.ceil(self.settle_frac * self.max_epochs))


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: str  # healthy, diverged, stopped:<label>, stopped:asha, finished:<label>, error, interrupted
    label: str  # the diagnosis at the trial's last report
    epoch: int | None  # the last epoch reported (0-based)
    reason: str

    @property
    def collapsed(self) -> bool:
        """Stopped by the diagnosis core: Optuna must not learn this trial's value as a good result."""
        return self.status == "diverged" or (self.status.startswith("stopped:") and self.status not in CUT)

    @property
    def optuna_state(self) -> str:
        if self.collapsed or self.status == "error":
            return "FAIL"
        return "PRUNED" if self.status in CUT or self.status == INTERRUPTED else "COMPLETE"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _epoch(result: Mapping[str, Any]) -> int:
    return int(result.get("epoch", result.get("training_iteration", 1) - 1))


def stop_decision(result: Mapping[str, Any], policy: StopPolicy) -> Verdict | None:
    """A verdict when this epoch's report means the trial must stop now, else None."""
    label, epoch = str(result.get("diagnosis", "healthy")), _epoch(result)
    streak = int(result.get("diagnosis_streak", 1))
    if label == "diverged":
        return Verdict("diverged", label, epoch, f"diverged at epoch {result.get('diagnosis_onset', epoch)}: "
                                                 f"{_evidence_text(result)}")
    if label in STOP_LABELS and epoch + 1 >= policy.settled and streak >= policy.window \
            and (samples_agree(result) or label in policy.confirmed):
        onset = result.get("diagnosis_onset", -1)
        return Verdict(f"stopped:{label}", label, epoch,
                       f"{label} for {streak} epochs (confirmation window {policy.window})"
                       f"{f' since epoch {onset}' if onset is not None and onset >= 0 else ''}: "
                       f"{_evidence_text(result)}")
    return None


def samples_agree(result: Mapping[str, Any]) -> bool:
    return any(e.get("signal") in SAMPLE_SIGNALS for e in _evidence(result))


def outcome(result: Mapping[str, Any] | None, policy: StopPolicy, error: bool = False) -> Verdict:
    """The final status of a trial from its last report."""
    if error or not result:
        label = str(result.get("diagnosis", "unknown")) if result else "unknown"
        return Verdict("error", label, _epoch(result) if result else None, "the trial raised an error")
    decided = stop_decision(result, policy)
    if decided is not None:
        return decided
    label, epoch = str(result.get("diagnosis", "healthy")), _epoch(result)
    if epoch + 1 < policy.max_epochs and not policy.asha:
        return Verdict("stopped:ended", label, epoch, f"stopped at epoch {epoch} when the search ended (another "
                                                      f"trial fixed the run, or the stage gave up)")
    if epoch + 1 < policy.max_epochs:
        return Verdict("stopped:asha", label, epoch, f"ASHA stopped it at epoch {epoch}: quality "
                                                    f"{result.get('quality', float('nan')):.4g} below its rung")
    status = "healthy" if label == "healthy" else f"finished:{label}"
    return Verdict(status, label, epoch, f"ran all {policy.max_epochs} epochs; diagnosis {label}")


def interrupted(result: Mapping[str, Any] | None, signal: str) -> Verdict:
    """The status of a trial that was running (or waiting) when the sweep received a stop signal."""
    label = str(result.get("diagnosis", "unknown")) if result else "unknown"
    epoch = _epoch(result) if result else None
    at = f"at epoch {epoch}" if epoch is not None else "before its first epoch"
    return Verdict(INTERRUPTED, label, epoch, f"the sweep was interrupted ({signal}) {at}; resuming the sweep "
                                              f"continues this trial from its last checkpoint")


def beats(quality: float, goal: float | None) -> bool:
    """Whether a measured quality beats a goal (higher is better); no goal, or an unmeasured one, is beaten by
    any measured quality."""
    if not (isinstance(quality, int | float) and math.isfinite(quality)):
        return False
    return goal is None or not math.isfinite(goal) or quality > goal


def fixes(result: Mapping[str, Any] | None, policy: StopPolicy, goal: float | None) -> bool:
    """A trial's report that ends it healthy with a quality beating the goal: what autofix is looking for."""
    return bool(result) and outcome(result, policy).status == "healthy" and beats(result.get("quality"), goal)


def _evidence(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    try:
        evidence = json.loads(result.get("diagnosis_evidence") or "[]")
    except (TypeError, ValueError):
        return []
    return evidence if isinstance(evidence, list) else []


def _evidence_text(result: Mapping[str, Any]) -> str:
    evidence = _evidence(result)
    return "; ".join(f"{e['signal']}={number(e['value'])} ({e['threshold']})" for e in evidence[:4])


def number(value: Any) -> str:
    """A number as a person reads it: four significant digits (0.9999999999999999 -> 1)."""
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)

