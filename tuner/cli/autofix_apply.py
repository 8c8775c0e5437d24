"""`gantune autofix --run PATH --apply`: the broken run, the settings for this machine, the walk, the report."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError
from tuner.autofix import Broken, FixResult, FixSettings, StageResult
from tuner.targets import CommandTarget, ModelTarget


def apply(args: argparse.Namespace) -> int:
    """With --json, the progress goes to stderr and stdout holds only the final report (autofix.json)."""
    stdout = sys.stdout
    if not args.json:
        return _apply(args, stdout)
    with contextlib.redirect_stdout(sys.stderr):
        return _apply(args, stdout)


def _apply(args: argparse.Namespace, stdout: Any) -> int:
    from tuner.autofix import run_autofix
    from tuner.run_context import command_line, cuda_available, resume_command, run_context, run_options

    broken = load_broken(args)
    options = run_options(args)
    res = options.resources(broken.target.uses_cuda and cuda_available())
    if args.trials < 1:
        raise ConfigError(f"--trials must be at least 1; got {args.trials}")
    epochs = args.epochs if args.epochs is not None else broken.epochs
    if epochs < 1 or (args.budget is not None and args.budget < epochs):
        raise ConfigError(f"--epochs must be at least 1 and --budget at least one trial's epochs; got "
                          f"{epochs} and {args.budget}")
    _print_start(broken)
    if broken.diagnosis.label == "healthy":
        print("the run is healthy: nothing to fix")
        if args.json:
            print(json.dumps({"diagnosis": broken.diagnosis.to_dict(), "source": broken.source, "fixed": None,
                              "note": "healthy: nothing to fix"}), file=stdout)
        return 0
    name = args.name or f"autofix-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = FixSettings(name=name, epochs=epochs, trials=args.trials, budget=args.budget,
                           concurrency=res.concurrency, cpus_per_trial=res.cpus_per_trial,
                           gpus_per_trial=res.gpus_per_trial, seed=args.seed, experiment=args.experiment,
                           command=command_line(), resume=args.resume)
    if args.resume and not (args.name and settings.path.exists()):
        raise ConfigError(f"--resume continues an interrupted autofix named by --name; none at {settings.path}")
    if settings.path.exists() and not args.resume:
        raise ConfigError(f"autofix {name!r} already exists at {settings.path}; choose another --name, or "
                          f"--resume to continue it")

    def announce(uri: str) -> None:
        print(f"  {settings.trials} trials per stage x {epochs} epochs, {settings.concurrency} at once; results "
              f"{settings.path}; MLflow {uri}", flush=True)

    with run_context(options, announce) as store:
        result = run_autofix(broken, settings, store, on_stage=_print_stage)
    _print_result(result, store.uri)
    if args.json:
        print(json.dumps(result.to_dict(), default=str), file=stdout)
    if args.write and result.fixed and broken.target.writes_back:
        _write_back(Path(args.config), result)
    if result.interrupted:
        from tuner.interrupt import exit_code

        print(f"resume with:\n  {resume_command(name)}", flush=True)
        return exit_code(result.interrupted)
    return 0 if result.fixed else 1


# ----- the broken run ---------------------------------------------------------------------------------------------
def load_broken(args: argparse.Namespace) -> Broken:
    """The run's log, diagnosis and config, and the user's trainer when --train-cmd names one."""
    from tuner.core.diagnosis import diagnose
    from tuner.core.logs import find_checkpoints, read_run

    log = read_run(args.run, args.family)
    diagnosis = diagnose(log.frame, log.family)
    if args.train_cmd is not None:
        return _external(args, log, diagnosis)
    cfg = _gantune_config(args, log)
    quality = float(log.frame["quality"].dropna().iloc[-1]) if "quality" in log.frame \
        and log.frame["quality"].notna().any() else math.nan
    checkpoints = tuple(find_checkpoints(log.run_dir.resolve())) if log.run_dir else ()  # trials run elsewhere
    return Broken(str(log.source), diagnosis, cfg.fields(), quality, len(log.frame), ModelTarget(cfg.model),
                  checkpoints)


def _external(args: argparse.Namespace, log: Any, diagnosis: Any) -> Broken:
    from tuner import user_config
    from tuner.core.logs import find_checkpoints
    from tuner.external import ResumeFlag, run_quality, setup_for
    from tuner.project import layout_for

    if not args.config:
        raise ConfigError("--train-cmd needs --config FILE: your trainer's config, which each trial copies with "
                          "the stage's changes")
    if args.model or args.data:
        raise ConfigError("--model and --data choose gantune's trainer; with --train-cmd your trainer decides")
    config = user_config.read(Path(args.config))
    epochs = args.epochs if args.epochs is not None else len(log.frame)
    layout = layout_for(Path(args.config), config, Path(log.source), args.log, args.project)
    resumable = ResumeFlag(args.resume_arg, frozenset(k.strip().upper() for k in args.resume_applies.split(",")
                                                      if k.strip())) if args.resume_arg else None
    threads = max(1, int(args.cpus_per_trial or 1))
    setup = setup_for(args.train_cmd, Path(args.config), config, epochs, log.family, threads, layout, resumable)
    print(f"  project {layout.root}: each trial mirrors it, runs your command in {layout.workdir} and reads "
          f"{layout.log}", flush=True)
    checkpoints = tuple(find_checkpoints(log.run_dir.resolve())) if log.run_dir else ()
    return Broken(str(log.source), diagnosis, config, run_quality(log.frame, log.family), len(log.frame),
                  CommandTarget(setup), checkpoints)


def _gantune_config(args: argparse.Namespace, log: Any):
    """The broken run's config: --config, else its config.json; the model's defaults fill the rest."""
    from trainables.config import build_config, overrides_from, read_config_file
    from trainables.registry import get_model, preset_overrides
    from tuner.run_context import cuda_available
    from tuner.targets import checked_data

    path = Path(args.config) if args.config else (log.run_dir / "config.json" if log.run_dir else None)
    saved = overrides_from(read_config_file(path)) if path is not None and path.is_file() else {}
    model = args.model or saved.get("model")
    if model is None:
        raise ConfigError(f"--apply needs the run's config to retrain it: {args.run} has no config.json; give "
                          f"--model (and --config), or --train-cmd with --config for your own trainer")
    spec = get_model(model)
    preset = {} if saved else preset_overrides(spec, "seed" if cuda_available() else "cpu")
    cfg = build_config(spec.defaults, preset, saved, {"model": spec.name},
                       {"data": args.data} if args.data else {})
    return checked_data(cfg)


# ----- printing ---------------------------------------------------------------------------------------------------
def _print_start(broken: Broken) -> None:
    d = broken.diagnosis
    onset = "" if d.onset_epoch is None else f" since epoch {d.onset_epoch}"
    quality = "unmeasured" if math.isnan(broken.quality) else f"{broken.quality:.4g}"
    print(f"gantune autofix --apply: {broken.source} is {d.label}{onset} ({d.family}, {broken.epochs} epochs, "
          f"quality {quality}); retraining with {broken.target.label}")
    plan = broken.plan
    for step in plan.steps:
        missing = not broken.target.has(step.parameter, broken.config)
        note = "  [not in your config: skipped]" if missing else ""
        print(f"  stage {step.stage}: {step.parameter} {step.old} -> {step.new}  ({step.reason}){note}")
    print(f"  restart: {plan.restart.mode}{f' from {plan.restart.checkpoint}' if plan.restart.checkpoint else ''}")


def _print_stage(result: StageResult) -> None:
    s = result.search
    changes = ", ".join(f"{k.upper()}={v}" for k, v in s.changes.items()) or "none"
    searched = ", ".join(k.upper() for k in s.space) or "nothing"
    print(f"\nstage {s.stage}: guide's values {changes}; searched {searched}; "
          f"{result.spent} trial-epochs in {result.seconds:.0f} s: {result.note}", flush=True)
    if result.summary is not None:
        print(result.summary.table())


def _print_result(result: FixResult, uri: str) -> None:
    from tuner.tracking import ui_command

    if result.interrupted:
        print(f"\ninterrupted by {result.interrupted} at stage {result.stages[-1].search.stage}: its trials were "
              f"stopped and recorded as interrupted; the config below is the best carried so far")
    elif result.fixed:
        print(f"\nfixed at stage {result.fixed_stage} by {result.fixed.name}: healthy, quality "
              f"{result.fixed.quality:.4g} (the broken run: {result.broken.quality:.4g})")
    elif result.trained:
        print("\nnot fixed: no stage produced a healthy trial that beats the broken run; the config below is the "
              "best carried through the ladder")
    else:
        print("\nnot fixed: no stage produced a healthy trial that beats the broken run; the config below is "
              "untrained: it holds the guide's values of the last stage, which no trial trained")
    print(f"compute: {result.spent} trial-epochs in {result.seconds / 60:.1f} min")
    print(f"config: {result.config_path}")
    if result.diff:
        print(result.diff.rstrip())
    print(f"report: {result.config_path.parent / 'autofix.json'}; MLflow: {ui_command(uri)}")


def _write_back(path: Path, result: FixResult) -> None:
    from tuner import user_config

    backup = user_config.write(path, result.config_path.read_text())
    print(f"wrote {path} (original kept as {backup})")
