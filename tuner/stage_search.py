"""One stage of the remedy ladder as a small search: the guide's values are the first trial, and the space holds
each changed parameter within AROUND's bounds of the guide's value (search_spaces/remedies.py).

Pure: configs in, (base config, space) out. Keys are the config's own: gantune's field names (`lambda_gp`) for
its models, the user's spelling (`LR_G`) for their own trainer; `key` maps a remedy's parameter to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from search_spaces.remedies import AROUND, FALLBACK
from search_spaces.spaces import Param, choice, integer, log_float, uniform
from tuner.core.prescription import Step


@dataclasses.dataclass(frozen=True)
class StageSearch:
    stage: int
    base: Mapping[str, Any]  # the current config with the guide's values for this stage
    space: Mapping[str, Param]  # what Optuna may move, around the guide's values
    changes: Mapping[str, Any]  # key -> the guide's value
    skipped: tuple[str, ...]  # steps the config has no key for (the user's trainer lacks that parameter)


def canonical(parameter: str) -> str:
    return parameter.upper()


def stage_search(stage: int, steps: tuple[Step, ...], current: Mapping[str, Any],
                 key: Callable[[str], str] = str,
                 adopt: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict) -> StageSearch:
    """The stage's guide values applied to `current`, and a space around them. `adopt` completes the changed
    config (a model switch brings the new model's recipe: trainables.registry.switch_model)."""
    changes, space, skipped = {}, {}, []
    for step in steps:
        k = key(step.parameter)
        if k not in current or (isinstance(step.new, str) and step.old is None):
            skipped.append(step.parameter)
            continue
        changes[k] = step.new
        param = around(canonical(step.parameter), step.new, current[k])
        if param is not None:
            space[k] = param
    base = adopt({**current, **changes})
    if not space:
        for name in FALLBACK:
            k = key(name)
            value = base.get(k)
            if isinstance(value, int | float) and value > 0:
                space[k] = around(name, value, value)
    return StageSearch(stage, base, space, changes, tuple(skipped))


def around(name: str, new: Any, old: Any) -> Param | None:
    """The range Optuna searches for one parameter around the guide's value; None when it is not searched."""
    rule = AROUND.get(name)
    if rule is None or isinstance(new, bool) or not isinstance(new, int | float | None):
        return None
    kind = rule[0]
    if kind == "log" and new and new > 0:
        return log_float(new / rule[1], new * rule[1])
    if kind == "int" and isinstance(new, int):
        return integer(max(1, new - rule[1]), new + rule[1])
    if kind == "choices":
        return choice(*_ordered({*rule[1], new}))
    if kind == "scale_choices" and isinstance(old, int | float) and isinstance(new, int | float):
        return choice(*_ordered({int(round(old * s)) for s in rule[1]} | {int(new)}))
    if kind == "linear" and isinstance(new, int | float):
        return uniform(min(rule[1], new), max(rule[2], new))
    return None


def _ordered(values: set) -> list:
    return sorted(values, key=lambda v: (v is not None, v if v is not None else 0))
