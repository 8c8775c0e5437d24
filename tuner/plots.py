"""PNG plots of loss histories (matplotlib, which MLflow already installs; the Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuner.core.diagnosis import Diagnosis


def plot_losses(frame: pd.DataFrame, diagnosis: Diagnosis, path: Path) -> None:
    """d_loss and g_loss against the epoch, with the onset marked and the label in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for column in ("d_loss", "g_loss"):
        ax.plot(frame["epoch"], frame[column], label=column, linewidth=1)
    if diagnosis.onset_epoch is not None:
        ax.axvline(diagnosis.onset_epoch, color="red", linestyle="--", label=f"onset (epoch {diagnosis.onset_epoch})")
    ax.set_xlabel("epoch")
    ax.set_title(f"{diagnosis.label} ({diagnosis.family}, confidence {diagnosis.confidence:.2f})")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
