"""`gantune report`: a self-contained HTML report of a sweep or an autofix, read from the MLflow store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tuner.run_context import add_experiment, add_tracking_uri


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="a sweep or autofix name, or a parent run id (default: the newest)")
    add_tracking_uri(p)
    add_experiment(p)
    p.add_argument("--out", default="report.html", help="the HTML file (default report.html); PNGs go in "
                                                        "OUT_files/ beside it")


def run(args: argparse.Namespace) -> int:
    """Write one HTML file (and its PNGs) with a sweep's loss curves, sample grids, importances and stops."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from trainables.errors import ConfigError
    from tuner.report import find_subject, write_report
    from tuner.tracking import Store, check_reachable, tracking_uri

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out must name an .html file, got {args.out}")
    uri = tracking_uri(args.tracking_uri)
    check_reachable(uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run `gantune sweep` first, or "
                          f"give --tracking-uri")
    store = Store(uri, args.experiment)
    if store.client.get_experiment_by_name(args.experiment) is None:
        raise ConfigError(f"no experiment {args.experiment!r} in {uri}")
    subject = find_subject(store, args.target)
    path = write_report(store, subject, out)
    print(f"report of {subject.title}: {path} (open it from disk; PNGs in {path.stem}_files/)")
    return 0
