"""`gantune sweep MODEL`: resolve the base config and the space, choose the budget for this machine, sweep."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

from trainables.config import FIELDS, build_config, parse_set
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, preset_overrides
from trainables.vocabulary import FAMILIES, WGAN
from tuner.run_context import (
    add_run_options,
    add_seed_option,
    command_line,
    cuda_available,
    resume_command,
    run_context,
    run_options,
)
from tuner.targets import ModelTarget, checked_data

# Without CUDA: a budget that ends in about ten minutes on two cores at the cpu preset (see BENCHMARKS.md). On the
# embedded sprites (no --data) the images are 16x16, where a CPU trial takes enough generator steps in the budget
# to draw sprite-like shapes (at 32x32 sixteen epochs left coloured noise). QUALITY_EVERY is also ASHA's first rung
# and a third of its second: at 5 the collapse stopper's earliest stop (epoch 12 of 24: settled after 10, then 3
# epochs of confirmation) comes before the second rung (15); at 4 ASHA's rung at 12 cut the known-bad trial first.
CPU_BUDGET = {"trials": 8, "epochs": 24, "dataset_size": 960, "image_size": 16, "quality_every": 5,
              "checkpoint_every": 5}
# With CUDA: the seed preset, four trials sharing each GPU.
GPU_BUDGET = {"trials": 16, "epochs": 200, "quality_every": 10, "checkpoint_every": 20}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help=f"one of: {', '.join(model_names())} (none with --train-cmd)")
    p.add_argument("--trials", type=int,
                   help=f"trials to run (default: {CPU_BUDGET['trials']} without CUDA, {GPU_BUDGET['trials']} with)")
    p.add_argument("--epochs", type=int,
                   help=f"epochs per trial (default: {CPU_BUDGET['epochs']} without CUDA, {GPU_BUDGET['epochs']} with)")
    p.add_argument("--data", help="sprites (default), digits, stacked_digits, ring8, grid25 or folder:PATH")
    p.add_argument("--preset", help="seed or cpu (default: seed with CUDA, cpu without)")
    p.add_argument("--space", help="a YAML/JSON/TOML file that replaces the model's search space")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config key for every trial (it is then not searched)")
    p.add_argument("--enqueue", action="append", default=[], metavar="JSON",
                   help='a config to try early, in search coordinates, e.g. \'{"n_critic": 2}\' (repeatable)')
    add_run_options(p)
    p.add_argument("--name", help="sweep name (default MODEL-TIMESTAMP); results in sweeps/NAME")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep --name (or the latest)")
    add_seed_option(p)
    p.add_argument("--no-stopper", action="store_true", help="turn the collapse stopper off (for comparisons)")
    p.add_argument("--no-asha", action="store_true", help="run every trial to the end")
    u = p.add_argument_group("your own trainer (see the README's contract)")
    u.add_argument("--train-cmd", metavar="CMD", help="your trainer, e.g. \"python train.py\" (needs --config)")
    u.add_argument("--config", help="your config (config.py, JSON, YAML or TOML): the base of every trial")
    u.add_argument("--family", choices=FAMILIES, default=WGAN,
                   help="your trainer's loss family: the guides' space to search (default wgan)")
    u.add_argument("--project", metavar="DIR", help="your project's root (default: the config's git repository, "
                                                   "else the config's folder)")
    u.add_argument("--log", metavar="PATH", help="where your trainer writes its per-epoch log, relative to the "
                                                "config's folder (default: OUTPUT_DIR/losses.csv, else losses.csv)")


def run(args: argparse.Namespace) -> int:
    """Search a model's hyperparameters with Ray Tune + Optuna, stopping collapsed trials; record in MLflow."""
    from tuner.sweep import check_paths, run_sweep

    settings, chose = _settings(args)

    def announce(uri: str) -> None:
        print(f"gantune sweep {settings.model}: {chose}")
        print(f"  {settings.trials} trials x {settings.epochs} epochs, {settings.concurrency} at once "
              f"({settings.cpus_per_trial:g} CPU, {settings.gpus_per_trial:g} GPU each); space: "
              f"{', '.join(settings.space)}")
        print(f"  results {settings.path}; MLflow {uri}, experiment {settings.experiment!r}", flush=True)
        check_paths(settings)

    started = time.perf_counter()
    with run_context(run_options(args), announce) as store:
        summary = run_sweep(settings, store)
    _print_summary(summary, store.uri, time.perf_counter() - started)
    if summary.interrupted:
        from tuner.interrupt import exit_code

        n = summary.counts.get("interrupted", 0)
        print(f"\nsweep {settings.name} interrupted by {summary.interrupted}: {n} trial(s) interrupted, their "
              f"state saved; resume with:\n  {resume_command(settings.name)}", flush=True)
        return exit_code(summary.interrupted)
    return 0 if summary.best is not None else 1


