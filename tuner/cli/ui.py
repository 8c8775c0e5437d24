"""`gantune ui`: the MLflow UI for the store gantune wrote, on 127.0.0.1 unless asked otherwise."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from trainables.errors import ConfigError
from tuner.run_context import add_tracking_uri

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
READY_TIMEOUT_S = 120.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_tracking_uri(p)  # the whole store: the UI lists every experiment
    p.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--sweep", help="the sweep whose trials the printed link opens on (default: the newest)")


def run(args: argparse.Namespace) -> int:
    """Start the MLflow UI on gantune's store (sweeps, autofixes and their trials); Ctrl-C stops it."""
    from tuner.tracking import DEFAULT_ARTIFACTS, tracking_uri

    uri = tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"{uri} is an MLflow server already: open it in a browser")
        return 0
    if not uri.startswith("sqlite:///"):
        raise ConfigError(f"tracking URI {uri!r}: gantune ui serves a sqlite:///PATH.db store or opens a server")
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        raise ConfigError(f"no MLflow store at {db}: run `gantune sweep` here first, or give --tracking-uri")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {args.port}")
    _check_free(args.host, args.port)
    artifacts = (db.parent / DEFAULT_ARTIFACTS).resolve()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--default-artifact-root",
               artifacts.as_uri(), "--host", args.host, "--port", str(args.port), "--workers", "1"]
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    if args.host not in LOCAL_HOSTS:
        print(f"warning: binding {args.host}: anyone who can reach this machine on port {args.port} can read and "
              f"change these runs (MLflow's UI has no login)", file=sys.stderr)
    return _serve(command, url, db, _landing(uri, url, args.sweep))


def _landing(uri: str, url: str, sweep: str | None) -> list[tuple[str, str]]:
    from tuner.tracking import Store
    from tuner.ui_landing import landing

    return landing(Store(uri, "gantune"), url, sweep)


def _check_free(host: str, port: int) -> None:
    """One line now when the port is taken, instead of the server's start-up and shutdown chatter."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(f"--host {host} cannot be resolved ({err.strerror})") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
        try:
            probe.bind(address)
        except OSError as err:
            why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be bound ({err.strerror})"
            raise ConfigError(f"port {port} on {host} {why}: choose another with --port") from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(command: list[str], url: str, db: Path, links: list[tuple[str, str]]) -> int:
    # `kill` (SIGTERM) or a closed terminal (SIGHUP) stops the server as Ctrl-C does, instead of orphaning it; and
    # Ctrl-C (SIGINT) itself even when started from a background job, which inherits SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    log = tempfile.TemporaryFile("w+")  # the server's chatter: shown only if it fails to start
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # GenAI job workers gantune never uses
    server = subprocess.Popen(command, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, text=True,
                              env=env)
    try:
        if not _ready(url, server):
            log.seek(0)
            lines = [ln for ln in log.read().splitlines() if ln.strip()] or ["no answer"]
            raise ConfigError(f"the MLflow UI did not start on {url}: {lines[-1][:200]}")
        print(f"MLflow UI for {db} at {url}  (Ctrl-C stops it)", flush=True)
        print("\n".join(f"  {what}: {link}" for what, link in links), flush=True)
        server.wait()
        return 0
    except KeyboardInterrupt:
        print("stopped")
        return 0
    finally:
        _stop(server)
        log.close()


def _ready(url: str, server: subprocess.Popen) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass
