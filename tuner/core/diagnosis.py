"""The diagnosis core: pure functions from a loss history to one label, an onset, a confidence and evidence.

The same `diagnose` judges a finished log (`gantune autofix`), a trial between epochs (the sweep's stopper) and a
trainer's report. Each rule is a row of data naming its guide; a label fires when its required signals do, and
the evidence lists every signal that fired with its value and threshold. The signals (tuner.signals) are relative
to the run's own scale, so a log from any trainer reads the same way. The confidence is the share of runs each
rule got right on a labelled development corpus (calibration.json, written by `bench/diagnosis.py fit`); where
the losses cannot separate two labels, the runner-up is named in `alternatives` with what would settle it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainables.vocabulary import BCE, WGAN
from tuner.core.signals import (
    BLURRY,
    CHANCE,
    CHECKERBOARD,
    COLLAPSED_SCORE,
    D_FAKE_HEALTHY,
    D_REAL_HEALTHY,
    DIVERSITY_COLLAPSED,
    DIVERSITY_LOW,
    EXPLODED,
    GRAD_NORM_HIGH,
    MARGIN_FALLING,
    MARGIN_HELD,
    PINNED,
    QUALITY_GAIN,
    SWING,
    Signal,
    after_grace,
    chance,
    col,
    condensed,
    d_loss_over_chance,
    first_bad,
    g_loss_over_chance,
    margin,
    margin_held,
    margin_slope,
    off_chance,
    positive_level,
    quality_gain,
    rise,
    share,
    smooth3,
    swing,
    swing_over_margin,
    tail,
    trend,
)

LABELS = ("healthy", "discriminator_dominant", "generator_dominant", "mode_collapse", "unstable", "diverged")
FROM_START = 0.1  # an onset in the first 10% of the run (or the first 10 epochs) is "from the start"
SAMPLE_COLUMNS = ("quality", "collapse_score", "diversity_ratio")  # what the samples did, when the log says
CALIBRATION = Path(__file__).with_name("calibration.json")
UNSURE = 0.7  # below this confidence the terminal says what would settle the diagnosis


@dataclasses.dataclass(frozen=True)
class Evidence:
    signal: str
    value: float
    threshold: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        value = self.value if math.isfinite(self.value) else str(self.value)
        return {"signal": self.signal, "value": value, "threshold": self.threshold, "source": self.source}


@dataclasses.dataclass(frozen=True)
class Alternative:
    label: str
    confidence: float
    why: str  # the signals that point to it, in words

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": round(self.confidence, 3), "why": self.why}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    label: str
    family: str
    onset_epoch: int | None
    confidence: float  # the share of development runs this rule got right (calibrated), 0-1
    evidence: tuple[Evidence, ...]
    epochs: int  # epochs in the history judged
    alternatives: tuple[Alternative, ...] = ()  # runner-up labels the losses could not rule out
    settle: str | None = None  # what would settle it, when the losses cannot
    rule: str = ""  # the calibration key of the rule that made the call (rule_key)

    @property
    def from_start(self) -> bool:
        return self.onset_epoch is not None and self.onset_epoch <= max(10, FROM_START * self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "family": self.family, "onset_epoch": self.onset_epoch,
                "confidence": round(self.confidence, 3), "evidence": [e.to_dict() for e in self.evidence],
                "alternatives": [a.to_dict() for a in self.alternatives], "settle": self.settle}


_SAMPLES_COLLAPSED = (
    Signal("collapse_score_share", lambda f: share(after_grace(f, "collapse_score") >= COLLAPSED_SCORE),
           lambda v: v > 0.8, f">= {COLLAPSED_SCORE}/14 on > 80% of tail epochs",
           "002 collapse diagnostic (8+ of 14 collapsed)", ("collapse_score",)),
    Signal("diversity_ratio_tail", lambda f: float(after_grace(f, "diversity_ratio").median()),
           lambda v: v < DIVERSITY_COLLAPSED, f"< {DIVERSITY_COLLAPSED}",
           "003 / 001 4.1 Mode Collapse: all images nearly identical", ("diversity_ratio",)),
)
_DIVERGED = Signal("non_finite_or_exploded_loss_epoch", first_bad, lambda v: not math.isnan(v),
                   f"NaN/inf or |loss| > {EXPLODED:g}", "001 4.4 Training Collapse (Loss Explodes)")

WGAN_SIGNALS = (
    _DIVERGED,
    # the critic's lead (its W estimate, -d_loss without one) against its own peak: guide 000's run and a critic
    # facing a generator that never moves both hold their lead; healthy runs come down from an early peak
    Signal("critic_margin_held", margin_held, lambda v: v >= MARGIN_HELD,
           f">= {MARGIN_HELD:g} of its peak over the last tenth of the run",
           "001 1 Reading the Losses: d_loss -> large negative number and stays there (critic dominates)"),
    Signal("critic_margin_not_falling", margin_slope, lambda v: v > MARGIN_FALLING,
           f"tail change > {MARGIN_FALLING:g} of its peak (not coming down)",
           "000 What to Watch For: if d_loss stabilises near its low and g_loss climbs, G is collapsing again"),
    # supporting evidence only: g_loss carries the critic's free offset, which drifts in healthy runs too
    Signal("g_loss_trend", lambda f: trend(tail(col(f, "g_loss"))), lambda v: v > 0.6, "> 0.6 (steadily rising)",
           "000 Loss Analysis: g_loss 65 and rising"),
    Signal("g_loss_rise", lambda f: rise(tail(col(f, "g_loss"))), lambda v: v > 0.15, "> 15% of its level",
           "000 Loss Analysis: the critic rejects fakes more and more harshly"),
    Signal("d_loss_positive_share", lambda f: share(tail(col(f, "d_loss")) > 0), lambda v: v > 0.9,
           "> 90% of tail epochs", "001 1 Reading the Losses: d_loss large positive, the critic is failing"),
    Signal("d_loss_positive_level", positive_level, lambda v: v > 0.05, "> 0.05 of the run's largest |d_loss|",
           "001 1 Reading the Losses: d_loss -> large positive number"),
    Signal("d_loss_oscillation", swing("d_loss"), lambda v: v > 0.25, "> 0.25 of its own size, epoch to epoch",
           "001 1 Reading the Losses: both losses oscillate wildly"),
    # a WGAN's g_loss carries the critic's free offset, which swings with it, so its own size understates the
    # swing; with the penalty's cause in evidence (gradient norm >> 1), half its size every epoch is enough
    Signal("g_loss_swings", swing("g_loss"), lambda v: v > SWING, f"> {SWING:g}",
           "001 1 Reading the Losses: oscillating losses, learning rate too high or LAMBDA_GP too low"),
    Signal("g_loss_swing_over_margin", lambda f: swing_over_margin(f, "g_loss"), lambda v: v > 0.15,
           "> 0.15x the critic's peak margin, epoch to epoch",
           "001 1 Reading the Losses: both losses oscillate wildly (learning rate too high or LAMBDA_GP too low)"),
    Signal("d_loss_swing_over_margin", lambda f: swing_over_margin(f, "d_loss"), lambda v: v > 0.02,
           "> 0.02x the critic's peak margin, epoch to epoch",
           "001 1 Reading the Losses: both losses oscillate wildly (learning rate too high or LAMBDA_GP too low)"),
    Signal("quality_improving", quality_gain, lambda v: v >= QUALITY_GAIN,
           f">= {QUALITY_GAIN} over the later half of its measurements (KID halved)",
           "000 Loss Analysis: a dominating critic leaves the samples as they were (gray squares)", ("quality",)),
    Signal("grad_norm_logged", lambda f: 1.0, lambda v: True, "the log has the critic's gradient norm",
           "001 2.1: with the gradient norm printed, instability is read from it", ("grad_norm",)),
    Signal("grad_norm_tail_median", lambda f: float(tail(col(f, "grad_norm")).median()),
           lambda v: v > GRAD_NORM_HIGH, f"> {GRAD_NORM_HIGH:g} (1-Lipschitz wants 1)",
           "001 2.1 LAMBDA_GP: gradient norm printed >> 1", ("grad_norm",)),
    *_SAMPLES_COLLAPSED,
)

# Sample-quality warnings (guide 001 4.2-4.3): no label of their own; listed as evidence, they lower a healthy
# diagnosis's confidence and give a healthy run a plan (search_spaces.remedies: "checkerboard", "blurry").
QUALITY_WARNINGS = (
    Signal("checkerboard_ratio_tail", lambda f: float(after_grace(f, "checkerboard_ratio").median()),
           lambda v: v > CHECKERBOARD, f"> {CHECKERBOARD:g}x the real images' power at the Nyquist frequency",
           "001 4.3 Checkerboard Artifacts: ConvTranspose2d in the generator", ("checkerboard_ratio",)),
    Signal("sharpness_ratio_tail", lambda f: float(after_grace(f, "sharpness_ratio").median()),
           lambda v: v < BLURRY, f"< {BLURRY:g}x the real images' high-frequency power",
           "001 4.2 Blurry / Low-Frequency Images", ("sharpness_ratio",)),
)
WARNING_REMEDIES = {"checkerboard_ratio_tail": "checkerboard", "sharpness_ratio_tail": "blurry"}


def _d_outputs_outside(f: pd.DataFrame) -> float:
    real, fake = tail(col(f, "d_real")).median(), tail(col(f, "d_fake")).median()
    return float(min(real - D_REAL_HEALTHY, D_FAKE_HEALTHY - fake))


def _d_fake_tail(f: pd.DataFrame) -> float:
    return float(tail(col(f, "d_fake")).median())


def _d_outputs_off_half(f: pd.DataFrame) -> float:
    return float(tail((col(f, "d_real") - 0.5).abs().combine((col(f, "d_fake") - 0.5).abs(), max)).median())


BCE_SIGNALS = (
    _DIVERGED,
    Signal("d_loss_near_zero", d_loss_over_chance, lambda v: v < 0.15, "< 0.15x chance (D right on every sample)",
           "004 Discriminator Too Strong: D_loss 0.0-0.1"),
    Signal("g_loss_tail_median", g_loss_over_chance, lambda v: v > 20 / CHANCE[0], "> 20 (per step)",
           "004 Discriminator Too Strong: G_loss 20-100"),
    Signal("g_loss_climbing", lambda f: trend(tail(col(f, "g_loss"))), lambda v: v > 0.6, "> 0.6 (steadily rising)",
           "004 Problem: the generator loss explodes"),
    Signal("g_loss_high", g_loss_over_chance, lambda v: v > 3.0 / CHANCE[0], "> 3 per step (D(G(z)) below 5%)",
           "004 Discriminator Too Strong: G_loss 20-100"),
    Signal("d_loss_above_chance", d_loss_over_chance, lambda v: v > 1.1, "> 1.1x chance (D worse than a coin)",
           "004 Generator Too Strong: D_loss above chance"),
    Signal("g_loss_below_chance", g_loss_over_chance, lambda v: v < 0.9, "< 0.9x ln 2 (the fakes fool D)",
           "004 Generator Too Strong: G_loss low, D(fake) above 0.5"),
    Signal("d_real_minus_d_fake", lambda f: float(tail(col(f, "d_real") - col(f, "d_fake")).median()),
           lambda v: v > 0.9, "> 0.9 (D(real) near 1, D(fake) near 0)", "004 Discriminator Too Strong",
           ("d_real", "d_fake")),
    Signal("d_outputs_outside_healthy", _d_outputs_outside, lambda v: v > 0,
           f"D(real) median > {D_REAL_HEALTHY} and D(fake) median < {D_FAKE_HEALTHY}",
           "004 Monitoring: healthy D(real) 0.7-0.9, D(fake) 0.1-0.3 (its adaptive LR_D slows D past them)",
           ("d_real", "d_fake")),
    Signal("d_loss_high", d_loss_over_chance, lambda v: v > 2.5, "> 2.5x chance",
           "004 Generator Too Strong: D_loss 2.0+"),
    Signal("d_outputs_near_half", _d_outputs_off_half, lambda v: v < 0.1, "< 0.1 from 0.5",
           "004 Generator Too Strong: D(real), D(fake) 0.4-0.6", ("d_real", "d_fake")),
    Signal("d_loss_stuck_high", lambda f: float(tail(col(f, "d_loss")).median()), lambda v: 0.72 <= v <= 0.76,
           "0.72-0.75", "003 Mode Collapse Symptoms: D loss stuck high"),
    Signal("d_acc_stuck_at_half", lambda f: float((tail(col(f, "d_acc")) - 0.5).abs().max()), lambda v: v < 0.02,
           "within 2 points of 50% on every tail epoch", "003 Mode Collapse Symptoms: D accuracy 50% exactly",
           ("d_acc",)),
    Signal("g_acc_tail_median", lambda f: float(tail(col(f, "g_acc")).median()), lambda v: v >= 0.99, ">= 99%",
           "003 Mode Collapse Symptoms: G accuracy 99%+", ("g_acc",)),
    # a discriminator with no edge at all: its loss at chance to 1% on every tail epoch (healthy ones keep some)
    Signal("d_loss_pinned_at_chance", off_chance, lambda v: v < PINNED,
           f"within {PINNED:.0%} of ln 2 (or ln 4) on every tail epoch",
           "003 Mode Collapse Symptoms: D loss and accuracy stuck at chance"),
    Signal("d_loss_oscillation", swing("d_loss"), lambda v: v > 0.5, "> 0.5",
           "001 1 / 004 Oscillation: quality goes up and down"),
    Signal("g_loss_oscillation", swing("g_loss"), lambda v: v > 0.5, "> 0.5",
           "001 1 / 004 Oscillation"),
    _SAMPLES_COLLAPSED[0],
    # alike samples that the discriminator sees through: guide 004's gray/uniform images under a too-strong D
    Signal("diversity_ratio_low", lambda f: float(after_grace(f, "diversity_ratio").median()),
           lambda v: v < DIVERSITY_LOW, f"< {DIVERSITY_LOW} (the collapse score's diversity warning)",
           "001 4.1 Mode Collapse: generated images look nearly identical", ("diversity_ratio",)),
    Signal("d_fake_below_healthy", _d_fake_tail, lambda v: v < D_FAKE_HEALTHY, f"D(fake) median < {D_FAKE_HEALTHY}",
           "004 Monitoring: healthy D(fake) 0.1-0.3; below it D rejects every fake", ("d_fake",)),
)
SIGNALS = {WGAN: WGAN_SIGNALS + QUALITY_WARNINGS, BCE: BCE_SIGNALS + QUALITY_WARNINGS}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A label fires when all of `all_of` fire, at least one of `any_of` (if given), and none of `none_of`."""

    label: str
    all_of: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()  # counter-evidence: a signal that rules the label out


