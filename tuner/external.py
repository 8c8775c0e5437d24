"""The user's own trainer as a Ray Tune trial: their command, their config file, their losses.csv.

The contract (README, "Your own trainer"):
- gantune mirrors the user's project (tuner/project.py: the git root, else --project, else the config's folder)
  into each trial directory and writes the config file there with the trial's values, so a `train.py` that
  reads `config.py` beside it reads the trial's settings;
- it runs the command in the config's folder inside that mirror (split like a shell would, run without one),
  with GANTUNE_TRIAL_DIR and GANTUNE_CONFIG set;
- the trainer appends one row per epoch to its log (the layout's `log`: any format `autofix --run` reads);
  gantune reports each new row to Ray Tune with the diagnosis core's label, and kills the process when the
  stopper fires, when the epochs are done, or when the trial ends for any other reason.
- The objective is the log's `quality` column when it has one; otherwise the loss family's proxy (`proxy`),
  which is reported to Ray Tune but never shown to the diagnosis as a sample measurement.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
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
from trainables.vocabulary import WGAN
from tuner.project import Layout, layout_for, mirror

EPOCH_KEYS = ("NUM_EPOCHS", "EPOCHS", "N_EPOCHS")
CHILD = Path(__file__).with_name("child.py")


class TrainerError(GantuneError):
    """The user's trainer exited with an error before its epochs were done."""


class BrokenTrainerError(GantuneError):
    """The user's trainer fails before its first epoch the same way whatever the config: a search cannot help."""


EARLY = re.compile(r"exited with code -?\d+ after 0 epochs: (.*)")


def early_error(text: str) -> str | None:
    """The trainer's last output line when a trial's error text says it failed before its first epoch."""
    found = EARLY.findall(text)
    return found[-1].strip() if found else None


@dataclasses.dataclass(frozen=True)
class ResumeFlag:
    """How the user's trainer continues a run: its flag (`--resume {checkpoint}`) and the config keys it applies
    on resume (the seed loader restores the optimisers' state, and with it their old learning rates)."""

    arg: str
    applies: frozenset[str] = frozenset()

    def unapplied(self, keys: Any) -> list[str]:
        return sorted(k for k in keys if k.upper() not in self.applies)


@dataclasses.dataclass(frozen=True)
class Resume:
    """A trial that continues the user's run from `checkpoint` (saved after `epoch`): the run's log up to that
    epoch starts the trial's log, and the trainer gets its resume flag."""

    checkpoint: Path
    epoch: int
    log: Path  # the user's run's log
    arg: str

    def argv(self) -> tuple[str, ...]:
        return tuple(shlex.split(self.arg.format(checkpoint=self.checkpoint)))

    def seed_log(self, path: Path) -> int:
        """The run's header and rows up to `epoch` written to `path` (the trainer appends); the rows written."""
        from tuner.core.logs import read_run

        rows = int((read_run(self.log).frame["epoch"] <= self.epoch).sum())
        lines = [line for line in self.log.read_text().splitlines(keepends=True) if line.strip()]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines[:1 + rows]))
        return rows


@dataclasses.dataclass(frozen=True)
class ExternalSetup:
    command: tuple[str, ...]
    config_path: Path  # the user's config file
    layout: Layout  # the project mirrored into each trial, where the command runs and where it logs
    base: Mapping[str, Any]  # the config the trial's search values apply to (UPPER_CASE keys, as in the file)
    epochs: int
    family: str = WGAN
    poll_s: float = 0.25
    threads: int = 1
    storage: Path | None = None  # the sweep's folder, which holds each trial's directory (None: Ray's trial dir)
    resumable: ResumeFlag | None = None  # the trainer's resume flag, when it has one
    resume: Resume | None = None  # this sweep's trials continue the user's run

    def config_in(self, trial_dir: Path) -> Path:
        return trial_dir / self.layout.workdir / self.config_path.name


def setup_for(command: str, config_path: Path, config: Mapping[str, Any], epochs: int, family: str,
              threads: int = 1, layout: Layout | None = None, resumable: ResumeFlag | None = None) -> ExternalSetup:
    """Check the command and config once, in the driver: a bad one is one line, not an error per trial."""
    argv = tuple(shlex.split(command))
    if not argv:
        raise ConfigError("--train-cmd is empty")
    program = shutil.which(argv[0])  # resolved here: a Ray worker's PATH need not be the user's shell's
    if program is None and not (config_path.parent / argv[0]).is_file():
        raise ConfigError(f"--train-cmd {command!r}: {argv[0]!r} is not a program on PATH")
    argv = (program, *argv[1:]) if program and os.sep not in argv[0] else argv
    if resumable is not None and "{checkpoint}" not in resumable.arg:
        raise ConfigError(f"--resume-arg {resumable.arg!r} must hold {{checkpoint}}, e.g. \"--resume {{checkpoint}}\"")
    layout = layout or layout_for(config_path, config)
    return ExternalSetup(argv, config_path.resolve(), layout, dict(config), epochs, family, threads=threads,
                         resumable=resumable)


