"""The per-epoch report a trial gives Ray Tune, and `gantune watch` prints: the row's metrics, the diagnosis core's
label for the history so far (with its onset, confidence, evidence and how many epochs in a row it has held), and
the objective carried forward from its last measurement. No torch here: `gantune watch` uses it beside a trainer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from trainables.vocabulary import WGAN
from tuner.diagnosis_integrated import diagnose_run

QUALITY_FLOOR = -100.0  # the objective before the first measurement: below any measured quality (-log10(1+KID)/10)


class Report:
    """The per-epoch report: metrics, the diagnosis of the history so far, and the carried objective."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        state = state or {}
        self.history: list[dict[str, float]] = list(state.get("history", []))
        self.streak = int(state.get("streak", 0))
        self.label = str(state.get("label", ""))
        self.quality = float(state.get("quality", QUALITY_FLOOR))

    def state(self) -> dict[str, Any]:
        return {"history": self.history, "streak": self.streak, "label": self.label, "quality": self.quality}

    def add(self, row: dict[str, float], family: str = WGAN, objective: float | None = None,
            model: str | None = None) -> dict[str, Any]:
        """`objective`: the quality to carry when the row has none of its own (a user's log scored by a loss
        proxy); it is reported, but the diagnosis never sees it as a sample measurement. `model`: a gantune model
        with its own reading of its log (the integrated system) is diagnosed by it."""
        self.history.append(row)
        diagnosis = diagnose_run(pd.DataFrame(self.history), family, model)
        self.streak = self.streak + 1 if diagnosis.label == self.label else 1
        self.label = diagnosis.label
        value = row.get("quality", objective)
        measured = value is not None and math.isfinite(value)
        if measured:
            self.quality = value
        return {**row, "quality": self.quality, "quality_measured": float(measured),
                "diagnosis": diagnosis.label, "diagnosis_streak": self.streak,
                "diagnosis_onset": -1 if diagnosis.onset_epoch is None else diagnosis.onset_epoch,
                "diagnosis_confidence": diagnosis.confidence,
                "diagnosis_evidence": json.dumps([e.to_dict() for e in diagnosis.evidence])}