_HELD = ("critic_margin_held", "critic_margin_not_falling")

# Never a diagnosis: signals that only point to a runner-up when no rule fires (g_loss's offset drifts in healthy
# runs too, but a steady climb is what guide 000's table shows at epoch 1260, with the critic's margin come down)
HINTS = {
    WGAN: (Rule("discriminator_dominant", ("g_loss_trend", "g_loss_rise"), (), ("quality_improving",)),),
    BCE: (Rule("discriminator_dominant", ("g_loss_climbing", "g_loss_high")),),
}

# Checked in order; the first that fires is the diagnosis. Divergence first: nothing else means anything then.
RULES = {
    WGAN: (
        Rule("diverged", ("non_finite_or_exploded_loss_epoch",)),
        # the samples say it outright (all nearly identical), whatever the losses (a generator that never moves)
        Rule("mode_collapse", ("collapse_score_share",)),
        Rule("mode_collapse", ("diversity_ratio_tail",)),
        # the penalty's cause in evidence (gradient norm >> 1) with swinging losses: nothing else is reliable then
        Rule("unstable", ("g_loss_swings", "grad_norm_tail_median")),
        # both losses jump epoch to epoch by much of what the critic ever measured between real and fake (judged
        # so only when the log has no gradient norm, which the rule above reads instead)
        Rule("unstable", ("d_loss_oscillation", "g_loss_swing_over_margin", "d_loss_swing_over_margin"), (),
             ("grad_norm_logged",)),
        # the critic's lead never came down: the generator is failing (not when its samples clearly improve)
        Rule("discriminator_dominant", _HELD, (), ("quality_improving",)),
        Rule("generator_dominant", ("d_loss_positive_share", "d_loss_positive_level")),
    ),
    BCE: (
        Rule("diverged", ("non_finite_or_exploded_loss_epoch",)),
        Rule("discriminator_dominant", ("d_loss_near_zero",),
             ("g_loss_tail_median", "d_real_minus_d_fake", "g_loss_climbing", "g_loss_high")),
        # milder: D wins every comparison, past the healthy ranges, though G's loss stays moderate
        Rule("discriminator_dominant", ("d_outputs_outside_healthy",)),
        Rule("mode_collapse", ("d_loss_stuck_high", "d_acc_stuck_at_half", "g_acc_tail_median")),
        # D with no edge at all on any epoch (003's collapse); a healthy D keeps some edge, though on 2-D data its
        # loss too sits a hair below chance: only its accuracy tells them apart
        Rule("mode_collapse", ("d_loss_pinned_at_chance", "d_acc_stuck_at_half")),
        Rule("generator_dominant", ("d_loss_high",), ("d_outputs_near_half",)),
        Rule("generator_dominant", ("d_loss_above_chance", "g_loss_below_chance")),
        Rule("mode_collapse", ("collapse_score_share",)),
        # 004 "Gray Images / Mode Collapse": the samples alike (under half the data's spread) and every one rejected
        # (D(fake) under its healthy range) though D(real) stays short of the dominance rule's 0.9: one output
        # the discriminator sees through, which the generator does not leave
        Rule("mode_collapse", ("diversity_ratio_low", "d_fake_below_healthy")),
        Rule("unstable", ("d_loss_oscillation", "g_loss_oscillation")),
    ),
}