def epochs_key(config: Mapping[str, Any]) -> str | None:
    return next((k for k in EPOCH_KEYS if k in config), None)


def trial_values(setup: ExternalSetup, values: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's whole config: the base with its search values and the epoch budget (counted from the
    checkpoint's epoch when the trial resumes)."""
    config = {**setup.base, **values}
    key = epochs_key(config)
    if key:
        config[key] = setup.epochs + (setup.resume.epoch + 1 if setup.resume else 0)
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
    return -(d_loss.abs() if family == WGAN else (d_loss - math.log(4)).abs())


def row_proxy(row: Mapping[str, float], family: str) -> float:
    return float(proxy(pd.DataFrame([row]), family).iloc[0])


def run_quality(frame: pd.DataFrame, family: str) -> float:
    """The last measured quality of a finished log: its `quality` column, else the proxy's last value."""
    if "quality" in frame and frame["quality"].notna().any():
        return float(frame["quality"].dropna().iloc[-1])
    values = proxy(frame, family).dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


# ----- the trial ---------------------------------------------------------------------------------------------
def external_trial(config: dict[str, Any], setup: ExternalSetup) -> None:
    """Ray Tune function trainable (bind `setup` with tune.with_parameters)."""
    from ray import tune

    context = tune.get_context()
    # in the sweep's own folder, not Ray's staging folder: Ray copies that one into storage, and with it the
    # data the mirror links to
    trial_dir = setup.storage / context.get_trial_name() if setup.storage else Path(context.get_trial_dir())
    mirror(setup.layout, trial_dir, setup.config_path.name)
    values = trial_values(setup, config)
    setup.config_in(trial_dir).write_text(config_text(setup, values))
    start = setup.resume.seed_log(setup.layout.log_in(trial_dir)) if setup.resume else 0
    _follow(setup, trial_dir, start)


def _follow(setup: ExternalSetup, trial_dir: Path, start: int) -> None:
    from ray import tune

    from tuner.epoch_report import Report

    report, samples = Report(), Samples(setup.layout.log_in(trial_dir).parent / "samples")
    with Child(setup, trial_dir, start) as child:
        for row in child.rows():
            result = report.add(row, setup.family, objective=row_proxy(row, setup.family))
            tune.report({**result, "sample_png": samples.newest()})
            if len(report.history) >= setup.epochs:
                break


class Samples:
    """The sample grids the trainer writes beside its log (`samples/`): each new one once, for MLflow."""

    SUFFIXES = (".png", ".jpg", ".jpeg")

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, set()

    def newest(self) -> str:
        """The newest image not reported yet (by name: epoch_0009.png after epoch_0004.png), else ""."""
        try:
            new = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in self.SUFFIXES and p not in self.seen)
        except OSError:
            return ""
        self.seen.update(new)
        return str(new[-1]) if new else ""


class Child:
    """The user's process: started in the config's folder of the trial's mirror, followed through its log,
    always killed."""

    def __init__(self, setup: ExternalSetup, trial_dir: Path, start: int = 0) -> None:
        self.setup, self.dir = setup, trial_dir
        self.losses = setup.layout.log_in(trial_dir)
        self.start = self.seen = start  # rows of the log before this trial's first epoch (a resumed run's)
        self.proc: subprocess.Popen | None = None
        self.parsed: tuple[str, pd.DataFrame] = ("", pd.DataFrame())  # the last complete text and its frame

    def __enter__(self) -> Child:
        env = {**os.environ, "GANTUNE_TRIAL_DIR": str(self.dir), "PYTHONUNBUFFERED": "1",
               "GANTUNE_CONFIG": str(self.setup.config_in(self.dir)),
               "OMP_NUM_THREADS": str(self.setup.threads)}
        self.log = (self.dir / "train.log").open("w")
        resume = self.setup.resume.argv() if self.setup.resume else ()
        self.proc = subprocess.Popen([sys.executable, str(CHILD), *self.setup.command, *resume],
                                     cwd=self.dir / self.setup.layout.workdir, env=env,
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
        code, trained = self.proc.returncode, self.seen - self.start
        if (code != 0 and trained < self.setup.epochs) or trained == 0:
            why = self._last_output() if code != 0 else f"no epoch in {self.setup.layout.log} (the log it " \
                                                          f"writes is another: give --log)"
            raise TrainerError(f"{shlex.join(self.setup.command)} exited with code {code} after {trained} "
                               f"epochs: {why}")

    def _read(self) -> pd.DataFrame:
        from tuner.core.logs import LogError, parse_log

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
            raise TrainerError(f"the trainer's {self.setup.layout.log} cannot be read: {err}") from None

    def _last_output(self) -> str:
        self.log.flush()
        lines = [ln for ln in (self.dir / "train.log").read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1][:300] if lines else "no output"
