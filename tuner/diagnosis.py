"""The diagnosis core: pure functions from a loss history to one label, an onset, a confidence and evidence.

The same `diagnose` judges a finished log (`gantune autofix`), a trial between epochs (the sweep's stopper) and a
trainer's report. Each rule is a row of data naming its guide; a label fires when its required signals do, and
the evidence lists every signal that fired with its value and threshold.

Signals read the tail of the run (its last quarter, at least TAIL_MIN epochs), so one noisy epoch never decides;
sample-statistic signals skip the first GRACE epochs, where an untrained generator looks collapsed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from trainables.metrics import COLLAPSED_SCORE

LABELS = ("healthy", "discriminator_dominant", "generator_dominant", "mode_collapse", "unstable", "diverged")
TAIL_MIN = 5
GRACE = 5  # epochs before sample statistics count
EXPLODED = 1e4  # |loss| beyond this is divergence (001, 4.4: "goes to +-infinity")
DIVERSITY_COLLAPSED = 0.1  # fakes closer to each other than a tenth of real data's spread (003 / 001 4.1)
QUALITY_GAIN = 0.03  # quality is -log10(1 + KID) / 10 early on: +0.03 is KID halved
D_REAL_HEALTHY, D_FAKE_HEALTHY = 0.9, 0.1  # guide 004's healthy D(real) 0.7-0.9 and D(fake) 0.1-0.3, outer edges
CHECKERBOARD = 4.0  # Nyquist-frequency power this many times the data's: a transposed conv's grid (001 4.3)
BLURRY = 0.5  # high-frequency power below half the data's: soft images without edges (001 4.2)
GRAD_NORM_HIGH = 2.0  # the critic's gradient norm far above the penalty's target of 1 (001 2.1)
SWING = 0.5  # a loss's epoch-to-epoch jump over its size, with the penalty's cause in evidence
FROM_START = 0.1  # an onset in the first 10% of the run (or the first 10 epochs) is "from the start"


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
class Diagnosis:
    label: str
    family: str
    onset_epoch: int | None
    confidence: float
    evidence: tuple[Evidence, ...]
    epochs: int  # epochs in the history judged

    @property
    def from_start(self) -> bool:
        return self.onset_epoch is not None and self.onset_epoch <= max(10, FROM_START * self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "family": self.family, "onset_epoch": self.onset_epoch,
                "confidence": round(self.confidence, 3), "evidence": [e.to_dict() for e in self.evidence]}


# ----- window statistics (pure, NaN-tolerant) -------------------------------------------------------------------
def tail(x: pd.Series) -> pd.Series:
    return x.iloc[-max(TAIL_MIN, len(x) // 4):]


def head(x: pd.Series) -> pd.Series:
    return x.iloc[:max(3, len(x) // 10)]


def trend(x: pd.Series) -> float:
    """Spearman rank correlation of the values with time: +1 steadily rising, -1 steadily falling."""
    x = x.dropna()
    if len(x) < 3 or x.nunique() < 2:
        return 0.0
    return float(np.corrcoef(x.rank().to_numpy(), np.arange(len(x)))[0, 1])


def rise(x: pd.Series) -> float:
    """Change across the window of a straight-line fit, relative to the window's median magnitude."""
    x = x.dropna()
    if len(x) < 3:
        return 0.0
    slope = np.polyfit(np.arange(len(x)), x.to_numpy(dtype=float), 1)[0]
    return float(slope * (len(x) - 1) / (abs(x.median()) + 1e-8))


def oscillation(x: pd.Series, whole: pd.Series | None = None) -> float:
    """Median epoch-to-epoch jump of a window over the loss's magnitude: ~0.1 for a smooth curve, >1 for wild
    swings. The magnitude is the larger of the window's and the whole run's median |value|: a WGAN critic loss
    that has converged near 0 (the distributions match) jitters around it, which is not instability."""
    x = x.dropna()
    if len(x) < 3:
        return 0.0
    scale = x.abs().median()
    if whole is not None and whole.notna().any():
        scale = max(scale, whole.dropna().abs().median())
    return float(x.diff().abs().median() / (scale + 1e-8))


def share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


# ----- signals: name -> (value from the history, test, threshold text, guide source) -----------------------------
@dataclasses.dataclass(frozen=True)
class Signal:
    name: str
    value: Callable[[pd.DataFrame], float]
    fires: Callable[[float], bool]
    threshold: str
    source: str
    needs: tuple[str, ...] = ("d_loss", "g_loss")  # columns the signal reads


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name].astype(float)


