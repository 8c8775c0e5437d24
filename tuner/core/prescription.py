"""The prescription: the remedy ladder applied to a diagnosis and the user's config, and the restart decision."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_spaces.remedies import ALIASES, CANON, CANONICAL, FAR, KEEP, Remedy, ladder_for
from trainables.config import ARCHITECTURE_KEYS
from trainables.registry import get_model, model_names
from tuner.core.diagnosis import Diagnosis, warning_remedies

ARCHITECTURE = "ARCHITECTURE"  # a change to the user's own networks, in words: no config key can make it


@dataclasses.dataclass(frozen=True)
class Step:
    stage: int
    parameter: str  # the name as the user's config spells it (LR_G stays LR_G)
    old: Any  # None when the config was not given or lacks the key
    new: Any  # a value, or a rule in words when the old value is unknown ("x0.5", "= LEARNING_RATE_D")
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "parameter": self.parameter, "from": self.old, "to": self.new,
                "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Restart:
    mode: str  # "fresh" or "resume"
    checkpoint: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "checkpoint": self.checkpoint, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    restart: Restart

    def stage(self, number: int) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.stage == number)

    @property
    def first_stage(self) -> tuple[Step, ...]:
        return self.stage(self.steps[0].stage) if self.steps else ()


def lookup(config: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """(the key the config uses for this parameter, its value); (name, None) when absent."""
    for key in (name, *ALIASES.get(name, ())):
        if key in config:
            return key, config[key]
    return name, None


def _bounded(value: Any, remedy: Remedy, canonical: Any = None) -> Any:
    """The value kept within the remedy's [low, high]; a bound of CANON is the canonical value (none if unknown)."""
    low, high = (canonical if b == CANON else b for b in (remedy.low, remedy.high))
    if isinstance(low, int | float):
        value = max(value, low)
    if isinstance(high, int | float):
        value = min(value, high)
    return type(value)(value) if isinstance(value, int | float) else value


def next_rung(rungs: tuple, old: Any) -> Any:
    """The first of the guide's values past `old` in the sequence's direction (falling when its first value is
    the larger, else rising); the first value when `old` is unknown; None when `old` is already past them all."""
    if not isinstance(old, int | float) or isinstance(old, bool):
        return rungs[0]
    falling = len(rungs) > 1 and rungs[0] > rungs[-1]
    tolerance = 1e-9 * max(abs(old), 1e-12)
    beyond = [r for r in rungs if (r < old - tolerance if falling else r > old + tolerance)]
    return beyond[0] if beyond else None


def _new_value(remedy: Remedy, old: Any, config: Mapping[str, Any], canonical: Any = None) -> Any:
    """The step's value; `config` holds the earlier steps' new values (`match` and `above` read them)."""
    if remedy.op == "rung":
        return next_rung(remedy.arg, old)
    if remedy.op == "set":
        return remedy.arg
    if remedy.op == "match":
        _, other = lookup(config, remedy.arg)
        return other if other is not None else f"= {remedy.arg}"
    if remedy.op == "above":
        return _above(remedy, old, config)
    if old is None or not isinstance(old, int | float):
        return f"x{remedy.arg}" if remedy.op in ("scale", "toward") else f"{remedy.arg:+}"
    value = toward(old, remedy.arg, canonical) if remedy.op == "toward" else \
        old * remedy.arg if remedy.op == "scale" else old + remedy.arg
    return _bounded(int(round(value)) if isinstance(old, int) and not isinstance(old, bool) else value, remedy,
                    canonical)


def toward(old: float, factor: float, canonical: Any) -> float:
    """`old` moved by the guide's `factor`, or most of the way back to `canonical` at once when it lies more than
    FAR times beyond it in the factor's direction (a rate 20x the canonical one comes back to 2.1x, not 10x).
    A factor of 1 is no step of the guide's own: only a value FAR from the canonical one, either side, moves."""
    ordinary = old * factor
    if not isinstance(canonical, int | float) or canonical <= 0 or old <= 0:
        return ordinary
    ratio = old / canonical
    if factor <= 1 and ratio > FAR:
        return min(ordinary, canonical * ratio ** KEEP)
    if factor >= 1 and ratio < 1 / FAR:
        return max(ordinary, canonical * ratio ** KEEP)
    return ordinary


def _above(remedy: Remedy, old: Any, config: Mapping[str, Any]) -> Any:
    """At least `ratio` times the other parameter's (new) value; None (no step) when already there."""
    other, ratio = remedy.arg
    _, value = lookup(config, other)
    if not isinstance(value, int | float):
        return f">= {ratio} x {other}"
    floor = value * ratio
    return floor if not isinstance(old, int | float) or old < floor * (1 - 1e-9) else None


