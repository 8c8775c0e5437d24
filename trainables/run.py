"""A training run on disk: the seed project's layout plus gantune's metrics.

DIR/config.json, DIR/losses.csv (`epoch,d_loss,g_loss,...`), DIR/samples/epoch_XXXX.png and
DIR/checkpoints/checkpoint_epoch_XXXX.pt. Epochs are 0-based; a checkpoint is named for the epoch it ends.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from trainables.config import ARCHITECTURE_KEYS, GanConfig, overrides_from, write_config
from trainables.data import load_dataset
from trainables.device import placement
from trainables.errors import CheckpointError, ConfigError
from trainables.images import grid_array, save_png, scatter_array
from trainables.quality import check_size, copies_training
from trainables.registry import get_model
from trainables.trainer import Trainer
from trainables.vocabulary import COLUMNS

EpochCallback = Callable[[dict[str, float]], None]


@dataclasses.dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def losses(self) -> Path:
        return self.root / "losses.csv"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def sample(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch_{epoch:04d}.png"

    def checkpoint(self, epoch: int) -> Path:
        return self.root / "checkpoints" / f"checkpoint_epoch_{epoch:04d}.pt"


def latest_checkpoint(root: Path) -> Path:
    """The checkpoint of the highest epoch in a run directory."""
    found = sorted((root / "checkpoints").glob("checkpoint_epoch_*.pt"))
    if not found:
        raise CheckpointError(f"no checkpoints in {root / 'checkpoints'}; is {root} a gantune run directory?")
    return found[-1]


def load_run(root: Path, checkpoint: Path | None = None, device: torch.device | None = None
             ) -> tuple[Trainer, Path]:
    """A trainer holding a run's latest (or the named) checkpoint's weights, on the data it trained on."""
    if not root.is_dir():
        raise CheckpointError(f"run directory not found: {root}")
    path = checkpoint if checkpoint is not None else latest_checkpoint(root)
    state = load_checkpoint(path)
    cfg = GanConfig(**overrides_from(state["config"]))
    device = device or torch.device("cpu")
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    trainer = get_model(cfg.model).make_trainer(cfg, data, placement(cfg, device, data.kind == "image"))
    trainer.load_weights(state)
    return trainer, path


def evaluate(root: Path, checkpoint: Path | None = None, n_samples: int | None = None,
             device: torch.device | None = None) -> dict[str, Any]:
    """Quality metrics of a run's latest (or the named) checkpoint against the data it trained on."""
    trainer, path = load_run(root, checkpoint, device)
    cfg = trainer.cfg
    metrics = trainer.quality(n_samples)
    ref = trainer.quality_reference
    out: dict[str, Any] = {"run": str(root), "checkpoint": str(path), "model": cfg.model, "data": cfg.data,
                           "epochs_trained": trainer.epoch,
                           "samples": n_samples or cfg.quality_samples or ref.default_samples, **metrics}
    if ref.classifier is not None:
        out.update(num_modes=ref.num_modes, classifier_accuracy=ref.classifier.accuracy)
    if ref.kind == "points":
        out["num_modes"] = ref.num_modes
    else:
        out["copies_training"] = copies_training(metrics, ref)
    return out


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with weights_only=True (no code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}); is it a gantune "
                              f"checkpoint?") from None
    if not isinstance(state, dict) or "config" not in state or "epoch" not in state:
        raise CheckpointError(f"checkpoint {path} is not a gantune checkpoint (no config or epoch)")
    return state


def resumed_config(state: dict, overrides: dict) -> GanConfig:
    """The checkpoint's config with the user's overrides; architecture keys cannot change."""
    saved = overrides_from(state["config"])
    changed = [k.upper() for k in ARCHITECTURE_KEYS if k in overrides and overrides[k] != saved[k]]
    if changed:
        raise ConfigError(f"cannot change {', '.join(changed)} when resuming: they change the networks")
    return GanConfig(**{**saved, **overrides})


def make_trainer(cfg: GanConfig, device: torch.device) -> Trainer:
    """A fresh trainer on the config's dataset, checking the data before anything trains or is written: the
    kind the model trains on and enough samples here, the classes and image side in the model's `prepare`."""
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    kind = get_model(cfg.model).data_kind
    if data.kind != kind:
        raise ConfigError(f"model {cfg.model} trains on {kind} data, but dataset {cfg.data!r} holds {data.kind}")
    check_size(data)
    return get_model(cfg.model).make_trainer(cfg, data, placement(cfg, device, data.kind == "image"))


