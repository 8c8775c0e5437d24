"""`gantune autofix --run PATH`: diagnose a run from its log, with evidence, and prescribe the guides' remedies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainables.vocabulary import FAMILIES
from tuner.core.stopping import number
from tuner.run_context import add_run_options, add_seed_option


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a losses.csv (or BCE log) or a run directory")
    p.add_argument("--family", choices=FAMILIES, help="the loss family (default: inferred from the log)")
    p.add_argument("--config", help="your config (config.py, JSON, YAML or TOML): fills the plan's old values "
                                    "and shows the first step as a diff")
    p.add_argument("--write", action="store_true", help="apply the first stage to --config (a .bak is kept); with "
                                                        "--apply and --train-cmd, the fixed config")
    p.add_argument("--json", action="store_true", help="print one JSON object (documented in the README)")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the losses with the onset marked")
    a = p.add_argument_group("--apply: walk the remedy ladder until a run trains healthy")
    a.add_argument("--apply", action="store_true", help="run each stage of the plan as a small sweep, in order, "
                                                         "until a trial is healthy and beats the broken run")
    a.add_argument("--model", help="the gantune model to train (default: the run's config.json MODEL)")
    a.add_argument("--data", help="the dataset for gantune's model (default: the run's DATA)")
    a.add_argument("--train-cmd", metavar="CMD", help="your own trainer, e.g. \"python train.py\" (needs --config; "
                                                     "see the README's contract)")
    a.add_argument("--project", metavar="DIR", help="your project's root, mirrored into each trial (default: the "
                                                   "config's git repository, else the config's folder)")
    a.add_argument("--log", metavar="PATH", help="where your trainer writes its per-epoch log, relative to the "
                                                "config's folder (default: where --run is in the project)")
    a.add_argument("--resume-arg", metavar="ARGS", help="your trainer's resume flag, e.g. \"--resume {checkpoint}\": "
                                                       "when the plan resumes, trials continue the run from its "
                                                       "checkpoint before the onset")
    a.add_argument("--resume-applies", metavar="KEYS", default="",
                   help="config keys your trainer applies when it resumes, e.g. LAMBDA_GP,N_CRITIC; a stage that "
                        "changes another trains fresh")
    a.add_argument("--trials", type=int, default=4, help="trials per stage (default 4)")
    a.add_argument("--epochs", type=int, help="epochs per trial (default: as many as the broken run logged)")
    a.add_argument("--budget", type=int, help="trial-epochs in all (default: trials x epochs per stage)")
    add_seed_option(a)
    a.add_argument("--name", help="autofix name (default autofix-TIMESTAMP); results in autofix/NAME")
    a.add_argument("--resume", action="store_true", help="continue the interrupted autofix --name NAME (same options)")
    add_run_options(a)


def run(args: argparse.Namespace) -> int:
    """Diagnose a GAN run from its per-epoch log and prescribe the guides' remedies in their order."""
    from trainables.errors import ConfigError
    from tuner import user_config
    from tuner.core.logs import find_checkpoints, read_run
    from tuner.core.prescription import prescribe
    from tuner.diagnosis_integrated import diagnose_run

    if args.write and not args.config:
        raise ConfigError("--write needs --config FILE: the file to apply the first step to")
    if args.resume and not args.apply:
        raise ConfigError("--resume continues an interrupted `autofix --apply`: give --apply and its --name")
    if args.apply:
        from tuner.cli.autofix_apply import apply

        return apply(args)
    log = read_run(args.run, args.family)
    config = user_config.for_run(Path(args.config) if args.config else None, log.run_dir)
    diagnosis = diagnose_run(log.frame, log.family, config.get("MODEL"))
    plan = prescribe(diagnosis, config, find_checkpoints(log.run_dir) if log.run_dir else [])
    report = {"diagnosis": diagnosis.to_dict(), "plan": [s.to_dict() for s in plan.steps],
              "restart": plan.restart.to_dict(), "log": {"path": str(log.source), "format": log.format,
                                                        "epochs": len(log.frame), "unit": log.unit},
              "model": config.get("MODEL")}  # a model with its own ladder (integrated) names its own stages
    patch = _first_step_patch(plan, args.config) if args.config else None
    if args.plot:
        from tuner.plots import plot_losses

        plot_losses(log.frame, diagnosis, Path(args.plot))
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report, plan)
        if patch:
            print(f"\nfirst step as a diff of {args.config}:\n{user_config.diff(Path(args.config), patch)}")
    if args.write and patch:
        backup = user_config.write(Path(args.config), patch)
        print(f"wrote {args.config} (original kept as {backup})")
    return 0


def _first_step_patch(plan: Any, path: str) -> str | None:
    from tuner import user_config

    changes = {s.parameter: s.new for s in plan.first_stage if not isinstance(s.new, str) or s.old is not None}
    return user_config.rewrite(Path(path), changes) if changes else None


def print_report(report: dict[str, Any], plan: Any) -> None:
    d = report["diagnosis"]
    unit = report["log"].get("unit", "epoch")
    onset = "" if d["onset_epoch"] is None else f", since {unit} {d['onset_epoch']}"
    print(f"diagnosis: {d['label']} ({d['family']}{onset}, confidence {d['confidence']:.2f}) "
          f"from {report['log']['epochs']} {unit}s of {report['log']['path']}")
    if d["evidence"]:
        print("\n| signal | value | threshold | source |\n|---|---|---|---|")
        for e in d["evidence"]:
            print(f"| {e['signal']} | {number(e['value'])} | {e['threshold']} | {e['source']} |")
    for a in d["alternatives"]:
        print(f"runner-up: {a['label']} (confidence {a['confidence']:.2f}; {a['why']})")
    if d["settle"]:
        print(f"not sure: {d['settle']}")
    if plan.steps:
        from search_spaces.remedies import stage_names_for

        names = stage_names_for(d["family"], report.get("model"))
        print("\n| stage | parameter | old | new | reason |\n|---|---|---|---|---|")
        for s in report["plan"]:
            stage = f"{s['stage']} {names.get(s['stage'], '')}"
            print(f"| {stage} | `{s['parameter']}` | {_show(s['from'])} | {_show(s['to'])} | {s['reason']} |")
    r = report["restart"]
    where = f" from {r['checkpoint']}" if r["checkpoint"] else ""
    print(f"\nrestart: {r['mode']}{where} ({r['reason']})")


def _show(value: Any) -> str:
    """A remedy's value, floats to four significant digits (a halved 5.3881673400335695 reads `2.694`)."""
    if value is None:
        return "?"
    return f"`{number(value) if isinstance(value, float) else value}`"