def measure(frame: pd.DataFrame, family: str) -> dict[str, tuple[Signal, float]]:
    """Every signal whose columns the history has, with its value."""
    out = {}
    for signal in SIGNALS[family]:
        if all(c in frame.columns and frame[c].notna().any() for c in signal.needs):
            with np.errstate(all="ignore"):
                out[signal.name] = (signal, signal.value(frame))
    return out


def _fired(measured: Mapping[str, tuple[Signal, float]]) -> set[str]:
    return {name for name, (signal, value) in measured.items() if not math.isnan(value) and signal.fires(value)}


def diagnose(frame: pd.DataFrame, family: str = WGAN) -> Diagnosis:
    """One label for a per-epoch history with at least `epoch`, `d_loss`, `g_loss` columns (a per-iteration one is
    read as `condensed` rows; `epochs` still counts the log's rows)."""
    frame = frame.reset_index(drop=True)
    return dataclasses.replace(_diagnose(condensed(frame), family), epochs=len(frame))


def _diagnose(frame: pd.DataFrame, family: str) -> Diagnosis:
    if len(frame) == 0:
        return Diagnosis("healthy", family, None, 0.0, (), 0)
    measured = measure(frame, family)
    fired = _fired(measured)
    rule = next((r for r in RULES[family] if _matches(r, fired)), None)
    if rule is None:
        return _healthy(frame, family, measured, fired)
    names = [*rule.all_of, *[n for n in rule.any_of if n in fired], *_warnings(fired)]
    evidence = tuple(_evidence(measured[n]) for n in names)
    key = rule_key(family, rule)
    confidence = calibrated(key)
    finite = frame[np.isfinite(frame[["d_loss", "g_loss"]].astype(float)).all(axis=1)]
    onset = _onset(rule.label, frame if rule.label == "diverged" else finite, measured)
    alternatives = _alternatives(rule.label, confidence, _near(family, fired, measured))
    return Diagnosis(rule.label, family, onset, confidence, evidence, len(frame), alternatives,
                     _settle(frame, rule.label, confidence, alternatives), key)


