"""Ground-truth labels from a run's sample trace (and its log's losses), never from its config.

Rules, in order: diverged (non-finite or |loss| > 1e4, or non-finite samples); healthy (good tail samples, not
oscillating); unstable (fixed-noise samples jump between epochs); discriminator_dominant (poor, stable samples that
the critic separates); mode_collapse (collapsed samples the critic does not separate); generator_dominant (poor, not
collapsed, the critic failing). A dominance whose samples are still clearly improving over the last quarter is a
slow run, not a doomed one: `healthy`, not clear. A run is `clear` when moving every threshold by its slack either
way keeps its label.
"""

from __future__ import annotations

import math
import statistics

# threshold: (value, slack)
TH = {
    "shift": (0.3, 0.05),  # median per-epoch movement of the fixed-noise samples / data scale
    "auc_dd": (0.9, 0.03),
    "auc_mc": (0.75, 0.05),
    "auc_gd": (0.6, 0.05),
    "gap_gd": (0.0, 0.05),
    "gap_sep": (0.25, 0.05),  # the critic separates only with AUC >= auc_dd and a mean score gap >= this
    "collapse": (0.25, 0.05),  # diversity (mean pairwise distance of fakes / of reals)
    "modes": (0.875, 0.1),  # share of 2-D modes captured
    "hq": (0.2, 0.05),  # share of 2-D samples within 3 std of a mode
    "img_div": (0.5, 0.08),
    "classes": (5, 1),
    "near": (0.6, 0.08),  # nearest-real distance / its value before training
}


def th(name: str, s: int) -> float:
    value, slack = TH[name]
    return value + s * slack


def good(row: dict, s: int, near0: float) -> bool:
    if "modes" in row:
        return row["modes"] >= th("modes", s) * row["n_modes"] - 1e-9 and row["hq"] >= th("hq", s)
    near_ok = row["near_real"] <= th("near", s) * near0
    return row["diversity"] >= th("img_div", s) and row["classes"] >= th("classes", s) and near_ok


def collapsed(row: dict, s: int) -> bool:
    return row["diversity"] < th("collapse", s) or ("modes" in row and row["modes"] <= 1 and row["hq"] > 0.1)


def separates(row: dict, s: int) -> bool:
    return row["auc"] >= th("auc_dd", s) and row["gap"] >= th("gap_sep", s)


def verdict(row: dict, s: int, near0: float) -> tuple[str, bool]:
    """(label, matched a rule) for one row of (tail-median) statistics."""
    if row["shift"] > th("shift", s):  # a collapsed generator hopping between points is also mode collapse: unclear
        return "unstable", not (collapsed(row, s) and not separates(row, s))
    if good(row, s, near0):
        return "healthy", True
    if separates(row, s):
        return "discriminator_dominant", True
    if collapsed(row, s):
        return "mode_collapse", row["auc"] < th("auc_mc", s) or row["gap"] < th("gap_sep", s)
    if row["auc"] <= th("auc_gd", s) and row["gap"] <= th("gap_gd", s):
        return "generator_dominant", True
    return ("discriminator_dominant" if row["auc"] >= th("auc_mc", 0) else "generator_dominant"), False


FAILING = {
    "unstable": lambda row, near0: row["shift"] > th("shift", 0),
    "discriminator_dominant": lambda row, near0: not good(row, 0, near0) and separates(row, 0),
    "mode_collapse": lambda row, near0: collapsed(row, 0) and not separates(row, 0),
    "generator_dominant": lambda row, near0: not good(row, 0, near0) and row["auc"] <= th("auc_gd", 0),
}


def diverged_at(logs: list[dict], trace: list[dict]) -> tuple[int | None, bool]:
    """(first epoch index with a non-finite or huge loss or non-finite samples, or else with samples spread over
    > 100x the data's scale; whether it was the latter, an extension of the rule that leaves the label unclear)."""
    for i, (log, row) in enumerate(zip(logs, trace[1:])):
        losses = [log[k] for k in ("d_loss", "g_loss")]
        if not row["finite"] or any(not math.isfinite(v) or abs(v) > 1e4 for v in losses):
            return i, False
    runaway = [i for i, row in enumerate(trace[1:]) if row.get("diversity", 0.0) > 100]
    return (runaway[0], True) if runaway else (None, False)


