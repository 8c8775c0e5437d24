"""What a trial trains: gantune's own model (`ModelTarget`), or the user's command on their config
(`CommandTarget`). A sweep and autofix take a target and ask it; neither asks which kind it is.

A target answers, for a sweep: its epochs, the Ray trainable, a trial's whole config, the best config's file;
and for autofix: the config in the guides' UPPER_CASE names, which remedies it can take, how a stage's changed
config is completed, how a stage's trials start (fresh or resumed), the fixed config's file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from search_spaces.spaces import resolve
from trainables.config import ARCHITECTURE_KEYS, GanConfig, write_config
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, switch_model
from tuner.core.prescription import Plan, Step
from tuner.external import ExternalSetup, Resume, config_text, trial_values
from tuner.stage_search import StageSearch

EXTERNAL = "external"  # what MLflow records as the model of the user's own trainer


class Target(Protocol):
    name: str  # the model MLflow records: a gantune model, or EXTERNAL
    label: str  # how the terminal names it
    max_failures: int  # Ray's retries of a failed trial
    uses_cuda: bool  # its trials take a GPU share by default when CUDA is there
    writes_back: bool  # `autofix --write` rewrites the user's config with the fix

    def epochs(self, base: Mapping[str, Any]) -> int: ...
    def trainable(self, base: Mapping[str, Any], threads: int, storage: Path) -> Callable: ...
    def config(self, base: Mapping[str, Any], values: Mapping[str, Any]) -> Any: ...
    def write_best(self, base: Mapping[str, Any], values: Mapping[str, Any], path: Path) -> Path: ...
    def use(self, path: Path) -> str: ...
    def upper(self, config: Mapping[str, Any]) -> dict[str, Any]: ...
    def key(self, parameter: str) -> str: ...
    def has(self, parameter: str, config: Mapping[str, Any]) -> bool: ...
    def applicable(self, steps: tuple[Step, ...]) -> tuple[Step, ...]: ...
    def adopt(self, current: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]: ...
    def stage(self, fix: StageStart, search: StageSearch) -> tuple[Target, dict[str, Any], str]: ...
    def full_config(self, search: StageSearch, values: Mapping[str, Any], original: Mapping[str, Any]) -> dict: ...
    def write_fixed(self, config: Mapping[str, Any], original: Mapping[str, Any], folder: Path) -> tuple[Path, str]:
        ...


@dataclasses.dataclass(frozen=True)
class StageStart:
    """What a stage's trials may start from: the broken run's plan and checkpoints, its log, the epochs to train."""

    plan: Plan
    checkpoints: tuple[tuple[int, Path], ...]
    source: str  # the broken run's log
    epochs: int  # epochs each trial trains

    def epoch_of(self, checkpoint: str) -> int:
        return next((e for e, p in self.checkpoints if str(p) == checkpoint), 0)


@dataclasses.dataclass(frozen=True)
class UserConfig:
    """The user's trainer's config for one trial (what MLflow records as its params)."""

    values: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


# ----- gantune's model ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelTarget:
    name: str  # a registered model
    init_checkpoint: str | None = None  # a gantune checkpoint every trial starts from (autofix's resume)
    max_failures: int = 2
    uses_cuda: bool = True
    writes_back: bool = False

    @property
    def label(self) -> str:
        return self.name

    def epochs(self, base: Mapping[str, Any]) -> int:
        return int(base["num_epochs"])

    def trainable(self, base: Mapping[str, Any], threads: int, storage: Path) -> Callable:
        from ray import tune

        from tuner.trial import TrialSetup, train_trial

        setup = TrialSetup(base=dict(base), threads=threads, init_checkpoint=self.init_checkpoint,
                            folder=storage.resolve())
        return tune.with_parameters(train_trial, setup=setup)

    def config(self, base: Mapping[str, Any], values: Mapping[str, Any]) -> GanConfig:
        from tuner.trial import TrialSetup, trial_config

        return trial_config(TrialSetup(base=dict(base)), values)

    def write_best(self, base: Mapping[str, Any], values: Mapping[str, Any], path: Path) -> Path:
        write_config(self.config(base, values), path)
        return path

    def use(self, path: Path) -> str:
        return f"gantune train {self.name} --config {path}"

    def upper(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return GanConfig(**config).to_dict()

    def key(self, parameter: str) -> str:
        return parameter.lower()

    def has(self, parameter: str, config: Mapping[str, Any]) -> bool:
        return True  # every remedy names a GanConfig field

    def applicable(self, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        """gantune switches models only to one that trains on the same data."""
        kind = get_model(self.name).data_kind
        return tuple(s for s in steps if s.parameter != "MODEL"
                     or (s.new in model_names() and get_model(s.new).data_kind == kind))

    def adopt(self, current: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
        """A model switch takes the new model's recipe."""
        return lambda changed: switch_model(current, changed)

    def stage(self, fix: StageStart, search: StageSearch) -> tuple[ModelTarget, dict[str, Any], str]:
        """Trials resume the checkpoint before the onset when the plan says so and the stage keeps the networks'
        shapes; they train `fix.epochs` more, measuring quality even if the broken run did not."""
        base, checkpoint = dict(search.base), self._resume_from(fix.plan, search)
        start = fix.epoch_of(checkpoint) + 1 if checkpoint else 0
        base["num_epochs"] = start + fix.epochs
        if not base.get("quality_every"):  # a fix must show its quality: measure it even if the run did not
            base["quality_every"] = max(1, fix.epochs // 4)
        return ModelTarget(base["model"], checkpoint), base, ""

    @staticmethod
    def _resume_from(plan: Plan, search: StageSearch) -> str | None:
        if plan.restart.mode != "resume":
            return None
        if any(k in search.changes or k in search.space for k in ARCHITECTURE_KEYS):
            return None
        return plan.restart.checkpoint

    def full_config(self, search: StageSearch, values: Mapping[str, Any], original: Mapping[str, Any]) -> dict:
        config = resolve(search.base, values)
        config["num_epochs"] = original["num_epochs"]
        return config

    def write_fixed(self, config: Mapping[str, Any], original: Mapping[str, Any], folder: Path) -> tuple[Path, str]:
        """fixed_config.json, and the original as the same JSON (for the diff)."""
        path = folder / "fixed_config.json"
        write_config(GanConfig(**config), path)
        return path, json.dumps(GanConfig(**original).to_dict(), indent=2) + "\n"


# ----- the user's own trainer --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CommandTarget:
    setup: ExternalSetup  # the command, the config file, the project's layout, the base config and epochs
    name: str = EXTERNAL
    label: str = "your trainer"
    max_failures: int = 0  # the user's trainer failing is its own error, not Ray's
    uses_cuda: bool = False  # the user's trainer places itself
    writes_back: bool = True

    def epochs(self, base: Mapping[str, Any]) -> int:
        return self.setup.epochs

    def trainable(self, base: Mapping[str, Any], threads: int, storage: Path) -> Callable:
        from ray import tune

        from tuner.external import external_trial

        setup = dataclasses.replace(self.setup, threads=threads, storage=storage)
        return tune.with_parameters(external_trial, setup=setup)

    def config(self, base: Mapping[str, Any], values: Mapping[str, Any]) -> UserConfig:
        return UserConfig(trial_values(self.setup, values))

    def write_best(self, base: Mapping[str, Any], values: Mapping[str, Any], path: Path) -> Path:
        path = path.with_name(f"best_{self.setup.config_path.name}")
        path.write_text(config_text(self.setup, self.config(base, values).values))
        return path

    def use(self, path: Path) -> str:
        return "your config with its values"

    def upper(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(config)

    def key(self, parameter: str) -> str:
        return parameter

    def has(self, parameter: str, config: Mapping[str, Any]) -> bool:
        return parameter in config

    def applicable(self, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        return steps

    def adopt(self, current: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
        return dict

    def stage(self, fix: StageStart, search: StageSearch) -> tuple[CommandTarget, dict[str, Any], str]:
        base = dict(search.base)
        resume, why = self.resume(fix, search)
        setup = dataclasses.replace(self.setup, base=base, epochs=fix.epochs, resume=resume)
        return dataclasses.replace(self, setup=setup), base, why

    def resume(self, fix: StageStart, search: StageSearch) -> tuple[Resume | None, str]:
        """The user's trainer resumes when the plan says so, it has a resume flag, and it applies on resume every
        key the stage changes or searches (a change it ignores would be credited for nothing); else it trains
        fresh, and the reason says why."""
        restart = fix.plan.restart
        if restart.mode != "resume" or not restart.checkpoint:
            return None, ""
        if self.setup.resumable is None:
            return None, (f"trains fresh: the plan resumes from {restart.checkpoint}, but your trainer has no "
                          f"--resume-arg")
        ignored = self.setup.resumable.unapplied({*search.changes, *search.space})
        if ignored:
            return None, f"trains fresh: your trainer does not apply {', '.join(ignored)} on resume (--resume-applies)"
        resume = Resume(Path(restart.checkpoint).resolve(), fix.epoch_of(restart.checkpoint),
                        Path(fix.source).resolve(), self.setup.resumable.arg)
        return resume, f"resumes from {restart.checkpoint}"

    def full_config(self, search: StageSearch, values: Mapping[str, Any], original: Mapping[str, Any]) -> dict:
        return {**search.base, **values}

    def write_fixed(self, config: Mapping[str, Any], original: Mapping[str, Any], folder: Path) -> tuple[Path, str]:
        """The user's config file with the fix rewritten in place, and the file as it is (for the diff)."""
        path = folder / self.setup.config_path.name
        path.write_text(config_text(self.setup, config))
        return path, self.setup.config_path.read_text()


def checked_data(cfg: GanConfig) -> GanConfig:
    """The dataset loaded once here: a bad spec or folder (too small to score, or without the classes or image side
    the model needs) is one line now, not an error in every trial; and a relative folder made absolute, since
    trials run in their own working directories."""
    from trainables.data import folder, load_dataset
    from trainables.quality import check_size

    if cfg.data.startswith(folder.PREFIX):
        path = Path(cfg.data[len(folder.PREFIX):]).expanduser().resolve()
        cfg = cfg.replace(data=f"{folder.PREFIX}{path}")
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    kind = get_model(cfg.model).data_kind
    if data.kind != kind:
        raise ConfigError(f"model {cfg.model} trains on {kind} data, but dataset {cfg.data!r} holds {data.kind}")
    check_size(data)
    # the classes and image side every trial would refuse; and the config every trial trains (a conditional
    # model's NUM_CLASSES), so what MLflow records for a trial is what its config.json holds
    return get_model(cfg.model).prepare(cfg, data.num_modes)