def _matches(rule: Rule, fired: set[str]) -> bool:
    return set(rule.all_of) <= fired and (not rule.any_of or bool(fired & set(rule.any_of))) \
        and not fired & set(rule.none_of)


def rule_key(family: str, rule: Rule | None, warnings: int = 0) -> str:
    """The calibration table's key for a rule (or for `healthy` with this many near-miss warnings, capped at 2)."""
    if rule is None:
        return f"{family}/healthy/{min(warnings, 2)}"
    return f"{family}/{rule.label}/{'+'.join(rule.all_of)}"


@functools.cache
def _calibration() -> Mapping[str, tuple[int, int]]:
    if not CALIBRATION.is_file():
        return {}
    return {k: (int(v[0]), int(v[1])) for k, v in json.loads(CALIBRATION.read_text())["rules"].items()}


def reload_calibration() -> None:
    """Read calibration.json again on the next call (after `bench/diagnosis.py fit` rewrote it)."""
    _calibration.cache_clear()


def calibrated(key: str) -> float:
    """The development corpus's share of right calls for this rule, with one right and one wrong call added
    (Laplace): a rule never seen there gets 0.5, one right 30 times of 30 gets 0.97."""
    right, total = _calibration().get(key, (0, 0))
    return (right + 1) / (total + 2)


