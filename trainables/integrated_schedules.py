"""The integrated system's schedules as data (guide 002): how often the discriminator steps, and what the
transformer critic does each epoch. Plain Python, no torch: the config checks its names against these tables.

Where guide 002's text and its fixed trainer disagree, both are here under their own names (issue 26):
- discriminator steps: the text trains D 3 times per generator step in epochs 1-100 and 2 times after ("text");
  the code trains D on every batch before epoch 50 and on every other batch after ("code").
- the transformer: the text isolates it for epochs 1-200, freezes it for 200-250 and integrates it gradually after
  ("isolation"); the code keeps it dormant for 25 epochs, then cycles critic / isolation / imitator phases of 30
  epochs each and never lets it touch the other networks ("cycle").
Epochs are 0-based here, so the guide's "epochs 1-100" are 0..99.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType
from typing import Any


def _code_steps(epoch: int, batch: int) -> int:
    return 1 if epoch < 50 or batch % 2 == 0 else 0


def _text_steps(epoch: int, batch: int) -> int:
    return 3 if epoch < 100 else 2


# name -> (epoch, batch index) -> discriminator steps taken on that batch before its generator and NCA step
D_SCHEDULES: MappingProxyType[str, Callable[[int, int], int]] = MappingProxyType({
    "code": _code_steps,
    "text": _text_steps,
})

# The transformer's phases, in the order of the log's `t_phase` column (its index there).
PHASES = ("dormant", "critic", "isolation", "imitator", "integration")


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str  # one of PHASES
    loss: str | None  # the transformer's loss measured this epoch: "critic", "imitator" or None (t_loss NaN)
    trains: bool  # whether the transformer's weights move (False: the loss is only measured)
    weight: float  # share of T_INTEGRATION on the generator's loss this epoch (0: isolated from the others)

    @property
    def index(self) -> int:
        return PHASES.index(self.name)


CYCLE_DORMANT, CYCLE_PHASE = 25, 30  # the code: 25 dormant epochs, then phases of 30
ISOLATED_UNTIL, FROZEN_UNTIL, RAMP = 200, 250, 50  # the text: isolated, then frozen, then integrated over 50
_CYCLE = (Phase("critic", "critic", True, 0.0), Phase("isolation", "critic", False, 0.0),
          Phase("imitator", "imitator", True, 0.0))


def _cycle(epoch: int) -> Phase:
    if epoch < CYCLE_DORMANT:
        return Phase("dormant", None, False, 0.0)
    return _CYCLE[(epoch - CYCLE_DORMANT) // CYCLE_PHASE % 3]


def _isolation(epoch: int) -> Phase:
    """The text's "completely isolated" epochs train the transformer as a critic that no other network hears; its
    "isolation period" freezes it; integration then ramps its weight on the generator over RAMP epochs."""
    if epoch < ISOLATED_UNTIL:
        return Phase("critic", "critic", True, 0.0)
    if epoch < FROZEN_UNTIL:
        return Phase("isolation", "critic", False, 0.0)
    return Phase("integration", "critic", True, min(1.0, (epoch - FROZEN_UNTIL + 1) / RAMP))


# name -> epoch -> the transformer's phase
T_SCHEDULES: MappingProxyType[str, Callable[[int], Phase]] = MappingProxyType({
    "cycle": _cycle,
    "isolation": _isolation,
})


def problems(cfg: Any) -> list[str]:
    """What is wrong with a config's integrated-system fields (empty when nothing is)."""
    out = []
    if cfg.d_schedule not in D_SCHEDULES:
        out.append(f"D_SCHEDULE must be one of {', '.join(D_SCHEDULES)}, got {cfg.d_schedule!r}")
    if cfg.t_schedule not in T_SCHEDULES:
        out.append(f"T_SCHEDULE must be one of {', '.join(T_SCHEDULES)}, got {cfg.t_schedule!r}")
    if not cfg.learning_rate_nca > 0 or not cfg.learning_rate_t > 0:
        out.append(f"LEARNING_RATE_NCA and LEARNING_RATE_T must be positive, got {cfg.learning_rate_nca!r} "
                   f"and {cfg.learning_rate_t!r}")
    for key in ("real_noise_std", "feature_matching", "grad_clip", "t_integration"):
        if getattr(cfg, key) < 0:
            out.append(f"{key.upper()} must be zero or positive, got {getattr(cfg, key)!r}")
    return out
