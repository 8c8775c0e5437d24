"""`gantune watch PATH [-- CMD...]`: one line per epoch with the live diagnosis; on a failure the stopper confirms,
the diagnosis, its evidence and the guides' plan, and (when asked) the trainer stopped with SIGINT."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError
from trainables.vocabulary import FAMILIES

DEFAULT_EPOCHS = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the log to follow (a losses.csv, or any log autofix --run reads) or a run directory "
                                "(its losses.csv); with a trainer to follow, it may not exist yet")
    p.set_defaults(cmd=[])  # `gantune watch PATH -- CMD...`: the trainer to start, follow and stop (tuner/cli.py)
    p.add_argument("--stop", type=int, metavar="PID", help="send SIGINT to this process on a confirmed failure; "
                                                           "the watch ends when it exits")
    p.add_argument("--epochs", type=int, help=f"the run's length: the stopper's confirmation window is 10%% of it "
                                              f"and no failure is called in its first quarter; the watch ends after "
                                              f"as many rows (default: --config's NUM_EPOCHS, else "
                                              f"{DEFAULT_EPOCHS})")
    p.add_argument("--confirm", metavar="LABELS", default="",
                   help="failure labels (comma-separated: mode_collapse, discriminator_dominant, generator_dominant) "
                        "that the losses alone confirm, as for a failure this run already had; default: the "
                        "sweep's rule (divergence at once, the others only when sample statistics agree)")
    p.add_argument("--config", help="your config: its NUM_EPOCHS, its MODEL and the plan's old values (default for "
                                    "the model and the plan: a gantune run's config.json beside the log)")
    p.add_argument("--family", choices=FAMILIES, help="the loss family (default: inferred from the log)")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch, then one for the failure or end")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the log (default 1)")


def run(args: argparse.Namespace) -> int:
    """Follow a training run's log: the live diagnosis per epoch, and the stopper's call on a failure."""
    from tuner.watch import Tail, Watcher, watch

    log, config, policy = _checked(args)
    trainer = _start(args.cmd)
    tail = Tail(log, not_before=time.time() - 1 if trainer else 0.0)
    watcher = Watcher(log, args.family, policy, config.get("MODEL"))  # None: the run's config.json says
    try:
        failure = _follow(watch(tail, watcher, _running(trainer, args.stop), args.poll, policy.max_epochs),
                          watcher, config, log, args)
    except BaseException:  # Ctrl-C, or a log that cannot be read: the trainer watch started goes too
        _interrupt(trainer)
        raise
    code = _finish(trainer, args.stop, failure is not None)
    return _end(failure, watcher, code, args.json)


def _follow(events: Any, watcher: Any, config: dict[str, Any], log: Path, args: argparse.Namespace) -> Any:
    """Print each epoch; the failure, when one is confirmed (also printed), else None."""
    from tuner.watch import Failure

    for event in events:
        if isinstance(event, Failure):
            _report_failure(event, watcher, config, log, args)
            return event
        _print_epoch(event, args.json)
    return None


def _checked(args: argparse.Namespace) -> tuple[Path, dict[str, Any], Any]:
    from tuner import user_config
    from tuner.core.stopping import STOP_LABELS, StopPolicy
    from tuner.external import epochs_key

    path = Path(args.path)
    log = path / "losses.csv" if path.is_dir() or (not path.exists() and not path.suffix) else path
    if not args.cmd and args.stop is None and not log.is_file():
        raise ConfigError(f"not found: {log} (give a log, a run directory holding losses.csv, or `-- CMD` to start "
                          f"the trainer that writes it)")
    if args.stop is not None and not _alive(args.stop):
        raise ConfigError(f"--stop {args.stop}: no such process")
    if args.poll <= 0 or (args.epochs is not None and args.epochs < 1):
        raise ConfigError(f"--poll must be positive and --epochs at least 1; got {args.poll} and {args.epochs}")
    confirmed = tuple(label.strip() for label in args.confirm.split(",") if label.strip())
    if set(confirmed) - set(STOP_LABELS):
        raise ConfigError(f"--confirm {args.confirm}: labels must be among {', '.join(STOP_LABELS)}")
    config = user_config.read(Path(args.config)) if args.config else {}
    key = epochs_key(config)
    epochs = args.epochs or (int(config[key]) if key else DEFAULT_EPOCHS)
    return log, config, StopPolicy(epochs, confirmed=confirmed, asha=False)


def _start(cmd: list[str]) -> subprocess.Popen | None:
    if not cmd:
        return None
    try:
        # SIGINT at its default in the trainer, whatever watch inherited (a shell's `&`, a test runner's worker ignore
        # it): the stop watch sends must reach the trainer's KeyboardInterrupt
        return subprocess.Popen(cmd, preexec_fn=_default_sigint)
    except OSError as err:
        raise ConfigError(f"cannot start {cmd[0]!r}: {err.strerror}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running(trainer: subprocess.Popen | None, pid: int | None) -> Callable[[], bool]:
    if trainer is not None:
        return lambda: trainer.poll() is None
    if pid is not None:
        return lambda: _alive(pid)
    return lambda: True


def _finish(trainer: subprocess.Popen | None, pid: int | None, failed: bool) -> int | None:
    """On a failure, SIGINT to --stop's process and to the trainer watch started; otherwise the trainer runs to its
    end. Returns the trainer's exit code (None without one)."""
    if failed and pid is not None and _alive(pid):
        os.kill(pid, signal.SIGINT)
        print(f"sent SIGINT to process {pid}", flush=True)
    if trainer is None:
        return None
    if failed:
        _interrupt(trainer)
        print(f"stopped the trainer (process {trainer.pid}) with SIGINT", flush=True)
        return None
    return trainer.wait()