def _near(family: str, fired: set[str], measured: Mapping[str, Any]) -> list[tuple[Rule, str]]:
    """Rules that fired, or missed only by a signal the log cannot show, or hints whose signals all fired; each
    with the signals that point to it."""
    out = []
    for rule in (*RULES[family], *HINTS[family]):
        missing = [n for n in rule.all_of if n not in fired]
        # missed by one signal the log has no column for: the losses could not rule it out
        near = len(missing) == 1 and len(rule.all_of) > 1 and missing[0] not in measured
        if (missing and not near) or (rule.any_of and not fired & set(rule.any_of)):
            continue
        blocked = sorted(fired & set(rule.none_of))
        why = ", ".join(n for n in (*rule.all_of, *rule.any_of) if n in fired)
        why += f" (not {missing[0]})" if missing else ""
        out.append((rule, why + (f" (ruled out by {', '.join(blocked)})" if blocked else "")))
    return out


def _alternatives(label: str, confidence: float, near: list[tuple[Rule, str]]) -> tuple[Alternative, ...]:
    """Other labels whose rules fired too or nearly did (`_near`): what the losses could not rule out."""
    found: dict[str, str] = {}
    for rule, why in near:
        if rule.label not in (label, "diverged"):
            found.setdefault(rule.label, why)
    share_left = (1 - confidence) / max(1, len(found))
    return tuple(Alternative(lab, share_left, why) for lab, why in found.items())


