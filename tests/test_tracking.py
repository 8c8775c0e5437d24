"""tuner/tracking.py: the MLflow store gantune writes, opened by several processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

# Opens the store the way a sweep's driver does, once the go file appears, and records one parent run.
OPEN_AND_RECORD = """
import sys, time
from pathlib import Path
import mlflow
from tuner.tracking import Store
uri, name, go = sys.argv[1:]
Path(go + "." + name).touch()  # imported: ready to race
while not Path(go).exists():
    time.sleep(0.01)
store = Store(uri, "gantune")
run_id, _ = store.run(name, {"sweep": name})
store.end(run_id)
"""


def test_two_processes_create_a_new_sqlite_store_at_once(tmp_path):
    # MLflow migrates a new store on first open; two at once failed with `table ... already exists`
    uri, go = f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    drivers = [subprocess.Popen([sys.executable, "-c", OPEN_AND_RECORD, uri, name, str(go)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name in ("one", "two")]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{name}").exists() for name in ("one", "two")) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [d.communicate(timeout=120)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], "\n".join(outputs)[-3000:]

    client = MlflowClient(uri)
    experiments = client.search_experiments(filter_string="name = 'gantune'")
    assert len(experiments) == 1
    runs = client.search_runs([experiments[0].experiment_id])
    assert sorted(r.data.tags["gantune.sweep"] for r in runs) == ["one", "two"]
    assert {r.info.status for r in runs} == {"FINISHED"}
