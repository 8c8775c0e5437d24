"""Where trials run and where they are recorded: the Ray/MLflow options every command shares (declared once, with
one set of defaults), the trial resources they give, and the context that starts or joins Ray, opens the MLflow
experiment and stops what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from trainables.errors import ConfigError
from tuner import allocator
from tuner.tracking import Store, check_reachable, tracking_uri

GPU_SHARE = 0.25  # a trial's GPU share by default with CUDA: four trials per GPU


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The Ray/MLflow options of `sweep`, `autofix --apply` and `triage`."""

    address: str | None = None  # a Ray cluster to join; None: RAY_ADDRESS, else a local Ray
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory
    experiment: str = "gantune"  # the MLflow experiment
    concurrency: int | None = None  # trials at once; None: what this machine's CPUs (and GPUs) hold
    cpus_per_trial: float | None = None  # None: 1
    gpus_per_trial: float | None = None  # None: GPU_SHARE with CUDA (gantune's own models), else 0

    def resources(self, cuda: bool) -> Resources:
        """CPUs and GPU share per trial and trials at once; `cuda`: the trials can use CUDA GPUs."""
        cpus = self.cpus_per_trial if self.cpus_per_trial is not None else 1.0
        gpus = self.gpus_per_trial if self.gpus_per_trial is not None else (GPU_SHARE if cuda else 0.0)
        if cpus <= 0 or gpus < 0:
            raise ConfigError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative, got {cpus:g}, "
                              f"{gpus:g}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        return Resources(cpus, gpus, self.concurrency or fits(cpus, gpus))


@dataclasses.dataclass(frozen=True)
class Resources:
    cpus_per_trial: float
    gpus_per_trial: float
    concurrency: int  # trials at once


def add_run_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The shared options; their defaults are RunOptions'."""
    p.add_argument("--concurrency", type=int, help="trials at once (default: what the CPUs/GPUs hold)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float,
                   help=f"GPU fraction per trial (default {GPU_SHARE:g} with CUDA, else 0)")
    p.add_argument("--address", help="join a running Ray cluster (or set RAY_ADDRESS); default: local Ray")
    add_tracking_uri(p)
    add_experiment(p)


def add_tracking_uri(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--tracking-uri", help="MLflow store (default: sqlite:///mlflow.db here, or MLFLOW_TRACKING_URI)")


def add_experiment(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--experiment", default=RunOptions.experiment,
                   help=f"MLflow experiment (default {RunOptions.experiment})")


def add_seed_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The Optuna sampler's seed, for the commands that search."""
    p.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed (default 0)")


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(args.address, args.tracking_uri, args.experiment, args.concurrency, args.cpus_per_trial,
                      args.gpus_per_trial)


@contextlib.contextmanager
def run_context(options: RunOptions, announce: Callable[[str], None] | None = None) -> Iterator[Store]:
    """Checks the MLflow store, calls `announce(uri)`, starts or joins Ray, yields the experiment's Store, and
    shuts down the Ray it started (or the connection it opened) on the way out, error or not."""
    ray_environment(options.address)
    uri = tracking_uri(options.tracking_uri)
    check_reachable(uri)
    if announce is not None:
        announce(uri)
    started = start_ray(options.address)
    try:
        yield Store(uri, options.experiment)
    finally:
        if started:
            stop_ray()


# ----- the machine ------------------------------------------------------------------------------------------------
def fits(cpus: float, gpus: float) -> int:
    """Trials this machine holds at once (a cluster can pass --concurrency)."""
    by_cpu = max(1, int((os.cpu_count() or 1) // cpus))
    if gpus > 0:
        import torch

        return max(1, min(by_cpu, int(torch.cuda.device_count() // gpus)))
    return by_cpu


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def command_line() -> str:
    """The command as the user typed it, for MLflow's records."""
    return "gantune " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def resume_command(name: str, argv: list[str] | None = None) -> str:
    """This command line with `--name NAME --resume`: what continues an interrupted sweep or autofix (a resumed
    one must be given the same options)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--name" not in args and not any(a.startswith("--name=") for a in args):
        args += ["--name", name]
    if "--resume" not in args:
        args.append("--resume")
    return "gantune " + " ".join(shlex.quote(a) for a in args)


# ----- Ray --------------------------------------------------------------------------------------------------------
def start_ray(address: str | None) -> bool:
    """Join `address` (or RAY_ADDRESS), else start a local Ray sized to this machine; False if this process was
    already connected (the caller then leaves it running)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        _check_address(address)
    _quiet()
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
             "configure_logging": True, "runtime_env": allocator.ray_runtime_env()}  # trial workers keep memory
    try:
        if address:
            ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        else:
            with _hangup_ignored():
                ray.init(**quiet)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0][:200]}") from None
    return True


@contextlib.contextmanager
def _hangup_ignored() -> Iterator[None]:
    """The local Ray's processes start with SIGHUP ignored (an ignored signal is inherited), so a closed terminal
    stops the sweep through the driver, which marks its trials interrupted, instead of killing Ray's raylet under
    it. Ray's processes survive a SIGINT to the group as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def _quiet() -> None:
    """gantune prints its own trial table: Ray's, Optuna's and MLflow's chatter would bury it."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # snapshot often: a killed driver loses less
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")  # the trial table prints each error's last line
    # Ray's JSON/CSV/TensorBoard result files duplicate what losses.csv and MLflow hold, at a CPU cost per result
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import mlflow  # noqa: F401  (mlflow sets its logger's level when imported: import it first)
    import optuna

    for name in ("ray", "ray.tune", "ray.train", "mlflow", "optuna", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _GoneCheckpoint) for f in controller.filters):
        controller.addFilter(_GoneCheckpoint())


class _GoneCheckpoint(logging.Filter):
    """Drops Ray's traceback for a checkpoint folder that is already gone. After a driver killed with SIGKILL,
    the resumed experiment's state still lists a checkpoint the trial deleted (keeping only the newest) after the
    last snapshot; Ray's attempt to delete it again fails harmlessly, and the trial goes on."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, FileNotFoundError) and "Error handling checkpoint" in str(record.msg))


def stop_ray() -> None:
    import ray

    ray.shutdown()


def ray_environment(address: str | None) -> None:
    """Call before anything imports Ray. A cluster started by `ray start` uses token authentication, but Ray
    2.60's driver only sends the token when RAY_AUTH_MODE=token is set (Ray reads it at import): set it when
    joining a cluster, a token is there and the user chose no mode."""
    if not (address or os.environ.get("RAY_ADDRESS")):
        return
    token = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") \
        or (Path.home() / ".ray" / "auth_token").is_file()
    if token and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"


def _check_address(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError):
        raise ConfigError(f"Ray cluster address {address} is not reachable (expected HOST:PORT of a running "
                          f"`ray start --head`)") from None
