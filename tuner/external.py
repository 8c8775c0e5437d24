"""The user's own trainer as a Ray Tune trial: their command, their config file, their losses.csv.

The contract (README, "Your own trainer"):
- gantune mirrors the folder holding the user's config into each trial directory (files are copied, folders
  linked; earlier outputs, losses.csv, samples/ and checkpoints/, are left out) and writes the config file there
  with the trial's values, so a `train.py` that reads `config.py` beside it reads the trial's settings;
- it runs the command in the trial directory (split like a shell would, run without one), with
  GANTUNE_TRIAL_DIR and GANTUNE_CONFIG set;
- the trainer appends one row per epoch to `losses.csv` in its working directory (any format `autofix --run`
  reads); gantune reports each new row to Ray Tune with the diagnosis core's label, and kills the process when
  the stopper fires, when the epochs are done, or when the trial ends for any other reason.
- The objective is the log's `quality` column when it has one; otherwise the loss family's proxy (`proxy`),
  which is reported to Ray Tune but never shown to the diagnosis as a sample measurement.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trainables.errors import ConfigError, GantuneError

LOSSES = "losses.csv"
OUTPUTS = frozenset({LOSSES, "samples", "checkpoints", "__pycache__", "runs", "sweeps", "autofix", "mlruns",
                     "mlartifacts", "mlflow.db", "train.log"})
EPOCH_KEYS = ("NUM_EPOCHS", "EPOCHS", "N_EPOCHS")
COPY_LIMIT = 1 << 20  # files up to 1 MiB are copied (scripts, configs); larger ones (data) are linked
CHILD = Path(__file__).with_name("child.py")


class TrainerError(GantuneError):
    """The user's trainer exited with an error before its epochs were done."""


@dataclasses.dataclass(frozen=True)
class ExternalSetup:
    command: tuple[str, ...]
    config_path: Path  # the user's config file; its folder is the project mirrored into each trial
    base: Mapping[str, Any]  # the config the trial's search values apply to (UPPER_CASE keys, as in the file)
    epochs: int
    family: str = "wgan"
    poll_s: float = 0.25
    threads: int = 1

    @property
    def project(self) -> Path:
        return self.config_path.parent


def setup_for(command: str, config_path: Path, config: Mapping[str, Any], epochs: int, family: str,
              threads: int = 1) -> ExternalSetup:
    """Check the command and config once, in the driver: a bad one is one line, not an error per trial."""
    argv = tuple(shlex.split(command))
    if not argv:
        raise ConfigError("--train-cmd is empty")
    program = shutil.which(argv[0])  # resolved here: a Ray worker's PATH need not be the user's shell's
    if program is None and not (config_path.parent / argv[0]).is_file():
        raise ConfigError(f"--train-cmd {command!r}: {argv[0]!r} is not a program on PATH")
    argv = (program, *argv[1:]) if program and os.sep not in argv[0] else argv
    return ExternalSetup(argv, config_path.resolve(), dict(config), epochs, family, threads=threads)


def epochs_key(config: Mapping[str, Any]) -> str | None:
    return next((k for k in EPOCH_KEYS if k in config), None)


