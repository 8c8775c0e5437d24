"""MLflow tracking written by gantune itself: one parent run per sweep, one child run per trial.

Only the driver writes (a Ray Tune callback), so concurrent trials never contend for a SQLite store. Each
epoch's metrics, the diagnosis tag and the sample grid go in one batch per trial result. Runs are found again
by their tags (`gantune.sweep`, `gantune.trial_id`), so a resumed sweep re-attaches instead of duplicating.
Several drivers may share one store: a SQLite store is created, migrated and given its experiment under a file lock.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
TAG = "gantune"
# MLflow 3's UI opens a GenAI (traces) page for an experiment of unknown kind; gantune's are model training.
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def tracking_uri(given: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """One clear error now, instead of retries and a traceback later."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
                answer.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise ConfigError(f"MLflow tracking server {uri} is not reachable ({reason})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise ConfigError(f"tracking URI {uri}: folder {folder} does not exist")
    elif uri.startswith("file:") or "://" not in uri:
        raise ConfigError(f"tracking URI {uri!r}: MLflow 3.13+ refuses the file store; use sqlite:///PATH.db "
                          f"or an http(s) server")


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Holds `.DB.lock` beside a SQLite store, across processes (hidden, so a project mirror leaves it out).
    MLflow creates and migrates a new store when it first opens it, and two processes doing so at once fail with
    `table ... already exists`; a server store serialises its own writes, so nothing is held for it."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    try:
        handle = db.with_name(f".{db.name}.lock").open("a")
    except OSError:  # a read-only folder: no store is created or migrated there, so none can race
        handle = None
    with handle or contextlib.nullcontext():
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, even if this process dies
        yield


def ui_command(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        default = uri == f"sqlite:///{Path(DEFAULT_DB).resolve()}"
        return "gantune ui" if default else f"gantune ui --tracking-uri {uri}"
    return f"open {uri}"


class Store:
    """The sweep's experiment in one MLflow store; the client is made on first use, so the object pickles."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri, self.experiment = uri, experiment
        self._client = None
        self._experiment_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "experiment": self.experiment, "_client": None, "_experiment_id": None}

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            with store_lock(self.uri):  # the client opens (and on first use creates and migrates) the store
                self._client = MlflowClient(self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            client = self.client  # opened first: the lock is not reentrant
            with store_lock(self.uri):
                found = client.get_experiment_by_name(self.experiment) or self._create_experiment()
            self._experiment_id = found.experiment_id
            if found.tags.get(KIND_TAG) != KIND:
                self.client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
        return self._experiment_id

    def _create_experiment(self):
        """The new experiment; or, when another driver on the same server created it first, theirs."""
        from mlflow.exceptions import MlflowException

        location = Path(DEFAULT_ARTIFACTS).resolve().as_uri() if self.uri.startswith("sqlite:") else None
        try:
            self.client.create_experiment(self.experiment, artifact_location=location, tags={KIND_TAG: KIND})
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return self.client.get_experiment_by_name(self.experiment)

    def search(self, max_results: int = 1000, **tags: str) -> list:
        """Runs holding these gantune.* tags."""
        query = " and ".join(f"tags.`{TAG}.{k}` = '{v}'" for k, v in tags.items())
        return self.client.search_runs([self.experiment_id], filter_string=query, max_results=max_results)

    def find(self, **tags: str) -> str | None:
        """The id of the run holding these gantune.* tags, if any."""
        runs = self.search(max_results=1, **tags)
        return runs[0].info.run_id if runs else None

    def run(self, name: str, tags: Mapping[str, str], parent: str | None = None,
            known: Mapping[str, str] | None = None) -> tuple[str, bool]:
        """Find the run with these gantune tags (in `known`, trial id -> run id, when the caller has looked
        them up in one search), or create it: (run id, created)."""
        found = known.get(tags.get("trial_id", "")) if known is not None else self.find(**tags)
        if found is not None:
            self.client.update_run(found, status="RUNNING")
            return found, False
        all_tags = {f"{TAG}.{k}": v for k, v in tags.items()}
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        return self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id, True

    def log(self, run_id: str, metrics: Mapping[str, float] | None = None, step: int = 0,
            params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """One batch: finite metrics at a step, params, and tags (values cut to MLflow's limits)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        batch_metrics = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items() if _finite(v)]
        batch_params = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        batch_tags = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        for chunk in _chunks(batch_params, 100):  # MLflow's batch limits: 100 params, 100 tags, 1000 metrics
            self.client.log_batch(run_id, params=chunk)
        for i, chunk in enumerate(_chunks(batch_metrics, 1000) if batch_metrics else [[]]):
            if chunk or (i == 0 and batch_tags):
                self.client.log_batch(run_id, metrics=chunk, tags=batch_tags[:100] if i == 0 else [])

    def last_step(self, run_id: str) -> int:
        """The highest step of any metric the run holds, -1 when it holds none."""
        keys = self.client.get_run(run_id).data.metrics
        return max((m.step for key in keys for m in self.client.get_metric_history(run_id, key)), default=-1)

    def image(self, run_id: str, path: Path, key: str, step: int) -> bool:
        if not path.is_file():
            return False
        from PIL import Image

        with Image.open(path) as picture:
            self.client.log_image(run_id, picture.convert("RGB"), key=key, step=step)
        return True

    def artifact(self, run_id: str, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _chunks(items: list, size: int) -> Iterable[list]:
    return (items[i:i + size] for i in range(0, len(items), size))


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
