"""Diagnosis of a multi-network log (guide 002's integrated system): which generator collapsed, which side dominated.

The integrated log holds one discriminator against two generators. Each generator's view of it is the log a
one-generator BCE run would write (its fakes' D outputs, accuracies, adversarial loss and sample statistics, and
the discriminator's loss on reals plus on its fakes, the "sum" convention of guide 004); the diagnosis core judges
each view as it judges any BCE run, so the rules and their calibration are the ones every BCE log gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from trainables.vocabulary import BCE, GUIDE_SCORE, NCA_PREFIX, SAMPLE_METRICS
from tuner.core.diagnosis import Diagnosis, diagnose

# network -> (the BCE column its view shows -> the integrated log's column it is read from)
_NCA_SAMPLES = {m: NCA_PREFIX + m for m in (*SAMPLE_METRICS, GUIDE_SCORE)}
VIEWS: Mapping[str, Mapping[str, str]] = {
    "generator": {"g_loss": "g_bce"},
    "nca": {"g_loss": "nca_bce", "d_fake": "d_fake_nca", "d_acc_fake": "d_acc_fake_nca", "g_acc": "nca_acc",
            "d_loss_fake": "d_loss_fake_nca", **_NCA_SAMPLES},
}
DOMINANCE = {"discriminator_dominant": "the discriminator", "generator_dominant": "the generator side"}


def network_view(frame: pd.DataFrame, renames: Mapping[str, str]) -> pd.DataFrame:
    """One generator's BCE log from the integrated one; d_loss is the discriminator's BCE on reals and its fakes."""
    view = frame.copy()
    for shown, source in renames.items():
        view[shown] = frame[source] if source in frame else float("nan")
    view["d_loss"] = view["d_loss_real"] + view["d_loss_fake"]
    view["d_acc"] = 0.5 * (view["d_acc_real"] + view["d_acc_fake"])
    return view


@dataclasses.dataclass(frozen=True)
class NetworksDiagnosis:
    by_network: Mapping[str, Diagnosis]  # "generator" and "nca" -> the diagnosis of that generator's view

    @property
    def collapsed(self) -> tuple[str, ...]:
        return tuple(n for n, d in self.by_network.items() if d.label == "mode_collapse")

    @property
    def dominant(self) -> str | None:
        """Who dominated: the discriminator, the generator side, or None (neither, by every view)."""
        labels = [d.label for d in self.by_network.values() if d.label in DOMINANCE]
        return DOMINANCE[labels[0]] if labels else None

    def reason(self) -> str:
        """One sentence a person can read: each generator's label and, when one side dominated, which."""
        parts = [f"{name}: {d.label}" + (f" from epoch {d.onset_epoch}" if d.onset_epoch is not None else "")
                 for name, d in self.by_network.items()]
        tail = f"; {self.dominant} dominated" if self.dominant else ""
        return "; ".join(parts) + tail


def diagnose_networks(frame: pd.DataFrame) -> NetworksDiagnosis:
    """Each generator of an integrated log (INTEGRATED_COLUMNS) diagnosed on its own view."""
    return NetworksDiagnosis({name: diagnose(network_view(frame, renames), BCE) for name, renames in VIEWS.items()})


# Labels from the most to the least urgent: the one the whole system gets when its generators' views differ.
SEVERITY = ("diverged", "mode_collapse", "discriminator_dominant", "unstable", "generator_dominant", "healthy")


def diagnose_integrated(frame: pd.DataFrame, family: str = BCE) -> Diagnosis:
    """One diagnosis for the whole system: the most urgent of its generators' (a collapsed NCA beside a healthy
    generator is a collapse), read with the BCE rules whatever family the log reader guessed."""
    found = diagnose_networks(frame).by_network.values()
    return min(found, key=lambda d: SEVERITY.index(d.label) if d.label in SEVERITY else len(SEVERITY))


# Models whose logs need more than their family's rules: model name -> (frame, family) -> Diagnosis.
MODEL_DIAGNOSES = {"integrated": diagnose_integrated}


def diagnose_run(frame: pd.DataFrame, family: str, model: object = None) -> Diagnosis:
    """The diagnosis of a run's log: its model's own reading where it has one, else its family's rules."""
    return MODEL_DIAGNOSES.get(model, diagnose)(frame, family)