def trial_values(setup: ExternalSetup, values: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's whole config: the base with its search values and the epoch budget."""
    config = {**setup.base, **values}
    key = epochs_key(config)
    if key:
        config[key] = setup.epochs
    return config


def config_text(setup: ExternalSetup, config: Mapping[str, Any]) -> str:
    """The user's config file with the values that differ from it rewritten in place."""
    from tuner import user_config

    original = user_config.read(setup.config_path)
    changes = {k: v for k, v in config.items() if original.get(k) != v}
    return user_config.rewrite(setup.config_path, changes)


def proxy(frame: pd.DataFrame, family: str) -> pd.Series:
    """A quality per epoch (higher is better) for a log without gantune's `quality`: WGAN, minus the critic's
    Wasserstein estimate |d_loss| (the WGAN paper, section 4.2: it tracks sample quality); BCE, minus the
    discriminator loss's distance from its equilibrium ln 4 = 2 ln 2 (guide 003: healthy near ln 2 per term)."""
    d_loss = frame["d_loss"].astype(float)
    return -(d_loss.abs() if family == "wgan" else (d_loss - math.log(4)).abs())


def row_proxy(row: Mapping[str, float], family: str) -> float:
    return float(proxy(pd.DataFrame([row]), family).iloc[0])


def run_quality(frame: pd.DataFrame, family: str) -> float:
    """The last measured quality of a finished log: its `quality` column, else the proxy's last value."""
    if "quality" in frame and frame["quality"].notna().any():
        return float(frame["quality"].dropna().iloc[-1])
    values = proxy(frame, family).dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


# ----- the trial ---------------------------------------------------------------------------------------------
def mirror(project: Path, trial_dir: Path, config_name: str) -> None:
    """The project's files in the trial directory: small files copied, the rest linked, outputs left out."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    for entry in project.iterdir():
        target = trial_dir / entry.name
        if entry.name in OUTPUTS or entry.name == config_name or target.exists() or entry.name.startswith("."):
            continue
        if entry.is_file() and entry.stat().st_size <= COPY_LIMIT:
            shutil.copy2(entry, target)
        else:
            target.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())


def external_trial(config: dict[str, Any], setup: ExternalSetup) -> None:
    """Ray Tune function trainable (bind `setup` with tune.with_parameters)."""
    from ray import tune

    from trainables.trainable import Report

    trial_dir = Path(tune.get_context().get_trial_dir())
    mirror(setup.project, trial_dir, setup.config_path.name)
    values = trial_values(setup, config)
    (trial_dir / setup.config_path.name).write_text(config_text(setup, values))
    report = Report()
    with Child(setup, trial_dir) as child:
        for row in child.rows():
            tune.report(report.add(row, setup.family, objective=row_proxy(row, setup.family)))
            if len(report.history) >= setup.epochs:
                break


class Child:
    """The user's process: started in the trial directory, followed through its losses.csv, always killed."""

    def __init__(self, setup: ExternalSetup, trial_dir: Path) -> None:
        self.setup, self.dir = setup, trial_dir
        self.losses = trial_dir / LOSSES
        self.seen = 0
        self.proc: subprocess.Popen | None = None
        self.parsed: tuple[str, pd.DataFrame] = ("", pd.DataFrame())  # the last complete text and its frame

    def __enter__(self) -> Child:
        env = {**os.environ, "GANTUNE_TRIAL_DIR": str(self.dir), "PYTHONUNBUFFERED": "1",
               "GANTUNE_CONFIG": str(self.dir / self.setup.config_path.name),
               "OMP_NUM_THREADS": str(self.setup.threads)}
        self.log = (self.dir / "train.log").open("w")
        self.proc = subprocess.Popen([sys.executable, str(CHILD), *self.setup.command], cwd=self.dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
        self.log.close()

    def kill(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(wait)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def rows(self):
        """Each new epoch's row, as the trainer writes it; raises TrainerError when it fails early."""
        while True:
            finished = self.proc.poll() is not None
            frame = self._read()
            for row in frame.iloc[self.seen:].to_dict("records"):
                self.seen += 1
                yield {str(k): float(v) for k, v in row.items()}
            if finished:
                break
            time.sleep(self.setup.poll_s)
        if self.proc.returncode != 0 and self.seen < self.setup.epochs:
            raise TrainerError(f"{shlex.join(self.setup.command)} exited with code {self.proc.returncode} "
                               f"after {self.seen} epochs: {self._last_output()}")

    def _read(self) -> pd.DataFrame:
        from tuner.logs import LogError, parse_log

        try:
            text = self.losses.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return pd.DataFrame()
        complete = text[:text.rfind("\n") + 1]  # a row being written is read on the next poll
        if complete == self.parsed[0]:
            return self.parsed[1]  # nothing new since the last poll: no re-parse
        try:
            frame = parse_log(complete, self.losses) if complete.count("\n") > 1 else pd.DataFrame()
            self.parsed = (complete, frame)
            return frame
        except LogError as err:
            self.kill()
            raise TrainerError(f"the trainer's {LOSSES} cannot be read: {err}") from None

    def _last_output(self) -> str:
        self.log.flush()
        lines = [ln for ln in (self.dir / "train.log").read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1][:300] if lines else "no output"