def _settle(frame: pd.DataFrame, label: str, confidence: float,
            alternatives: tuple[Alternative, ...]) -> str | None:
    """What would settle a diagnosis the losses leave open: the samples, when the log has none of them."""
    if confidence >= UNSURE and not alternatives:
        return None
    said = (f"the losses alone cannot tell {label} from {' or '.join(a.label for a in alternatives)}"
            if alternatives else f"{label} from the losses alone, a call this rule got right "
                                 f"{confidence:.0%} of the time on the development runs")
    if not any(c in frame and frame[c].notna().any() for c in SAMPLE_COLUMNS):
        return (f"{said}: the samples would settle it (look at the sample grids over the last epochs, or log a "
                f"quality or diversity_ratio column)")
    return f"{said}: more epochs would settle it"


def epoch_warning(row: Mapping[str, float], family: str) -> str | None:
    """Guide 004's per-epoch monitor: the discriminator-dominant rule judged on this one epoch alone (a run's
    diagnosis waits for a tail of epochs; the warning does not). The evidence in words, else None."""
    if family != BCE:
        return None
    verdict = diagnose(pd.DataFrame([dict(row)]), family)
    if verdict.label != "discriminator_dominant":
        return None
    shown = ", ".join(f"{e.signal} {e.value:.3g}" for e in verdict.evidence)
    return f"Discriminator too strong! ({shown}; guide 004: lower LR_D, label smoothing, instance noise)"


def _warnings(fired: set[str]) -> list[str]:
    return [w.name for w in QUALITY_WARNINGS if w.name in fired]


def warning_remedies(diagnosis: Diagnosis) -> list[str]:
    """The remedy-ladder keys of the quality warnings in a diagnosis's evidence ("checkerboard", "blurry")."""
    return [WARNING_REMEDIES[e.signal] for e in diagnosis.evidence if e.signal in WARNING_REMEDIES]


def _evidence(item: tuple[Signal, float]) -> Evidence:
    signal, value = item
    return Evidence(signal.name, float(value), signal.threshold, signal.source)


def _healthy(frame: pd.DataFrame, family: str, measured: Mapping[str, tuple[Signal, float]],
             fired: set[str]) -> Diagnosis:
    """Healthy: no rule fired. The signals of rules it nearly matched are shown as warnings, and lower the
    confidence (calibrated by how many rules it nearly matched)."""
    near = _near(family, fired, measured)
    shown_near = sorted({n for rule, _ in near if rule in RULES[family] for n in rule.all_of if n in fired})
    # what ruled a label out, where the rest of its rule fired: shown, not a warning
    counter = {n for rule in RULES[family] if set(rule.all_of) <= fired for n in rule.none_of}
    warnings = tuple(_evidence(measured[n]) for n in [*shown_near, *_warnings(fired)])
    key = rule_key(family, None, len({rule.label for rule, _ in near}))
    confidence = calibrated(key)
    shown = warnings + tuple(_evidence(measured[n]) for n in sorted(fired & counter) if n not in shown_near)
    alternatives = _alternatives("healthy", confidence, near)
    return Diagnosis("healthy", family, None, confidence, shown, len(frame), alternatives,
                     _settle(frame, "healthy", confidence, alternatives), key)