def _after_grace(frame: pd.DataFrame, name: str) -> pd.Series:
    x = _col(frame, name)
    return tail(x.iloc[GRACE:]) if len(x) > GRACE + TAIL_MIN else x.iloc[0:0]


def _swing(name: str) -> Callable[[pd.DataFrame], float]:
    """The oscillation of a loss's tail, against the whole run's magnitude."""
    return lambda f: oscillation(tail(_col(f, name)), _col(f, name))


def _w_run_trend(frame: pd.DataFrame) -> float:
    """The trend of the critic's Wasserstein estimate (w_dist, else -d_loss) over the run after its first epochs.
    A healthy WGAN's estimate peaks early and falls as the generator catches up; one that climbs all run long
    means the generator never did (guide 000's run, seen before g_loss's climb is steep)."""
    w = _col(frame, "w_dist") if "w_dist" in frame and frame["w_dist"].notna().any() else -_col(frame, "d_loss")
    w = w.iloc[GRACE:]
    return trend(w) if w.notna().sum() >= 2 * TAIL_MIN else math.nan


def _quality_gain(frame: pd.DataFrame) -> float:
    """How much the measured quality (higher is better) rose over the later half of its measurements."""
    q = _col(frame, "quality").dropna()
    if len(q) < 2:
        return math.nan
    recent = q.iloc[(len(q) - 1) // 2:]
    return float(recent.iloc[-1] - recent.iloc[0])


def _first_bad(frame: pd.DataFrame) -> float:
    losses = frame[["d_loss", "g_loss"]].astype(float)
    bad = ~np.isfinite(losses).all(axis=1) | (losses.abs() > EXPLODED).any(axis=1)
    return float(frame.loc[bad, "epoch"].iloc[0]) if bad.any() else math.nan


WGAN_SIGNALS = (
    Signal("non_finite_or_exploded_loss_epoch", _first_bad, lambda v: not math.isnan(v),
           f"NaN/inf or |loss| > {EXPLODED:g}", "001 4.4 Training Collapse (Loss Explodes)"),
    Signal("g_loss_trend", lambda f: trend(tail(_col(f, "g_loss"))), lambda v: v > 0.6, "> 0.6 (steadily rising)",
           "000 Loss Analysis: g_loss 65 and rising"),
    Signal("g_loss_rise", lambda f: rise(tail(_col(f, "g_loss"))), lambda v: v > 0.15, "> 15% of its level",
           "000 Loss Analysis: the critic rejects fakes more and more harshly"),
    Signal("d_loss_tail_median", lambda f: float(tail(_col(f, "d_loss")).median()), lambda v: v < 0, "< 0",
           "001 1 Reading the Losses: d_loss large negative and stays there"),
    Signal("w_dist_rise", lambda f: rise(tail(_col(f, "w_dist"))), lambda v: v > 0.15, "> 15% of its level",
           "001 1: the critic separates real and fake more and more", ("w_dist",)),
    Signal("w_dist_run_trend", _w_run_trend, lambda v: v > 0.8, "> 0.8 over the run after epoch 5 (never turned down)",
           "000 Loss Analysis: the critic's margin grows every epoch", ("d_loss",)),
    Signal("d_loss_positive_share", lambda f: share(tail(_col(f, "d_loss")) > 0), lambda v: v > 0.8,
           "> 80% of tail epochs", "001 1 Reading the Losses: d_loss large positive, the critic is failing"),
    Signal("d_loss_tail_level", lambda f: float(tail(_col(f, "d_loss")).median()), lambda v: v > 1.0, "> 1.0",
           "001 1 Reading the Losses: d_loss -> large positive number"),
    Signal("d_loss_oscillation", _swing("d_loss"), lambda v: v > 1.0, "> 1.0",
           "001 1 Reading the Losses: both losses oscillate wildly"),
    Signal("g_loss_oscillation", _swing("g_loss"), lambda v: v > 1.0, "> 1.0",
           "001 1 Reading the Losses: both losses oscillate wildly"),
    # a WGAN's g_loss carries the critic's free offset, which swings with it, so its own size understates the
    # swing; with the penalty's cause in evidence (gradient norm >> 1), half its size every epoch is enough
    Signal("g_loss_swings", _swing("g_loss"), lambda v: v > SWING, f"> {SWING:g}",
           "001 1 Reading the Losses: oscillating losses, learning rate too high or LAMBDA_GP too low"),
    Signal("quality_improving", _quality_gain, lambda v: v >= QUALITY_GAIN,
           f">= {QUALITY_GAIN} over the later half of its measurements (KID halved)",
           "000 Loss Analysis: a dominating critic leaves the samples as they were (gray squares)", ("quality",)),
    Signal("grad_norm_tail_median", lambda f: float(tail(_col(f, "grad_norm")).median()),
           lambda v: v > GRAD_NORM_HIGH, f"> {GRAD_NORM_HIGH:g} (1-Lipschitz wants 1)",
           "001 2.1 LAMBDA_GP: gradient norm printed >> 1", ("grad_norm",)),
    Signal("collapse_score_share", lambda f: share(_after_grace(f, "collapse_score") >= COLLAPSED_SCORE),
           lambda v: v > 0.8, f">= {COLLAPSED_SCORE}/14 on > 80% of tail epochs",
           "002 collapse diagnostic (8+ of 14 collapsed)", ("collapse_score",)),
    Signal("diversity_ratio_tail", lambda f: float(_after_grace(f, "diversity_ratio").median()),
           lambda v: v < DIVERSITY_COLLAPSED, f"< {DIVERSITY_COLLAPSED}",
           "003 / 001 4.1 Mode Collapse: all images nearly identical",
           ("diversity_ratio",)),
)

# Sample-quality warnings (guide 001 4.2-4.3): no label of their own; listed as evidence, they lower a healthy
# diagnosis's confidence and give a healthy run a plan (search_spaces.remedies: "checkerboard", "blurry").
QUALITY_WARNINGS = (
    Signal("checkerboard_ratio_tail", lambda f: float(_after_grace(f, "checkerboard_ratio").median()),
           lambda v: v > CHECKERBOARD, f"> {CHECKERBOARD:g}x the real images' power at the Nyquist frequency",
           "001 4.3 Checkerboard Artifacts: ConvTranspose2d in the generator", ("checkerboard_ratio",)),
    Signal("sharpness_ratio_tail", lambda f: float(_after_grace(f, "sharpness_ratio").median()),
           lambda v: v < BLURRY, f"< {BLURRY:g}x the real images' high-frequency power",
           "001 4.2 Blurry / Low-Frequency Images", ("sharpness_ratio",)),
)
WARNING_REMEDIES = {"checkerboard_ratio_tail": "checkerboard", "sharpness_ratio_tail": "blurry"}

BCE_SIGNALS = (
    WGAN_SIGNALS[0],
    Signal("d_loss_tail_median", lambda f: float(tail(_col(f, "d_loss")).median()), lambda v: v < 0.1, "< 0.1",
           "004 Discriminator Too Strong: D_loss 0.0-0.1"),
    Signal("g_loss_tail_median", lambda f: float(tail(_col(f, "g_loss")).median()), lambda v: v > 20, "> 20",
           "004 Discriminator Too Strong: G_loss 20-100"),
    Signal("d_real_minus_d_fake", lambda f: float(tail(_col(f, "d_real") - _col(f, "d_fake")).median()),
           lambda v: v > 0.9, "> 0.9 (D(real) near 1, D(fake) near 0)", "004 Discriminator Too Strong",
           ("d_real", "d_fake")),
    Signal("d_outputs_outside_healthy", lambda f: float(min(tail(_col(f, "d_real")).median() - D_REAL_HEALTHY,
                                                             D_FAKE_HEALTHY - tail(_col(f, "d_fake")).median())),
           lambda v: v > 0, f"D(real) median > {D_REAL_HEALTHY} and D(fake) median < {D_FAKE_HEALTHY}",
           "004 Monitoring: healthy D(real) 0.7-0.9, D(fake) 0.1-0.3 (its adaptive LR_D slows D past them)",
           ("d_real", "d_fake")),
    Signal("d_loss_high", lambda f: float(tail(_col(f, "d_loss")).median()), lambda v: v > 2.0, "> 2.0",
           "004 Generator Too Strong: D_loss 2.0+"),
    Signal("d_outputs_near_half", lambda f: float(tail((_col(f, "d_real") - 0.5).abs().combine(
        (_col(f, "d_fake") - 0.5).abs(), max)).median()), lambda v: v < 0.1, "< 0.1 from 0.5",
           "004 Generator Too Strong: D(real), D(fake) 0.4-0.6", ("d_real", "d_fake")),
    Signal("d_loss_stuck_high", lambda f: float(tail(_col(f, "d_loss")).median()), lambda v: 0.72 <= v <= 0.76,
           "0.72-0.75", "003 Mode Collapse Symptoms: D loss stuck high"),
    Signal("d_acc_stuck_at_half", lambda f: float((tail(_col(f, "d_acc")) - 0.5).abs().max()), lambda v: v < 0.01,
           "within 1 point of 50% on every tail epoch", "003 Mode Collapse Symptoms: D accuracy 50% exactly",
           ("d_acc",)),
    Signal("g_acc_tail_median", lambda f: float(tail(_col(f, "g_acc")).median()), lambda v: v >= 0.99, ">= 99%",
           "003 Mode Collapse Symptoms: G accuracy 99%+", ("g_acc",)),
    Signal("d_loss_oscillation", _swing("d_loss"), lambda v: v > 0.5, "> 0.5",
           "001 1 / 004 Oscillation: quality goes up and down"),
    Signal("g_loss_oscillation", _swing("g_loss"), lambda v: v > 0.5, "> 0.5",
           "001 1 / 004 Oscillation"),
    WGAN_SIGNALS[-2],
    WGAN_SIGNALS[-1],
)
SIGNALS = {"wgan": WGAN_SIGNALS + QUALITY_WARNINGS, "bce": BCE_SIGNALS + QUALITY_WARNINGS}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A label fires when all of `all_of` fire, at least one of `any_of` (if given), and none of `none_of`."""

    label: str
    all_of: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()  # counter-evidence: a signal that rules the label out


# Checked in order; the first that fires is the diagnosis. Divergence first: nothing else means anything then.
RULES = {
    "wgan": (
        Rule("diverged", ("non_finite_or_exploded_loss_epoch",)),
        # the generator is failing: not when its samples are clearly getting better
        Rule("discriminator_dominant", ("g_loss_trend", "g_loss_rise"),
             ("d_loss_tail_median", "w_dist_rise", "collapse_score_share"), ("quality_improving",)),
        Rule("discriminator_dominant", ("g_loss_trend", "w_dist_run_trend"), ("d_loss_tail_median",
                                                                              "collapse_score_share"),
             ("quality_improving",)),
        Rule("generator_dominant", ("d_loss_positive_share", "d_loss_tail_level")),
        Rule("mode_collapse", ("collapse_score_share",)),
        Rule("mode_collapse", ("diversity_ratio_tail",)),
        Rule("unstable", ("d_loss_oscillation", "g_loss_oscillation")),
        Rule("unstable", ("g_loss_swings", "grad_norm_tail_median")),
    ),
    "bce": (
        Rule("diverged", ("non_finite_or_exploded_loss_epoch",)),
        Rule("discriminator_dominant", ("d_loss_tail_median",), ("g_loss_tail_median", "d_real_minus_d_fake")),
        # milder: D wins every comparison, past the healthy ranges, though G's loss stays moderate
        Rule("discriminator_dominant", ("d_outputs_outside_healthy",)),
        Rule("mode_collapse", ("d_loss_stuck_high", "d_acc_stuck_at_half", "g_acc_tail_median")),
        Rule("generator_dominant", ("d_loss_high",), ("d_outputs_near_half",)),
        Rule("mode_collapse", ("collapse_score_share",)),
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


def diagnose(frame: pd.DataFrame, family: str = "wgan") -> Diagnosis:
    """One label for a per-epoch history with at least `epoch`, `d_loss`, `g_loss` columns."""
    frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        return Diagnosis("healthy", family, None, 0.0, (), 0)
    finite = frame[np.isfinite(frame[["d_loss", "g_loss"]].astype(float)).all(axis=1)]
    measured = measure(frame, family)
    fired = _fired(measured)
    for rule in RULES[family]:
        if set(rule.all_of) <= fired and (not rule.any_of or fired & set(rule.any_of)) \
                and not fired & set(rule.none_of):
            names = [*rule.all_of, *[n for n in rule.any_of if n in fired], *_warnings(fired)]
            evidence = tuple(_evidence(measured[n]) for n in names)
            confidence = _confidence(rule, fired, measured)
            onset = _onset(rule.label, frame if rule.label == "diverged" else finite, measured)
            return Diagnosis(rule.label, family, onset, confidence, evidence, len(frame))
    return _healthy(frame, family, measured, fired)


def epoch_warning(row: Mapping[str, float], family: str) -> str | None:
    """Guide 004's per-epoch monitor: the discriminator-dominant rule judged on this one epoch alone (a run's
    diagnosis waits for a tail of epochs; the warning does not). The evidence in words, else None."""
    if family != "bce":
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


def _confidence(rule: Rule, fired: set[str], measured: Mapping[str, Any]) -> float:
    """Required signals give 0.6; the optional ones that could fire and did add the rest."""
    if rule.label == "diverged":
        return 1.0
    optional = [n for n in rule.any_of if n in measured]
    extra = len([n for n in optional if n in fired]) / len(optional) if optional else 1.0
    return 0.6 + 0.4 * extra


def _healthy(frame: pd.DataFrame, family: str, measured: Mapping[str, tuple[Signal, float]],
             fired: set[str]) -> Diagnosis:
    """Healthy: no rule fired. Confidence falls with each warning signal that fired on its own."""
    required = {n for rule in RULES[family] for n in rule.all_of}  # lone any_of signals (d_loss < 0) are normal
    counter = {n for rule in RULES[family] for n in rule.none_of}  # what ruled a label out: shown, not a warning
    warnings = tuple(_evidence(measured[n]) for n in [*sorted(fired & required), *_warnings(fired)])
    confidence = max(0.3, 1.0 - 0.15 * len(warnings))
    shown = warnings + tuple(_evidence(measured[n]) for n in sorted(fired & counter))
    return Diagnosis("healthy", family, None, confidence, shown, len(frame))


def _onset(label: str, frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """The epoch the failure began: the first bad value, the start of g_loss's climb, or of the level shift."""
    if label == "diverged":
        return int(measured["non_finite_or_exploded_loss_epoch"][1])
    if len(frame) == 0:
        return None
    if label == "discriminator_dominant" and "d_outputs_outside_healthy" in measured:  # BCE: D's outputs say when
        separated = (frame["d_real"].astype(float) > D_REAL_HEALTHY) & (frame["d_fake"].astype(float) < D_FAKE_HEALTHY)
        # one epoch where G catches up (004: "quality goes up and down") does not end the dominance
        separated = _smooth3(separated) >= 0.5
        onset = _first_sustained(frame, separated)
        if onset is not None:
            return onset
    column = {"discriminator_dominant": "g_loss", "generator_dominant": "d_loss"}.get(label)
    if label == "mode_collapse":
        return _collapse_onset(frame)
    if label == "unstable":
        return _unstable_onset(frame, measured)
    if column is None:
        column = "d_loss"
    smooth = frame[column].astype(float).rolling(max(3, len(frame) // 20), min_periods=1, center=True).median()
    if label == "discriminator_dominant":
        return int(frame["epoch"].iloc[int(np.argmin(smooth.to_numpy()))])  # the climb starts at its low point
    if label == "generator_dominant":
        return _first_sustained(frame, smooth > 0)
    return _first_sustained(frame, (smooth - smooth.median()).abs() > smooth.abs().median())


def _unstable_onset(frame: pd.DataFrame, measured: Mapping[str, tuple[Signal, float]]) -> int | None:
    """From when the gradient norm stays high (when that is the evidence), else the losses' jumps stay large."""
    if "grad_norm" in frame and "grad_norm_tail_median" in _fired(measured):
        return _first_sustained(frame, _smooth3(frame["grad_norm"]) > GRAD_NORM_HIGH)
    swings = [_smooth3(frame[c].astype(float).diff().abs()) > SWING * frame[c].astype(float).abs().median()
              for c in ("d_loss", "g_loss")]
    return _first_sustained(frame, swings[0] & swings[1])


def _smooth3(x: pd.Series) -> pd.Series:
    """A centred 3-epoch rolling median: one odd epoch neither starts nor ends a condition."""
    return x.astype(float).rolling(3, center=True, min_periods=1).median()


def _collapse_onset(frame: pd.DataFrame) -> int | None:
    """The first sustained collapsed collapse score, else the first sustained collapsed diversity ratio."""
    tests = (("collapse_score", lambda s: s >= COLLAPSED_SCORE),
             ("diversity_ratio", lambda s: s < DIVERSITY_COLLAPSED))
    for column, bad in tests:
        if column in frame and frame[column].notna().any():
            onset = _first_sustained(frame, bad(frame[column].astype(float)))
            if onset is not None:
                return onset
    return None


def _first_sustained(frame: pd.DataFrame, mask: pd.Series) -> int | None:
    """The first epoch from which the condition holds on at least 80% of the remaining epochs."""
    values = mask.to_numpy(dtype=bool)
    rest = np.cumsum(values[::-1])[::-1] / np.arange(len(values), 0, -1)
    hits = np.flatnonzero(values & (rest >= 0.8))
    return int(frame["epoch"].iloc[hits[0]]) if len(hits) else None
