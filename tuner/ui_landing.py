"""Where `gantune ui` lands: a sweep's trials as one flat table sorted by quality, with the columns that matter.

MLflow 3 keeps shareable table views as experiment tags (`mlflow.sharedViewState.<key>`, a JSON of the search
facets and the table's columns); its runs page applies the view whose key the URL names (`?viewStateShareKey=`).
gantune writes one view per sweep: only that sweep's trials (so they are not folded under the sweep's parent run),
sorted by quality, showing quality, status, diagnosis, stop reason and epoch, and the searched parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from trainables.errors import ConfigError
from tuner.tracking import TAG, Store

SHARED_VIEW = "mlflow.sharedViewState."  # MLflow's tag prefix for a shared view (3.15 and later)
QUALITY = "metrics.`quality`"
STATUS_TAGS = ("status", "diagnosis", "stop_reason", "stop_epoch")
COMPARE = 5  # trials in the compare link: the best by quality
MODEL_TRAINING = "workflowType=machine_learning"  # the UI's "Model training" mode, not its GenAI pages


def landing(store: Store, base: str, sweep: str | None = None) -> list[tuple[str, str]]:
    """What to open, as (what it shows, URL): the sweep's (the newest when None) trials table, then the compare
    view of its best trials; the experiment's runs page when the store holds no sweep. Writes the view's tag."""
    experiment = store.client.get_experiment_by_name(store.experiment)
    if experiment is None:
        return [("the runs", base)]
    runs_page = f"{base}/#/experiments/{experiment.experiment_id}/runs"
    parent = _sweep_run(store, sweep)
    if parent is None:
        return [("the runs", runs_page)]
    name = parent.data.tags[f"{TAG}.sweep"]
    trials = [r for r in store.search(sweep=name) if f"{TAG}.trial_id" in r.data.tags]
    key = view_key(name)
    state = view_state(name, searched(parent, trials))
    store.client.set_experiment_tag(experiment.experiment_id, SHARED_VIEW + key, json.dumps(state))
    links = [(f"sweep {name}'s trials by quality", f"{runs_page}?viewStateShareKey={key}&{MODEL_TRAINING}")]
    best = sorted((r for r in trials if "quality" in r.data.metrics), key=lambda r: -r.data.metrics["quality"])
    if len(best) >= 2:
        ids = _json_arg([r.info.run_id for r in best[:COMPARE]])
        links.append((f"its best {min(len(best), COMPARE)} compared", f"{base}/#/compare-runs?runs={ids}&experiments="
                      f"{_json_arg([experiment.experiment_id])}&{MODEL_TRAINING}"))
    return links


def view_state(sweep: str, params: Iterable[str]) -> dict[str, Any]:
    """The shared view: the runs page's search facets and table layout (the keys MLflow's UI reads)."""
    columns = [QUALITY, *(f"tags.`{TAG}.{t}`" for t in STATUS_TAGS), *(f"params.`{p}`" for p in params)]
    return {"searchFilter": f"tags.`{TAG}.sweep` = '{sweep}' and tags.`{TAG}.trial_id` LIKE '%'",
            "orderByKey": QUALITY, "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
            "datasetsFilter": [], "modelVersionFilter": "All Runs", "selectedColumns": columns,
            "runsHiddenMode": "SHOW_ALL"}


def searched(parent: Any, trials: list) -> list[str]:
    """The searched parameters as the trials log them: gantune's models UPPER_CASE, a user's trainer as named."""
    try:
        space = list(json.loads(parent.data.tags.get(f"{TAG}.space", "{}")))
    except ValueError:
        space = []
    logged = set().union(*(r.data.params for r in trials)) if trials else set()
    return [k.upper() if k.upper() in logged else k for k in space if k in logged or k.upper() in logged]


def _json_arg(values: list[str]) -> str:
    return quote(json.dumps(values, separators=(",", ":")))


def view_key(sweep: str) -> str:
    """A tag-safe key per sweep (MLflow tag names allow letters, digits, `_-. /`)."""
    return "gantune-" + re.sub(r"[^A-Za-z0-9_.-]", "-", sweep)


def _sweep_run(store: Store, sweep: str | None) -> Any:
    parents = store.search(max_results=5000, kind="sweep")
    named = [r for r in parents if r.data.tags.get(f"{TAG}.sweep") == sweep] if sweep else parents
    if sweep and not named:
        known = sorted({r.data.tags.get(f"{TAG}.sweep", "") for r in parents}) or ["none yet"]
        raise ConfigError(f"--sweep {sweep}: no such sweep in {store.uri}; its sweeps: {', '.join(known)}")
    return max(named, key=lambda r: r.info.start_time, default=None)
