"""The Ray Tune trainable: one trial is one Trainer on the sweep's base config plus the trial's search values.

Every epoch it reports the trainer's metrics, the diagnosis core's label for the history so far (with its
onset, confidence, evidence and how many epochs in a row it has held), and `quality` carried forward from the
last epoch it was measured, so ASHA and Optuna always see the objective. It writes the seed run layout
(config.json, losses.csv, samples/) into the trial's folder under the sweep's as it goes, and a Tune checkpoint
every CHECKPOINT_EVERY epochs and at the end, from which a killed trial or an interrupted sweep continues
bit-for-bit.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from search_spaces.spaces import resolve
from trainables.config import GanConfig, write_config
from trainables.device import resolve_device
from trainables.run import LossLog, RunPaths, load_checkpoint, make_trainer, run_epochs
from trainables.trainer import Trainer
from tuner.epoch_report import Report

STATE_FILE = "trial.pt"


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    base: Mapping[str, Any]  # the sweep's resolved base config (field names)
    threads: int = 1  # torch intra-op threads: the trial's CPU share
    init_checkpoint: str | None = None  # a gantune checkpoint every trial starts from (with the trial's settings)
    folder: Path | None = None  # the sweep's folder (Ray's storage_path/name); None: Ray's own trial directory


def trial_config(setup: TrialSetup, values: Mapping[str, Any]) -> GanConfig:
    return GanConfig(**resolve(setup.base, values))


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable (bind `setup` with tune.with_parameters)."""
    from ray import tune

    torch.set_num_threads(max(1, setup.threads))
    cfg = trial_config(setup, config)
    trainer = make_trainer(cfg, resolve_device("auto"))
    paths = RunPaths(trial_folder(setup.folder))
    paths.root.mkdir(parents=True, exist_ok=True)
    checkpoint = tune.get_checkpoint()
    report = Report(_restore(trainer, checkpoint))
    if checkpoint is None and setup.init_checkpoint:  # autofix: resume the broken run before its collapse
        trainer.load_state_dict(load_checkpoint(setup.init_checkpoint))
    write_config(trainer.cfg, paths.config)
    # a restored trial may run in a new working directory: its losses.csv is rewritten from the checkpoint's history
    log = LossLog(paths.losses, keep_epochs=0, columns=trainer.columns)
    for row in report.history:
        log.append(row)
    for done in run_epochs(trainer, paths, log):
        metrics = {**report.add(done.row, trainer.family, model=cfg.model),
                   "sample_png": str(done.sample.resolve()) if done.sample else ""}
        if done.checkpoint_due:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({"trainer": trainer.state_dict(), "report": report.state()}, Path(tmp) / STATE_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(metrics)


def trial_folder(folder: Path | None) -> Path:
    """The trial's folder under the sweep's, beside the checkpoints Ray keeps there. Not Ray's working directory
    (its temporary artifacts/.../working_dirs/), which Ray copies to storage only with sync_artifacts, and then
    only when a checkpoint is reported: a trial stopped by ASHA or an error would leave its files behind."""
    from ray import tune

    here = Path(tune.get_context().get_trial_dir())
    return folder / here.name if folder else here


def _restore(trainer: Trainer, checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
    trainer.load_state_dict(state["trainer"])
    return state["report"]