def tail_medians(rows: list[dict]) -> dict:
    tail = rows[-max(3, len(rows) // 4) :]
    return {key: statistics.median(r[key] for r in tail) for key in tail[0] if key != "epoch"}


def onset(label: str, rows: list[dict], near0: float) -> int:
    """First epoch from which the failure holds on >= 80% of the remaining epochs (else the tail's start)."""
    holds = [FAILING[label](row, near0) for row in rows]
    for i, ok in enumerate(holds):
        if ok and sum(holds[i:]) >= 0.8 * (len(holds) - i):
            return i
    return len(rows) - max(3, len(rows) // 4)


def why(label: str, med: dict) -> str:
    if "modes" in med:
        quality = f"{med['modes']:.0f}/{med['n_modes']:.0f} modes, {med['hq']:.0%} of samples near a mode"
    else:
        quality = f"{med['classes']:.0f} digit classes, nearest-real distance {med['near_real']:.2f} of data scale"
    return (
        f"{label}: over the last quarter (medians) {quality}, diversity {med['diversity']:.2f} of real, "
        f"fixed-noise shift {med['shift']:.2f} of data scale per epoch, "
        f"critic AUC {med['auc']:.2f} (gap {med['gap']:.2f})."
    )


def label_run(logs: list[dict], trace: list[dict]) -> dict:
    """{"label", "onset" (epoch index from 0, or None), "clear", "why", "tail"} for one run."""
    bad, runaway = diverged_at(logs, trace)
    if bad is not None:
        what = "samples spread over > 100x the data scale" if runaway else "a non-finite or huge loss or samples"
        return {"label": "diverged", "onset": bad, "clear": not runaway, "why": f"diverged: {what} from epoch {bad}."}
    near0 = trace[0].get("near_real", 1.0)
    rows = trace[1:]
    med = tail_medians(rows)
    verdicts = [verdict(med, s, near0) for s in (-1, 0, 1)]
    label, matched = verdicts[1]
    clear = matched and all(v[0] == label for v in verdicts)
    if label in STALLED and improving(rows):  # poor samples still getting better: slow, not doomed
        return {"label": "healthy", "onset": None, "clear": False, "tail": med,
                "why": "healthy (still improving, not yet good): " + why(label, med).split(": ", 1)[1]}
    start = None if label == "healthy" else onset(label, rows, near0)
    return {"label": label, "onset": start, "clear": clear, "why": why(label, med), "tail": med}


STALLED = ("discriminator_dominant", "generator_dominant")  # failures that mean the samples stopped improving


def improving(rows: list[dict]) -> bool:
    """Whether the samples got clearly better from the third quarter of the run to its last quarter while the
    critic's lead shrank by a tenth: 2-D, more of them near a mode (+0.02 and +30%) or an eighth more modes found;
    images, two of +0.05 diversity, another class, the nearest-real distance down by 0.03."""
    n = len(rows)
    mid = tail_medians(rows[: n - max(3, n // 4)])
    end = tail_medians(rows)
    if end["gap"] > 0.9 * mid["gap"]:  # the critic's lead is not shrinking: G is not catching up
        return False
    if "modes" in end:
        more_modes = end["modes"] >= mid["modes"] + max(1, end["n_modes"] // 8)
        return (end["hq"] >= mid["hq"] + 0.02 and end["hq"] >= 1.3 * mid["hq"]) or more_modes
    better = [end["diversity"] >= mid["diversity"] + 0.05, end["classes"] >= mid["classes"] + 1,
              end["near_real"] <= mid["near_real"] - 0.03]
    return sum(better) >= 2
