"""`gantune sweep --train-cmd CMD --config FILE`: the sweep of gantune's models over the user's own trainer.

The same search, stopper and MLflow records (tuner/sweep.py); the space is the guides' (search_spaces.USER_SPACES)
restricted to the keys the user's config has, or `--space FILE` in the config's own keys; each trial is the user's
project mirrored with the trial's values (tuner/external.py), and the best trial's config is written in the user's
format (`best_config.py` beside the sweep's summary).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_spaces.spaces import DERIVED, USER_SPACES, Param, parse_space
from trainables.errors import ConfigError


def external_settings(args: argparse.Namespace) -> tuple[Any, str]:
    """The SweepSettings for the user's trainer, and a line saying what was chosen."""
    from tuner import user_config
    from tuner.external import epochs_key, setup_for
    from tuner.project import layout_for
    from tuner.run_context import command_line, run_options
    from tuner.sweep import SweepSettings
    from tuner.targets import CommandTarget

    if not args.config:
        raise ConfigError("--train-cmd needs --config FILE: your trainer's config, which each trial copies with its "
                          "values")
    path = Path(args.config)
    config = user_config.read(path)
    space = _space(args, config)
    key = epochs_key(config)
    epochs = args.epochs or (int(config[key]) if key else 0)
    if epochs < 1 or (args.trials is not None and args.trials < 1):
        raise ConfigError(f"--epochs (or your config's NUM_EPOCHS) and --trials must be at least 1; got {epochs} "
                          f"and {args.trials}")
    res = run_options(args).resources(cuda=False)  # the user's trainer places itself: no GPU share by default
    layout = layout_for(path, config, log=args.log, project=args.project)
    setup = setup_for(args.train_cmd, path, config, epochs, args.family, max(1, int(res.cpus_per_trial)), layout)
    name = args.name or f"{path.resolve().parent.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = SweepSettings(
        target=CommandTarget(setup), base=config, space=space, name=name, trials=args.trials or 8,
        concurrency=res.concurrency, cpus_per_trial=res.cpus_per_trial, gpus_per_trial=res.gpus_per_trial,
        seed=args.seed, experiment=args.experiment, resume=args.resume, stopper=not args.no_stopper,
        asha=not args.no_asha, command=command_line(), preset="your trainer")
    return settings, (f"your trainer {args.train_cmd!r} in {layout.workdir} of {layout.root}, reading "
                      f"{layout.log}")


def _space(args: argparse.Namespace, config: Mapping[str, Any]) -> dict[str, Param]:
    from tuner.user_config import read_mapping

    if args.space:
        data = read_mapping(Path(args.space), "space file")
        fields = {k.lower(): v for k, v in config.items()}
        space = parse_space(data, fields, args.space)
        derived = sorted(k for k in space if k in DERIVED and k not in fields)
        if derived:
            raise ConfigError(f"space file {args.space}: {', '.join(derived)} are gantune's own knobs; search your "
                              f"config's keys")
        return {_key(config, k): p for k, p in space.items()}
    space = {k: p for k, p in USER_SPACES[args.family].items() if k in config}
    if not space:
        raise ConfigError(f"--config {args.config}: none of the guides' {args.family} parameters "
                          f"({', '.join(USER_SPACES[args.family])}) is in it; give --space FILE in its keys")
    return space


def _key(config: Mapping[str, Any], name: str) -> str:
    return next(k for k in config if k.lower() == name)