def _interrupt(trainer: subprocess.Popen | None, grace_s: float = 30.0) -> None:
    """SIGINT (the trainer may save its state), then SIGKILL after `grace_s`."""
    if trainer is None or trainer.poll() is not None:
        return
    trainer.send_signal(signal.SIGINT)
    try:
        trainer.wait(grace_s)
    except subprocess.TimeoutExpired:
        trainer.kill()
        trainer.wait()


# ----- printing ------------------------------------------------------------------------------------------------
def _print_epoch(event: Any, as_json: bool) -> None:
    r = event.report
    onset = int(r["diagnosis_onset"])
    if as_json:
        print(json.dumps({"epoch": int(r["epoch"]), **{k: v for k, v in event.row.items() if k != "epoch"},
                          "diagnosis": r["diagnosis"], "streak": r["diagnosis_streak"],
                          "onset": None if onset < 0 else onset,
                          "confidence": round(float(r["diagnosis_confidence"]), 4)}), flush=True)
        return
    since = f" since epoch {onset}" if onset >= 0 and r["diagnosis"] != "healthy" else ""
    print(f"epoch {int(r['epoch']):>4}  d_loss {_num(r.get('d_loss'))}  g_loss {_num(r.get('g_loss'))}  "
          f"{r['diagnosis']} x{r['diagnosis_streak']}{since}", flush=True)


def _num(value: Any) -> str:
    return f"{value:>9.4f}" if isinstance(value, float) and math.isfinite(value) else f"{value!s:>9}"


def _report_failure(failure: Any, watcher: Any, config: dict[str, Any], log: Path, args: argparse.Namespace) -> None:
    from tuner import user_config
    from tuner.cli.autofix import print_report
    from tuner.core.logs import find_checkpoints, infer_family
    from tuner.core.prescription import prescribe
    from tuner.diagnosis_integrated import diagnose_run

    family = args.family or infer_family(failure.frame)
    diagnosis = diagnose_run(failure.frame, family, watcher.model)
    config = config or user_config.for_run(None, log.parent)  # a gantune run's own config names its model's ladder
    plan = prescribe(diagnosis, config, find_checkpoints(log.parent))
    report = {"diagnosis": diagnosis.to_dict(), "plan": [s.to_dict() for s in plan.steps],
              "restart": plan.restart.to_dict(), "log": {"path": str(log), "epochs": len(failure.frame)},
              "model": watcher.model}
    if args.json:
        print(json.dumps({"failure": failure.verdict.to_dict(), **report}), flush=True)
        return
    print(f"\nfailure confirmed at epoch {failure.verdict.epoch}: {failure.verdict.reason}")
    print_report(report, plan)


def _end(failure: Any, watcher: Any, code: int | None, as_json: bool) -> int:
    if failure is not None:
        return 1
    label = watcher.report.label or "no epochs"
    failed = code not in (None, 0)
    if as_json:
        print(json.dumps({"end": True, "epochs": watcher.seen, "diagnosis": label, "trainer_exit": code}))
    else:
        trainer = f"; the trainer exited with code {code}" if failed else ""
        print(f"ended after {watcher.seen} epochs with no failure confirmed (diagnosis {label}){trainer}")
    return 1 if failed else 0
