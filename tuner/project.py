"""The user's project as each trial sees it: the root mirrored into the trial directory, the folder the command
runs in, where the trainer writes its log, and the outputs that stay behind.

A seed-layout project (`models/NAME/train.py` beside `config.py`, a shared `common/` two levels up, relative
`DATA_DIR = "../../dataset"` and `OUTPUT_DIR = "../../outputs/NAME"`) only trains when the whole project is
there: the root is the enclosing git repository's (else `--project DIR`, else the config's folder), and the
config's relative paths then resolve inside the trial, so every trial writes its own outputs. Small files are
copied, larger files and folders linked (data stays linked, never copied); outputs are left out: the names in
OUTPUTS at any level, hidden entries, the folders the config's output paths point at and the user's own log.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError

LOSSES = "losses.csv"
OUTPUTS = frozenset({LOSSES, "samples", "checkpoints", "__pycache__", "runs", "sweeps", "autofix", "mlruns",
                     "mlartifacts", "mlflow.db", "train.log"})
# a config key naming where the trainer writes (OUTPUT_DIR, CHECKPOINT_DIR, SAMPLE_DIR, LOG_DIR, SAVE_PATH)
OUTPUT_WORDS = ("OUTPUT", "CHECKPOINT", "SAMPLE", "LOG", "SAVE", "RESULT")
COPY_LIMIT = 1 << 20  # files up to 1 MiB are copied (scripts, configs); larger ones (data) are linked


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths inside the project, relative to its root (so the same inside every trial's mirror)."""

    root: Path  # the user's project root (absolute)
    workdir: Path  # the config's folder: where the command runs
    log: Path  # the trainer's per-epoch log
    outputs: tuple[Path, ...] = ()  # left out of the mirror: the trainer's outputs in the user's project

    def log_in(self, trial_dir: Path) -> Path:
        return trial_dir / self.log


def layout_for(config_path: Path, config: Mapping[str, Any], run_log: Path | None = None, log: str | None = None,
               project: str | None = None) -> Layout:
    """The layout for a config file: `log` (relative to the config's folder) wins over the place of `run_log`
    (the user's broken run) in the project; with neither, the config's OUTPUT_DIR/losses.csv, else `losses.csv`
    in the config's folder."""
    folder = config_path.resolve().parent
    root = project_root(folder, project)
    trial_log = _trial_log(root, folder, run_log, log, config)
    outputs = {*_config_outputs(root, folder, config), *_run_outputs(root, folder, run_log)}
    return Layout(root, folder.relative_to(root), trial_log, tuple(sorted(outputs)))


def project_root(folder: Path, project: str | None = None) -> Path:
    """`--project DIR` when given (it must hold the config), else the enclosing git repository's root, else the
    config's folder."""
    if project is not None:
        root = Path(project).resolve()
        if not root.is_dir() or not _within(folder, root):
            raise ConfigError(f"--project {project}: not a folder that holds the config's folder {folder}")
        return root
    return next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _trial_log(root: Path, folder: Path, run_log: Path | None, log: str | None,
               config: Mapping[str, Any]) -> Path:
    if log is None and (run_log is None or not _within(Path(os.path.normpath(run_log.resolve())), root)):
        output = config.get("OUTPUT_DIR")  # the seed layout's: OUTPUT_DIR/losses.csv
        log = str(Path(output) / LOSSES) if isinstance(output, str) and output else None
        if log is not None and not _within(Path(os.path.normpath(folder / log)), root):
            log = None
    if log is not None:
        path = Path(os.path.normpath(folder / log))
        if not _within(path, root) or path == root:
            raise ConfigError(f"--log {log}: must name a file inside the project {root}")
        return path.relative_to(root)
    run = Path(os.path.normpath(run_log.resolve())) if run_log is not None else None
    if run is not None and _within(run, root):
        return run.relative_to(root)
    return (folder / LOSSES).relative_to(root)


def _config_outputs(root: Path, folder: Path, config: Mapping[str, Any]) -> list[Path]:
    """The folders the config's output keys point at, inside the project (never the config's own folder)."""
    found = []
    for key, value in config.items():
        if isinstance(value, str) and value and any(w in key.upper() for w in OUTPUT_WORDS):
            path = Path(os.path.normpath(folder / value))
            if _within(path, root) and not _within(folder, path):
                found.append(path.relative_to(root))
    return found


def _run_outputs(root: Path, folder: Path, run_log: Path | None) -> list[Path]:
    """The user's log, and its folder when that is not the config's folder (or above it)."""
    if run_log is None:
        return []
    run = Path(os.path.normpath(run_log.resolve()))
    if not _within(run, root):
        return []
    found = [run.relative_to(root)]
    if not _within(folder, run.parent):
        found.append(run.parent.relative_to(root))
    return found


# ----- the mirror --------------------------------------------------------------------------------------------
def mirror(layout: Layout, trial_dir: Path, config_name: str) -> None:
    """The project's files in the trial directory: small files copied, the rest linked, outputs left out; the
    folders above the config's and above each output are made, not linked, so what they hold can be left out."""
    keep_out = {layout.root / p for p in layout.outputs} | {layout.root / layout.workdir / config_name}
    made = {layout.root}
    for path in (layout.workdir, *layout.outputs):
        made |= {layout.root / p for p in (path, *path.parents)}
    _mirror_dir(layout.root, trial_dir, keep_out, made)


def _mirror_dir(source: Path, target_dir: Path, keep_out: set[Path], made: set[Path]) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        target = target_dir / entry.name
        if entry in keep_out or entry.name in OUTPUTS or entry.name.startswith(".") or target.exists() \
                or target.is_symlink():
            continue
        if entry in made and entry.is_dir() and not entry.is_symlink():
            _mirror_dir(entry, target, keep_out, made)
        elif entry.is_file() and entry.stat().st_size <= COPY_LIMIT:
            shutil.copy2(entry, target)
        else:
            target.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