def train(cfg: GanConfig, out_dir: Path, device: torch.device, resume: dict | None = None,
          on_epoch: EpochCallback | None = None) -> Trainer:
    """Train until cfg.num_epochs, writing the run directory; returns the trainer at the end."""
    return train_from(make_trainer(cfg, device), out_dir, resume, on_epoch)


def train_from(trainer: Trainer, out_dir: Path, resume: dict | None = None,
               on_epoch: EpochCallback | None = None) -> Trainer:
    """`train` with the trainer made (and so its data checked) by the caller; the run directory is made here."""
    paths = RunPaths(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume is not None:
        trainer.load_state_dict(resume)
    write_config(trainer.cfg, paths.config)
    log = LossLog(paths.losses, keep_epochs=trainer.epoch, columns=trainer.columns)
    for done in run_epochs(trainer, paths, log):
        if done.checkpoint_due:
            save_checkpoint(trainer, paths.checkpoint(done.epoch))
        if on_epoch is not None:
            on_epoch(done.row)
    return trainer


@dataclasses.dataclass(frozen=True)
class EpochDone:
    row: dict[str, float]  # the epoch's losses.csv row
    sample: Path | None  # the grid saved this epoch, if one was due
    checkpoint_due: bool  # every CHECKPOINT_EVERY epochs and at the last

    @property
    def epoch(self) -> int:
        return int(self.row["epoch"])


def run_epochs(trainer: Trainer, paths: RunPaths, log: LossLog) -> Iterator[EpochDone]:
    """The epoch loop every run shares (`gantune train`, a sweep's trial): train an epoch, append its row, save its
    grid when due. The caller saves the checkpoint when due, as a file or as a Ray Tune checkpoint."""
    cfg = trainer.cfg
    while trainer.epoch < cfg.num_epochs:
        row = trainer.train_epoch()
        log.append(row)
        epoch = int(row["epoch"])
        due = epoch == cfg.num_epochs - 1 or (epoch + 1) % cfg.checkpoint_every == 0
        yield EpochDone(row, save_samples(trainer, paths, epoch), due)


def save_samples(trainer: Trainer, paths: RunPaths, epoch: int) -> Path | None:
    """The epoch's sample grid (a scatter plot for points) when one is due; its path, else None."""
    cfg = trainer.cfg
    if epoch != cfg.num_epochs - 1 and (epoch + 1) % cfg.sample_every != 0:
        return None
    samples = trainer.samples()
    picture = grid_array(samples[:64]) if trainer.images else scatter_array(samples, trainer.data)
    save_png(picture, paths.sample(epoch))
    for name, extra in trainer.extra_samples().items():  # more generators' grids (the integrated system's NCA)
        save_png(grid_array(extra[:64]), paths.sample(epoch).with_name(f"{name}_epoch_{epoch:04d}.png"))
    return paths.sample(epoch)


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(trainer.state_dict(), tmp)
    tmp.replace(path)


class LossLog:
    """losses.csv, one row per epoch, flushed as it goes. On resume, rows past the checkpoint are dropped
    (kept in losses.csv.bak) so no epoch appears twice."""

    def __init__(self, path: Path, keep_epochs: int, columns: tuple[str, ...] = COLUMNS) -> None:
        self.path, self.columns = path, columns
        if keep_epochs == 0 or not path.exists():
            path.write_text(",".join(columns) + "\n")
        else:
            self._truncate(keep_epochs)

    def _truncate(self, keep_epochs: int) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if _epoch_of(r) < keep_epochs]
        if len(kept) < len(rows):
            self.path.with_suffix(".csv.bak").write_text(self.path.read_text())
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)

    def append(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(
                {k: _fmt(k, row.get(k, float("nan"))) for k in self.columns})


def _epoch_of(row: dict[str, str]) -> float:
    try:
        return float(row.get("epoch", "inf"))
    except ValueError:
        return math.inf


def _fmt(key: str, value: float) -> str:
    if key == "epoch" or key == "collapse_score":
        return str(int(value)) if math.isfinite(value) else "nan"
    return f"{value:.6g}"