def _settings(args: argparse.Namespace):
    """Settings for gantune's model, or (--train-cmd) for the user's own trainer."""
    mine = args.train_cmd is not None
    if mine == (args.model is not None):
        raise ConfigError("give a MODEL to sweep gantune's trainer, or --train-cmd CMD --config FILE for yours "
                          "(not both)")
    if mine:
        if args.data or args.preset or args.set or args.enqueue or (args.resume and not args.name):
            raise ConfigError("with --train-cmd your config decides: --data, --preset, --set and --enqueue are "
                              "gantune's trainer's, and --resume needs --name")
        from tuner.cli.sweep_yours import external_settings

        return external_settings(args)
    if args.config or args.project or args.log:
        raise ConfigError("--config, --project and --log are for --train-cmd; gantune's trainer takes --set")
    return _model_settings(args)


def _model_settings(args: argparse.Namespace):
    from search_spaces.cases import guide_case
    from search_spaces.spaces import model_space, parse_space, seed_point
    from tuner.sweep import SweepSettings
    from tuner.user_config import read_mapping

    spec = get_model(args.model)
    cuda = cuda_available()
    budget = GPU_BUDGET if cuda else CPU_BUDGET
    preset = args.preset or ("seed" if cuda else "cpu")
    fixed = parse_set(args.set)
    layers = {"num_epochs": args.epochs or budget["epochs"], "quality_every": budget["quality_every"],
              "checkpoint_every": budget["checkpoint_every"]}
    if not cuda and spec.data_kind == "image" and args.data is None:
        layers.update(dataset_size=budget["dataset_size"], image_size=budget["image_size"])
    if args.data:
        layers["data"] = args.data
    base = checked_data(build_config(spec.defaults_for(fixed.get("data", args.data)), preset_overrides(spec, preset),
                                     layers, fixed))
    space = model_space(spec.name)
    if args.space:
        space = parse_space(read_mapping(Path(args.space), "space file"), FIELDS, args.space)
    space = {k: v for k, v in space.items() if k not in fixed}  # --set fixes a key for every trial
    if not space:
        raise ConfigError("nothing to search: the space is empty once the --set keys are fixed")
    trials = args.trials if args.trials is not None else budget["trials"]
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    points = _points(args.enqueue)
    _check_points(points, space)
    case = None if cuda or points or trials < 2 else guide_case(spec.name, space)  # the CPU demo's known-bad trial
    if case:  # the seed config but for the case's values, which may lie outside the space (Optuna would warn)
        points = [{**seed_point(space, base.fields()), **case.point}]
        warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range", category=UserWarning)
    res = run_options(args).resources(cuda)
    name = args.name or (_latest(args.model) if args.resume else f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    settings = SweepSettings(
        target=ModelTarget(spec.name), base=base.fields(), space=space, name=name, trials=trials,
        concurrency=res.concurrency, cpus_per_trial=res.cpus_per_trial, gpus_per_trial=res.gpus_per_trial,
        seed=args.seed, experiment=args.experiment, resume=args.resume, points=tuple(points),
        stopper=not args.no_stopper, asha=not args.no_asha, command=command_line(), preset=preset)
    device = "CUDA" if cuda else "no CUDA"
    also = f"\n  trial 2 is {case.describe()}" if case else ""
    return settings, f"{device}: preset {preset}, data {base.data}{also}"

def _points(items: list[str]) -> list[dict[str, Any]]:
    points = []
    for item in items:
        try:
            point = json.loads(item)
        except json.JSONDecodeError:
            raise ConfigError(f"--enqueue expects a JSON object, got {item!r}") from None
        if not isinstance(point, dict):
            raise ConfigError(f"--enqueue expects a JSON object, got {item!r}")
        points.append({str(k).lower(): v for k, v in point.items()})
    return points


def _check_points(points: list[dict[str, Any]], space: dict[str, Any]) -> None:
    """An --enqueue point must name searched parameters with values inside their ranges."""
    for point in points:
        for key, value in point.items():
            if key not in space:
                raise ConfigError(f"--enqueue {json.dumps(point)}: {key!r} is not searched (searched: "
                                  f"{', '.join(space)})")
            if not space[key].contains(value):
                raise ConfigError(f"--enqueue {json.dumps(point)}: {key}={value!r} is outside its range "
                                  f"{space[key].describe()}")


def _latest(model: str) -> str:
    found = sorted(p for p in Path("sweeps").glob(f"{model}-*") if p.is_dir())
    if not found:
        raise ConfigError(f"no {model} sweep under sweeps/ to resume; name one with --name")
    return found[-1].name


def _print_summary(summary, uri: str, seconds: float) -> None:
    from tuner.tracking import ui_command

    s = summary.settings
    print(f"\nsweep {s.name} done in {seconds / 60:.1f} min: {len(summary.trials)} trials")
    for status, n in sorted(summary.counts.items()):
        print(f"  {status:<32} {n}")
    print(f"  trial-epochs saved: {summary.epochs_saved(True)} by the collapse stopper, "
          f"{summary.epochs_saved(False)} by ASHA (of {len(summary.trials) * s.epochs})")
    if summary.best is None:
        print("no trial completed healthy" + ("" if summary.interrupted else "; see the reasons above and in MLflow"))
    else:
        b = summary.best
        print(f"best: {b.name} quality {b.quality:.4g} ({b.verdict.status}), values "
              f"{json.dumps(b.values, default=str)}")
        use = s.target.use(summary.best_config_path)
        print(f"best config: {summary.best_config_path}  ({use})")
    print(f"summary: {s.path / 'summary.md'}; MLflow: {ui_command(uri)}")