def canonical_value(parameter: str, family: str, model: Any) -> Any:
    """The value a `toward` step heads for: the gantune model's seed config's, else the guides' (CANONICAL)."""
    names = (parameter, *ALIASES.get(parameter, ()))
    if model in model_names():
        defaults = get_model(model).defaults
        found = [defaults[n.lower()] for n in names if n.lower() in defaults]
        if found:
            return found[0]
    table = CANONICAL.get(family, {})
    return next((table[n] for n in names if n in table), None)


def _applies(remedy: Remedy, config: Mapping[str, Any]) -> bool:
    """A remedy with a `when` condition applies only where the config holds that value for it (Adam's betas need
    an OPTIMIZER of "adam": a config that names none, like most users' own, gets no step it has no key for)."""
    return remedy.when is None or lookup(config, remedy.when[0])[1] == remedy.when[1]


def _remedies(diagnosis: Diagnosis, model: Any = None) -> list[Remedy]:
    """The ladder for the label (the model's own where it has one, else its family's); a healthy run's quality
    warnings (checkerboard, blur) get theirs."""
    ladder = ladder_for(diagnosis.family, model)
    if diagnosis.label != "healthy":
        return list(ladder.get(diagnosis.label, ()))
    return [r for key in warning_remedies(diagnosis) for r in ladder.get(key, ())]


def prescribe(diagnosis: Diagnosis, config: Mapping[str, Any] | None = None,
              checkpoints: list[tuple[int, Path]] | None = None) -> Plan:
    """The guides' changes for this diagnosis, in ladder order, with old values read from the config."""
    config = config or {}
    steps, after = [], dict(config)  # `after`: the config with the steps so far (`match` and `above` read it)
    model = lookup(config, "MODEL")[1]
    own = model in model_names()  # gantune's trainer; else the user's own, or unknown
    for remedy in _remedies(diagnosis, model):
        if remedy.parameter == "MODEL" and not own:
            if remedy.words and all(s.new != remedy.words for s in steps):
                steps.append(Step(remedy.stage, ARCHITECTURE, None, remedy.words, remedy.reason))
            continue  # another trainer's networks: the change in the guides' words, not a gantune model
        if not _applies(remedy, config):
            continue
        key, old = lookup(config, remedy.parameter)
        new = _new_value(remedy, old, after, canonical_value(remedy.parameter, diagnosis.family, model))
        if new is None or (old is not None and new == old):
            continue  # already where the guide wants it, or past its last rung
        if remedy.parameter == "MODEL" and not _trains_on_same_data(old, new):
            continue  # toy2d's points cannot go to an image model
        steps.append(Step(remedy.stage, key, old, new, remedy.reason))
        after[key] = new
    first = [s for s in steps if s.stage == steps[0].stage] if steps else []
    return Plan(tuple(steps), restart(diagnosis, checkpoints or [], first))


def _trains_on_same_data(old: Any, new: Any) -> bool:
    """Whether gantune model `new` trains on the kind of data model `old` does (True when either is unknown)."""
    known = set(model_names())
    if old not in known or new not in known:
        return True
    return get_model(old).data_kind == get_model(new).data_kind


def restart(diagnosis: Diagnosis, checkpoints: list[tuple[int, Path]],
            first_stage: list[Step] | None = None) -> Restart:
    """Fresh when the failure began at the start (000: Adam's moments are poisoned), or when the plan's first
    stage changes the networks' shapes (no checkpoint loads into new networks); else resume from the last
    checkpoint before the onset (004: load epoch 40 when it collapsed at 90)."""
    if any(s.parameter.lower() in ARCHITECTURE_KEYS or s.parameter == ARCHITECTURE for s in first_stage or ()):
        return Restart("fresh", None, "the first stage changes the networks' shapes; a checkpoint of these "
                                      "networks cannot be loaded into the new ones")
    if diagnosis.label == "healthy":
        if checkpoints:
            return Restart("resume", str(checkpoints[-1][1]), "healthy: continue from the latest checkpoint")
        return Restart("fresh", None, "healthy, and no checkpoint to continue from")
    if diagnosis.from_start or diagnosis.onset_epoch is None:
        return Restart("fresh", None, "000: the failure began at the start; the optimiser's moment estimates "
                                      "are shaped by it and cannot recover")
    before = [(e, p) for e, p in checkpoints if e < diagnosis.onset_epoch]
    if not before:
        return Restart("fresh", None, f"no checkpoint before the onset at epoch {diagnosis.onset_epoch}")
    epoch, path = before[-1]
    return Restart("resume", str(path), f"004: resume from epoch {epoch}, before the onset at epoch "
                                        f"{diagnosis.onset_epoch}, with the new settings")
