"""`gantune sweep MODEL`: resolve the base config and the space, choose the budget for this machine, sweep."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from trainables.config import FIELDS, GanConfig, build_config, parse_set
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, preset_overrides

# Without CUDA: a budget that ends in about ten minutes on two cores at the cpu preset (see BENCHMARKS.md).
CPU_BUDGET = {"trials": 8, "epochs": 16, "dataset_size": 480, "quality_every": 4, "checkpoint_every": 4}
# With CUDA: the seed preset, four trials sharing each GPU.
GPU_BUDGET = {"trials": 16, "epochs": 200, "quality_every": 10, "checkpoint_every": 20, "gpus_per_trial": 0.25}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help=f"one of: {', '.join(model_names())} (none with --train-cmd)")
    p.add_argument("--trials", type=int, help="trials to run (default: 8 without CUDA, 16 with)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: 16 without CUDA, 200 with)")
    p.add_argument("--data", help="sprites (default), digits, stacked_digits, ring8, grid25 or folder:PATH")
    p.add_argument("--preset", help="seed or cpu (default: seed with CUDA, cpu without)")
    p.add_argument("--space", help="a YAML/JSON/TOML file that replaces the model's search space")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config key for every trial (it is then not searched)")
    p.add_argument("--enqueue", action="append", default=[], metavar="JSON",
                   help='a config to try early, in search coordinates, e.g. \'{"n_critic": 2}\' (repeatable)')
    p.add_argument("--concurrency", type=int, help="trials at once (default: what the CPUs/GPUs hold)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, help="GPU fraction per trial (default 0.25 with CUDA, else 0)")
    p.add_argument("--address", help="join a running Ray cluster (or set RAY_ADDRESS); default: local Ray")
    p.add_argument("--tracking-uri", help="MLflow store (default: sqlite:///mlflow.db here, or MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="gantune", help="MLflow experiment (default gantune)")
    p.add_argument("--name", help="sweep name (default MODEL-TIMESTAMP); results in sweeps/NAME")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep --name (or the latest)")
    p.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed (default 0)")
    p.add_argument("--no-stopper", action="store_true", help="turn the collapse stopper off (for comparisons)")
    p.add_argument("--no-asha", action="store_true", help="run every trial to the end")
    u = p.add_argument_group("your own trainer (see the README's contract)")
    u.add_argument("--train-cmd", metavar="CMD", help="your trainer, e.g. \"python train.py\" (needs --config)")
    u.add_argument("--config", help="your config (config.py, JSON, YAML or TOML): the base of every trial")
    u.add_argument("--family", choices=("wgan", "bce"), default="wgan",
                   help="your trainer's loss family: the guides' space to search (default wgan)")
    u.add_argument("--project", metavar="DIR", help="your project's root (default: the config's git repository, "
                                                   "else the config's folder)")
    u.add_argument("--log", metavar="PATH", help="where your trainer writes its per-epoch log, relative to the "
                                                "config's folder (default: OUTPUT_DIR/losses.csv, else losses.csv)")


def run(args: argparse.Namespace) -> int:
    """Search a model's hyperparameters with Ray Tune + Optuna, stopping collapsed trials; record in MLflow."""
    from tuner.sweep import check_paths, ray_environment, run_sweep, start_ray, stop_ray
    from tuner.tracking import Store, check_reachable, tracking_uri

    settings, chose = _settings(args)
    ray_environment(settings.address)
    uri = tracking_uri(args.tracking_uri)
    check_reachable(uri)
    print(f"gantune sweep {settings.model}: {chose}")
    print(f"  {settings.trials} trials x {settings.epochs} epochs, {settings.concurrency} at once "
          f"({settings.cpus_per_trial:g} CPU, {settings.gpus_per_trial:g} GPU each); space: "
          f"{', '.join(settings.space)}")
    print(f"  results {settings.path}; MLflow {uri}, experiment {settings.experiment!r}", flush=True)
    check_paths(settings)
    start_ray(settings.address)
    try:
        started = time.perf_counter()
        summary = run_sweep(settings, Store(uri, settings.experiment))
    finally:
        stop_ray()
    _print_summary(summary, uri, time.perf_counter() - started)
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
        from tuner.external_sweep import external_settings

        return external_settings(args)
    if args.config or args.project or args.log:
        raise ConfigError("--config, --project and --log are for --train-cmd; gantune's trainer takes --set")
    return _model_settings(args)