def _onset(label: str, frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """The epoch the failure began: the first bad value, the low point before the critic's lead grew for good,
    the first epoch from which the critic keeps losing, the losses keep swinging, or the samples stay collapsed."""
    if label == "diverged":
        return int(measured["non_finite_or_exploded_loss_epoch"][1])
    if len(frame) == 0:
        return None
    if label == "discriminator_dominant":
        return _dominance_onset(frame, measured)
    if label == "mode_collapse":
        return _collapse_onset(frame, measured)
    if label == "unstable":
        return _unstable_onset(frame, measured)
    smooth = smooth3(frame["d_loss"])
    losing = smooth / chance(frame) > 1.1 if "d_loss_high" in measured else smooth > 0  # BCE: D worse than chance
    return _first_sustained(frame, losing)


def _dominance_onset(frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """BCE: from when D's outputs (else its loss) stay separated; WGAN: the critic's margin at its lowest before
    its lead grew and held (guide 000's run: epoch 0)."""
    if "d_outputs_outside_healthy" in measured:  # D's outputs say when
        separated = (frame["d_real"].astype(float) > D_REAL_HEALTHY) & (frame["d_fake"].astype(float) < D_FAKE_HEALTHY)
        # one epoch where G catches up (004: "quality goes up and down") does not end the dominance
        onset = _first_sustained(frame, smooth3(separated) >= 0.5)
        if onset is not None:
            return onset
    if "d_loss_near_zero" in measured:
        return _first_sustained(frame, smooth3(frame["d_loss"]) / chance(frame) < 0.15)
    w = margin(frame)
    return int(frame["epoch"].iloc[int(np.argmin(w.iloc[:int(np.argmax(w.to_numpy())) + 1].to_numpy()))])


def _unstable_onset(frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """From when the gradient norm stays high (when that is the evidence), else the losses' jumps stay large."""
    if "grad_norm" in frame and "grad_norm_tail_median" in _fired(measured):
        return _first_sustained(frame, smooth3(frame["grad_norm"]) > GRAD_NORM_HIGH)
    if "d_loss_swing_over_margin" in _fired(measured):  # jumps against the critic's peak margin
        peak = margin(frame).abs().max()
        jumps = [smooth3(frame[c].astype(float).diff().abs()) / peak > limit
                 for c, limit in (("d_loss", 0.02), ("g_loss", 0.15))]
        return _first_sustained(frame, jumps[0] | jumps[1])
    swings = [smooth3(frame[c].astype(float).diff().abs()) > SWING * frame[c].astype(float).abs().median()
              for c in ("d_loss", "g_loss")]
    return _first_sustained(frame, swings[0] & swings[1])


def _collapse_onset(frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """The first sustained collapsed collapse score or diversity ratio, or alike samples that D rejects; else, from
    the losses, from when D sits at chance (BCE) or the critic's loss stopped moving (WGAN)."""
    tests = (("collapse_score", lambda s: s >= COLLAPSED_SCORE),
             ("diversity_ratio", lambda s: s < DIVERSITY_COLLAPSED))
    for column, bad in tests:
        if column in frame and frame[column].notna().any():
            onset = _first_sustained(frame, bad(frame[column].astype(float)))
            if onset is not None:
                return onset
    if {"diversity_ratio_low", "d_fake_below_healthy"} <= _fired(measured):
        alike = frame["diversity_ratio"].astype(float) < DIVERSITY_LOW
        return _first_sustained(frame, alike & (smooth3(frame["d_fake"]) < D_FAKE_HEALTHY))
    d = frame["d_loss"].astype(float)
    if "d_loss_pinned_at_chance" in measured:
        return _first_sustained(frame, (d / chance(frame) - 1).abs() < PINNED)
    return _first_sustained(frame, (d / d.iloc[-1] - 1).abs() < 0.01)


def _first_sustained(frame: pd.DataFrame, mask: pd.Series) -> int | None:
    """The first epoch from which the condition holds on at least 80% of the remaining epochs."""
    values = mask.to_numpy(dtype=bool)
    rest = np.cumsum(values[::-1])[::-1] / np.arange(len(values), 0, -1)
    hits = np.flatnonzero(values & (rest >= 0.8))
    return int(frame["epoch"].iloc[hits[0]]) if len(hits) else None
