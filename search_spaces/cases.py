"""Known-bad configs from the guides, as data: a model -> the failure a guide describes, in its search coordinates.

A CPU sweep with no `--enqueue` of its own tries its model's case among its first trials, so that a short sweep
shows what the collapse stopper is for: a trial it catches, with the guide's name for it and its reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Case:
    name: str  # what it is, in the guide's words and section
    point: Mapping[str, Any]  # the config in the model's search coordinates (search_spaces/spaces.py)
    verdict: str  # the status the collapse stopper gives it (tuner/core/stopping.py)

    def describe(self) -> str:
        return (f"a known-bad config, {self.name} ({json.dumps(dict(self.point))}): the collapse stopper should end "
                f"it as {self.verdict}")

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether a trial's search values are this case's."""
        return all(values.get(k) == v for k, v in self.point.items())


# Guide 001, 4.4 "Training Collapse (Loss Explodes)": rates far too high (its fix: 5-10x lower). wgan_large's
# spectrally normalised critic kept its losses small at every rate tried (at 16x16: both under 15 after 3 epochs at
# rates of 1e-3, 1e-2 and 0.1, BENCHMARKS.md), so the collapse shows in the samples instead: at 0.1 for both (1000x
# the seed's 1e-4) the generator draws one flat square for every z within an epoch (diversity ratio 0.02), which
# the stopper ends as mode_collapse once the run has settled. Outside the space on purpose: no search would go there.
_RATES_TOO_HIGH = Case("guide 001 4.4's training collapse: both rates 0.1, 1000x the seed's",
                       MappingProxyType({"learning_rate_d": 0.1, "lr_ratio": 1.0}), "stopped:mode_collapse")

GUIDE_CASES: Mapping[str, Case] = MappingProxyType({"wgan_large": _RATES_TOO_HIGH})


def guide_case(model: str, space: Mapping[str, Any]) -> Case | None:
    """The model's known-bad config, when it has one and `space` searches every parameter the case sets."""
    case = GUIDE_CASES.get(model)
    return case if case is not None and set(case.point) <= set(space) else None