def _model_settings(args: argparse.Namespace):
    from search_spaces.spaces import model_space, parse_space
    from tuner.sweep import SweepSettings
    from tuner.user_config import read_mapping

    spec = get_model(args.model)
    cuda = _cuda_available()
    budget = GPU_BUDGET if cuda else CPU_BUDGET
    preset = args.preset or ("seed" if cuda else "cpu")
    fixed = parse_set(args.set)
    layers = {"num_epochs": args.epochs or budget["epochs"], "quality_every": budget["quality_every"],
              "checkpoint_every": budget["checkpoint_every"]}
    if not cuda and spec.data_kind == "image" and args.data is None:
        layers["dataset_size"] = budget["dataset_size"]
    if args.data:
        layers["data"] = args.data
    base = _checked_data(build_config(spec.defaults, preset_overrides(spec, preset), layers, fixed))
    space = model_space(spec.name)
    if args.space:
        space = parse_space(read_mapping(Path(args.space), "space file"), FIELDS, args.space)
    space = {k: v for k, v in space.items() if k not in fixed}  # --set fixes a key for every trial
    if not space:
        raise ConfigError("nothing to search: the space is empty once the --set keys are fixed")
    points = _points(args.enqueue)
    _check_points(points, space)
    trials = args.trials if args.trials is not None else budget["trials"]
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = budget.get("gpus_per_trial", 0.0) if cuda else 0.0
    cpus = args.cpus_per_trial or 1.0
    if cpus <= 0 or gpus < 0:
        raise ConfigError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative, got {cpus}, {gpus}")
    concurrency = args.concurrency or _fits(cpus, gpus)
    name = args.name or (_latest(args.model) if args.resume else f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    settings = SweepSettings(
        model=spec.name, base=_fields(base), space=space, name=name, trials=trials, concurrency=concurrency,
        cpus_per_trial=cpus, gpus_per_trial=gpus, seed=args.seed, address=args.address,
        experiment=args.experiment, resume=args.resume, points=tuple(points),
        stopper=not args.no_stopper, asha=not args.no_asha, command=_command_line(), preset=preset)
    device = "CUDA" if cuda else "no CUDA"
    return settings, f"{device}: preset {preset}, data {base.data}"


def _checked_data(cfg: GanConfig) -> GanConfig:
    """The dataset loaded once here: a bad spec or folder is one line now, not an error in every trial; and a
    relative folder made absolute, since trials run in their own working directories."""
    from trainables.data import folder, load_dataset

    if cfg.data.startswith(folder.PREFIX):
        path = Path(cfg.data[len(folder.PREFIX):]).expanduser().resolve()
        cfg = cfg.replace(data=f"{folder.PREFIX}{path}")
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    kind = get_model(cfg.model).data_kind
    if data.kind != kind:
        raise ConfigError(f"model {cfg.model} trains on {kind} data, but dataset {cfg.data!r} holds {data.kind}")
    return cfg


def _fields(cfg: GanConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in FIELDS}


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


def _fits(cpus: float, gpus: float) -> int:
    """Trials this machine holds at once (a cluster can pass --concurrency)."""
    by_cpu = max(1, int((os.cpu_count() or 1) // cpus))
    if gpus > 0:
        import torch

        return max(1, min(by_cpu, int(torch.cuda.device_count() // gpus)))
    return by_cpu


def _latest(model: str) -> str:
    found = sorted(p for p in Path("sweeps").glob(f"{model}-*") if p.is_dir())
    if not found:
        raise ConfigError(f"no {model} sweep under sweeps/ to resume; name one with --name")
    return found[-1].name


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _command_line() -> str:
    return "gantune " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _print_summary(summary, uri: str, seconds: float) -> None:
    from tuner.tracking import ui_command

    s = summary.settings
    print(f"\nsweep {s.name} done in {seconds / 60:.1f} min: {len(summary.trials)} trials")
    for status, n in sorted(summary.counts.items()):
        print(f"  {status:<32} {n}")
    print(f"  trial-epochs saved: {summary.epochs_saved(True)} by the collapse stopper, "
          f"{summary.epochs_saved(False)} by ASHA (of {len(summary.trials) * s.epochs})")
    if summary.best is None:
        print("no trial completed healthy; see the reasons above and in MLflow")
    else:
        b = summary.best
        print(f"best: {b.name} quality {b.quality:.4g} ({b.verdict.status}), values "
              f"{json.dumps(b.values, default=str)}")
        use = "your config with its values" if s.external else f"gantune train {s.model} --config " \
                                                                f"{summary.best_config_path}"
        print(f"best config: {summary.best_config_path}  ({use})")
    print(f"summary: {s.path / 'summary.md'}; MLflow: {ui_command(uri)}")
