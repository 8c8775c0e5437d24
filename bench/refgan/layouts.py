"""Log layouts, varied the way users' trainers write them: column names, separators, comments, epoch base."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    name: str
    columns: tuple[tuple[str, str], ...]  # (header written, key of the log row)
    sep: str = ","
    ext: str = "csv"
    base: int = 0  # number written for the first epoch
    comments: tuple[str, ...] = ()
    percent: bool = False  # accuracies written as percents
    families: tuple[str, ...] = ("wgan", "bce")


LOSSES = (("d_loss", "d_loss"), ("g_loss", "g_loss"))
LAYOUTS = (
    Layout("plain", (("epoch", "epoch"), *LOSSES)),
    Layout("caps", (("Epoch", "epoch"), ("D_loss", "d_loss"), ("G_loss", "g_loss")), base=1),
    Layout(
        "dcgan",
        (("epoch", "epoch"), ("loss_D", "d_loss"), ("loss_G", "g_loss"), ("D_x", "d_real"), ("D_G_z", "d_fake")),
    ),
    Layout("iter", (("iter", "epoch"), ("lossD", "d_loss"), ("lossG", "g_loss")), sep=";", ext="txt", base=1),
    Layout("tab", (("epoch", "epoch"), ("disc_loss", "d_loss"), ("gen_loss", "g_loss")), sep="\t", ext="tsv"),
    Layout(
        "probs",
        (("epoch", "epoch"), *LOSSES, ("d_real", "d_real"), ("d_fake", "d_fake")),
        base=1,
        comments=("# reference GAN trainer log",),
    ),
    Layout(
        "wgan_gp",
        (("epoch", "epoch"), *LOSSES, ("gp", "gp"), ("w_dist", "w_dist")),
        comments=("# WGAN-GP run",),
        families=("wgan",),
    ),
    Layout(
        "wass_tab",
        (("epoch", "epoch"), *LOSSES, ("wasserstein", "w_dist"), ("gp", "gp")),
        sep="\t",
        ext="tsv",
        base=1,
        comments=("# critic/generator losses per epoch", "# wasserstein = E[D(real)] - E[D(fake)]"),
        families=("wgan",),
    ),
    Layout("acc_frac", (("epoch", "epoch"), *LOSSES, ("d_acc", "d_acc"), ("g_acc", "g_acc")), families=("bce",)),
    Layout(
        "acc_pct",
        (("Epoch", "epoch"), ("D_loss", "d_loss"), ("G_loss", "g_loss"), ("d_acc", "d_acc"), ("g_acc", "g_acc")),
        sep=";",
        ext="txt",
        base=1,
        percent=True,
        comments=("# accuracies in percent",),
        families=("bce",),
    ),
)
BY_NAME = {layout.name: layout for layout in LAYOUTS}


def cell(layout: Layout, key: str, value: float) -> str:
    if key == "epoch":
        return str(int(value) + layout.base)
    if layout.percent and key.endswith("_acc"):
        value = 100 * value
    return repr(float(value)) if not math.isfinite(value) else f"{value:.6g}"


def write_log(path: Path, layout: Layout, rows: list[dict]) -> None:
    lines = list(layout.comments) + [layout.sep.join(header for header, _ in layout.columns)]
    for row in rows:
        lines.append(layout.sep.join(cell(layout, key, row[key]) for _, key in layout.columns))
    path.write_text("\n".join(lines) + "\n")


def read_log(path: Path, layout: Layout) -> list[dict]:
    """The rows `write_log` wrote, keyed and numbered as the trainer produced them."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    rows = []
    for line in lines[1:]:
        row = {key: float(value) for (_, key), value in zip(layout.columns, line.split(layout.sep))}
        row["epoch"] = int(row["epoch"]) - layout.base
        rows.append(row)
    return rows
