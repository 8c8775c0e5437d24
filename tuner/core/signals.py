"""The diagnosis core's signals: window statistics over a loss history, and the named measurements rules are made of.

Every signal is relative to the run itself: a loss's tail against its own peak or its own early range, never
against a fixed number of the loss's units, since a user's data and networks set the scale (a 2-D critic's margin
is 0.2, a 64x64 image critic's 100). The exceptions are the BCE probabilities and losses, whose units are fixed
(chance is ln 2 per term), and the sample statistics gantune's own trainer writes.

Signals read the tail of the run (its last quarter, at least TAIL_MIN epochs), so one noisy epoch never decides;
sample-statistic signals skip the first GRACE epochs, where an untrained generator looks collapsed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

TAIL_MIN = 5
GRACE = 5  # epochs before sample statistics count
EXPLODED = 1e4  # |loss| beyond this is divergence (001, 4.4: "goes to +-infinity")
COLLAPSED_SCORE = 8  # guide 002's collapse score (0-14) at or above which a run is collapsed
DIVERSITY_COLLAPSED = 0.1  # fakes closer to each other than a tenth of real data's spread (003 / 001 4.1)
DIVERSITY_LOW = 0.5  # fakes closer to each other than half of real data's spread: the collapse score's
# diversity warning (trainables.metrics.COLLAPSE_CHECKS); a collapse only with a discriminator that rejects them
QUALITY_GAIN = 0.03  # quality is -log10(1 + KID) / 10 early on: +0.03 is KID halved
D_REAL_HEALTHY, D_FAKE_HEALTHY = 0.9, 0.1  # guide 004's healthy D(real) 0.7-0.9 and D(fake) 0.1-0.3, outer edges
CHECKERBOARD = 4.0  # Nyquist-frequency power this many times the data's: a transposed conv's grid (001 4.3)
BLURRY = 0.5  # high-frequency power below half the data's: soft images without edges (001 4.2)
GRAD_NORM_HIGH = 2.0  # the critic's gradient norm far above the penalty's target of 1 (001 2.1)
SWING = 0.5  # a loss's epoch-to-epoch jump over its size, with the penalty's cause in evidence
MARGIN_HELD = 0.5  # the critic's margin at the end still holds this share of its peak: it never came down
MARGIN_FALLING = -0.05  # ...and is not falling by more than this share of its peak across the tail
CHANCE = (math.log(2), math.log(4))  # a BCE D at chance: ln 2 per term (Keras means) or ln 4 (PyTorch sums)
PINNED = 0.01  # within 1% of chance on every tail epoch: D has no edge (003: "D accuracy 50% exactly")
LONG, ROWS = 200, 100  # a log longer than LONG rows is per-iteration: judged as ROWS rows of consecutive means


# ----- window statistics (pure, NaN-tolerant) -------------------------------------------------------------------
def tail(x: pd.Series) -> pd.Series:
    return x.iloc[-max(TAIL_MIN, len(x) // 4):]


def smooth3(x: pd.Series) -> pd.Series:
    """A centred 3-epoch rolling median: one odd epoch neither starts nor ends a condition."""
    return x.astype(float).rolling(3, center=True, min_periods=1).median()


def smooth(x: pd.Series) -> pd.Series:
    """A centred rolling median over 3 rows, or a twentieth of the log where it is longer (a log of thousands of
    per-batch rows): the run's shape without its batch-to-batch noise."""
    window = max(3, len(x) // 20) | 1
    return x.astype(float).rolling(window, center=True, min_periods=1).median()


def trend(x: pd.Series) -> float:
    """Spearman rank correlation of the values with time: +1 steadily rising, -1 steadily falling."""
    x = x.dropna()
    if len(x) < 3 or x.nunique() < 2:
        return 0.0
    return float(np.corrcoef(x.rank().to_numpy(), np.arange(len(x)))[0, 1])


def line_change(x: pd.Series) -> float:
    """The change across the window of a straight-line fit, in the window's own units."""
    x = x.dropna()
    if len(x) < 3:
        return 0.0
    return float(np.polyfit(np.arange(len(x)), x.to_numpy(dtype=float), 1)[0] * (len(x) - 1))


def rise(x: pd.Series) -> float:
    """Change across the window of a straight-line fit, relative to the window's median magnitude."""
    x = x.dropna()
    return line_change(x) / (abs(x.median()) + 1e-8) if len(x) >= 3 else 0.0


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


def condensed(frame: pd.DataFrame) -> pd.DataFrame:
    """A per-iteration log (over LONG rows) as ROWS rows, each the mean of consecutive iterations and numbered by its
    first: one batch's noise is not a swing, while every rule reads the run's shape as it reads an epoch log's. A
    row whose last iteration is NaN or infinite keeps that value (a blow-up stays one); shorter logs pass as they
    are."""
    if len(frame) <= LONG:
        return frame
    bins = np.arange(len(frame)) * ROWS // len(frame)
    grouped = frame.groupby(bins, sort=True)
    return group_means(grouped).assign(epoch=grouped["epoch"].first()).reset_index(drop=True)


def group_means(grouped: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
    """Each group's mean, except where its last row is NaN or infinite, which it keeps: a blow-up stays one."""
    means = grouped.mean()
    last = grouped.nth(-1)  # in the rows' order, which need not be the groups' order: aligned by group number
    last = last.set_axis(means.index[grouped.ngroup().loc[last.index].to_numpy()])[means.columns]
    return means.where(np.isfinite(last), last)


# ----- the columns signals read ---------------------------------------------------------------------------------
def col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name].astype(float)


def finite(frame: pd.DataFrame, name: str) -> pd.Series:
    x = col(frame, name)
    return x[np.isfinite(x)]


def after_grace(frame: pd.DataFrame, name: str) -> pd.Series:
    x = col(frame, name)
    return tail(x.iloc[GRACE:]) if len(x) > GRACE + TAIL_MIN else x.iloc[0:0]


def margin(frame: pd.DataFrame) -> pd.Series:
    """The critic's margin between real and fake, smoothed (`smooth`): its Wasserstein estimate where the log has
    one, else -d_loss (the estimate less the penalty)."""
    if "w_dist" in frame and frame["w_dist"].notna().any():
        return smooth(finite(frame, "w_dist")).reset_index(drop=True)
    return smooth(-finite(frame, "d_loss")).reset_index(drop=True)


# ----- WGAN measurements, each relative to the run's own scale ---------------------------------------------------
def peak(w: pd.Series) -> float:
    """The largest margin after the first epoch; NaN for a run too short to judge (under 2 x TAIL_MIN epochs)."""
    return float(w.iloc[1:].max()) if len(w) >= 2 * TAIL_MIN else math.nan


def margin_held(frame: pd.DataFrame) -> float:
    """The margin over the last tenth of the run over its peak (after the first epoch): near 1 when the critic's lead
    never came down (guide 000: "d_loss stabilises near -100 and g_loss climbs"), well below 1 in a healthy run,
    where the generator catches up and the estimate falls from its early peak. NaN while the critic has no lead."""
    w = margin(frame)
    top = peak(w)
    return float(w.iloc[-max(3, len(w) // 10):].median() / top) if top > 0 else math.nan


def margin_slope(frame: pd.DataFrame) -> float:
    """The margin's straight-line change across the tail over the run's peak margin: < 0 when it is coming down."""
    w = margin(frame)
    top = peak(w)
    return line_change(tail(w)) / top if top > 0 else math.nan


def positive_level(frame: pd.DataFrame) -> float:
    """The tail's median d_loss over the run's largest |d_loss|: a critic that is losing (d_loss positive) by a
    margin comparable to anything it ever showed, not a converged critic hovering a hair above 0."""
    d = smooth(finite(frame, "d_loss"))
    top = d.abs().max() if len(d) else math.nan
    return float(tail(d).median() / top) if top and top > 0 else math.nan


def swing_over_margin(frame: pd.DataFrame, name: str) -> float:
    """A loss's median epoch-to-epoch jump in the tail over the critic's peak margin: g_loss carries the critic's
    free offset, so its own size says nothing, but jumps larger than anything the critic ever measured between
    real and fake are the networks chasing each other (001 1: both losses oscillate wildly)."""
    w = margin(frame)
    peak = w.abs().max() if len(w) else math.nan
    x = tail(finite(frame, name))
    if len(x) < TAIL_MIN or not peak > 0:
        return math.nan
    return float(x.diff().abs().median() / peak)


def first_bad(frame: pd.DataFrame) -> float:
    losses = frame[["d_loss", "g_loss"]].astype(float)
    bad = ~np.isfinite(losses).all(axis=1) | (losses.abs() > EXPLODED).any(axis=1)
    return float(frame.loc[bad, "epoch"].iloc[0]) if bad.any() else math.nan


def quality_gain(frame: pd.DataFrame) -> float:
    """How much the measured quality (higher is better) rose over the later half of its measurements."""
    q = col(frame, "quality").dropna()
    if len(q) < 2:
        return math.nan
    recent = q.iloc[(len(q) - 1) // 2:]
    return float(recent.iloc[-1] - recent.iloc[0])


# ----- BCE measurements (probabilities and losses in fixed units) -------------------------------------------------
def units(frame: pd.DataFrame) -> float:
    """How many per-step losses one logged value adds up: 1 for a log of means; the steps per epoch for a trainer
    that logs the epoch's running sum (`running_loss += loss.item()`). Read off the first epoch, where neither
    network has moved far from chance: the smaller of d_loss over ln 4 and g_loss over ln 2, when well above 1."""
    d, g = finite(frame, "d_loss"), finite(frame, "g_loss")
    if not len(d) or not len(g):
        return 1.0
    k = min(d.iloc[0] / CHANCE[1], g.iloc[0] / CHANCE[0])
    return float(k) if k > 2 else 1.0


def chance(frame: pd.DataFrame) -> float:
    """The d_loss of a discriminator at chance in this log: ln 4 per step when its first epoch sits nearer ln 4
    (PyTorch adds the real and fake terms), else ln 2 (Keras averages them); times the log's units."""
    k, d = units(frame), finite(frame, "d_loss")
    first = d.iloc[0] / k if len(d) else math.nan
    return k * (CHANCE[1] if abs(first - CHANCE[1]) < abs(first - CHANCE[0]) else CHANCE[0])


def off_chance(frame: pd.DataFrame) -> float:
    """The largest relative distance of d_loss from chance over the tail: ~0 when the discriminator has no edge on
    any epoch."""
    x = tail(finite(frame, "d_loss"))
    return float((x / chance(frame) - 1).abs().max()) if len(x) >= TAIL_MIN else math.nan


def d_loss_over_chance(frame: pd.DataFrame) -> float:
    return float(tail(finite(frame, "d_loss")).median() / chance(frame))


def g_loss_over_chance(frame: pd.DataFrame) -> float:
    """g_loss over its value at chance (ln 2 per step): > 1 when D sees through the fakes, < 1 when they fool it."""
    return float(tail(finite(frame, "g_loss")).median() / (units(frame) * CHANCE[0]))


def swing(name: str) -> Callable[[pd.DataFrame], float]:
    """The oscillation of a loss's tail, against the whole run's magnitude."""
    return lambda f: oscillation(tail(col(f, name)), col(f, name))


@dataclasses.dataclass(frozen=True)
class Signal:
    name: str
    value: Callable[[pd.DataFrame], float]
    fires: Callable[[float], bool]
    threshold: str
    source: str
    needs: tuple[str, ...] = ("d_loss", "g_loss")  # columns the signal reads
