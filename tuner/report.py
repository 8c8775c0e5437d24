"""`gantune report`: one HTML file (and the PNGs beside it) that shows a sweep or an autofix without a server.

Everything is read back from the MLflow store gantune wrote: the trials' metric histories (loss curves, with the
onset the diagnosis core finds in them), their sample grids (logged as images with steps), their status, stop
reason and evidence tags, and their search values, from which Optuna computes the parameter importances.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from search_spaces.cases import GUIDE_CASES
from trainables.errors import ConfigError
from tuner.core.stopping import number
from tuner.tracking import TAG, Store

CURVES = ("d_loss", "g_loss", "quality", "w_dist")
GRIDS_PER_TRIAL = 6
BEST = 5
# fANOVA fits a random forest to (values -> quality): on fewer finished trials it ranks the noise of a handful of
# points, so the report names how many more are needed instead of a chart that reads like a finding
IMPORTANCE_TRIALS = 20


@dataclasses.dataclass(frozen=True)
class TrialView:
    run_id: str
    name: str
    stage: str  # the sweep (or autofix stage) it belongs to
    status: str
    reason: str
    evidence: tuple[Mapping[str, Any], ...]
    values: Mapping[str, Any]
    quality: float
    history: pd.DataFrame  # epoch + CURVES
    images: tuple[tuple[int, str], ...]  # (step, artifact path)
    case: str = ""  # the guides' known-bad config this trial ran (search_spaces/cases.py), if it is one

    @property
    def title(self) -> str:
        return f"{self.name} ({self.case})" if self.case else self.name

    @property
    def stopped(self) -> bool:
        return self.status.startswith(("stopped:", "diverged", "error"))

    @property
    def reading(self) -> str:
        """The status, and for a trial that is not failing but whose samples have not reached the data (quality
        below 0: no sample lands among the real data's neighbours; trainables/quality.py) that too."""
        far = not self.stopped and math.isfinite(self.quality) and self.quality < 0
        return f"{self.status}, still far from the data" if far else self.status


@dataclasses.dataclass(frozen=True)
class Subject:
    """What the report is about: a sweep's or an autofix's parent run, and the sweep runs under it."""

    parent: Any
    sweeps: tuple[Any, ...]
    kind: str

    @property
    def title(self) -> str:
        return self.parent.info.run_name


# ----- reading the store -----------------------------------------------------------------------------------------
def find_subject(store: Store, target: str | None) -> Subject:
    """A sweep by name, a run by id (a sweep or autofix parent), or, with no target, the newest parent."""
    parents = [r for r in store.search(max_results=5000) if r.data.tags.get(f"{TAG}.kind") in
               ("sweep", "autofix")]
    if target:
        parents = [r for r in parents if target in (r.info.run_id, r.data.tags.get(f"{TAG}.sweep"),
                                                     r.data.tags.get(f"{TAG}.autofix"), r.info.run_name)]
    if not parents:
        what = f"no sweep or autofix named or with run id {target!r}" if target else "no sweep or autofix"
        raise ConfigError(f"{what} in {store.uri} (experiment {store.experiment!r})")
    parent = max(parents, key=lambda r: r.info.start_time)
    kind = parent.data.tags[f"{TAG}.kind"]
    if kind == "sweep":
        return Subject(parent, (parent,), kind)
    stages = [r for r in store.search(kind="autofix-stage") if r.data.tags.get("mlflow.parentRunId") ==
              parent.info.run_id]
    return Subject(parent, tuple(sorted(stages, key=lambda r: r.info.run_name)), kind)


def trials(store: Store, subject: Subject) -> list[TrialView]:
    out = []
    for sweep in subject.sweeps:
        name = sweep.data.tags[f"{TAG}.sweep"]
        case = GUIDE_CASES.get(sweep.data.params.get("model", ""))
        for run in store.search(sweep=name):
            if f"{TAG}.trial_id" in run.data.tags:
                view = _view(store, run, name)
                out.append(dataclasses.replace(view, case=case.name) if case and case.matches(view.values) else view)
    return sorted(out, key=lambda t: (t.stage, t.name))


def _view(store: Store, run: Any, stage: str) -> TrialView:
    tags = run.data.tags
    history = _history(store, run.info.run_id)
    quality = history["quality"].dropna() if "quality" in history else pd.Series(dtype=float)
    return TrialView(run.info.run_id, run.info.run_name, stage, tags.get(f"{TAG}.status", "unknown"),
                     tags.get(f"{TAG}.stop_reason", ""), tuple(_json_list(tags.get(f"{TAG}.evidence"))),
                     _literal(tags.get(f"{TAG}.search_values")), float(quality.iloc[-1]) if len(quality) else math.nan,
                     history, tuple(_images(store, run.info.run_id)))


def _history(store: Store, run_id: str) -> pd.DataFrame:
    columns = {}
    for key in CURVES:
        points = store.client.get_metric_history(run_id, key)
        if points:
            columns[key] = pd.Series({p.step: p.value for p in points})
    frame = pd.DataFrame(columns).sort_index()
    return frame.rename_axis("epoch").reset_index()


def _images(store: Store, run_id: str) -> list[tuple[int, str]]:
    found = []
    for item in store.client.list_artifacts(run_id, "images"):
        parts = Path(item.path).name.split("+")
        if item.path.endswith(".png") and len(parts) > 2 and parts[1] == "step" and parts[2].isdigit():
            found.append((int(parts[2]), item.path))
    return sorted(found)


def _json_list(text: str | None) -> list:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _literal(text: str | None) -> dict[str, Any]:
    try:
        value = ast.literal_eval(text or "{}")
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}


# ----- parameter importances (Optuna) -------------------------------------------------------------------------
def finished(subject: Subject, views: list[TrialView]) -> list[TrialView]:
    """The trials of the last sweep that ran to the end with a quality (an autofix's stages search different
    spaces: the last stage's)."""
    if not subject.sweeps:
        return []
    stage = subject.sweeps[-1].data.tags.get(f"{TAG}.sweep")
    return [t for t in views if (t.status == "healthy" or t.status.startswith("finished:"))
            and math.isfinite(t.quality) and t.values and t.stage == stage]


def importances(subject: Subject, views: list[TrialView]) -> dict[str, float]:
    """Optuna's fANOVA importances over the finished trials, by quality; {} with too few."""
    import optuna

    done = finished(subject, views)
    if not done:
        return {}
    last = subject.sweeps[-1]
    space = _literal_json(last.data.tags.get(f"{TAG}.space"))
    distributions = {k: d for k, d in ((k, _distribution(v)) for k, v in space.items()) if d is not None}
    if len(done) < 2 or not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    for t in done:
        params = {k: v for k, v in t.values.items() if k in distributions and _fits(distributions[k], v)}
        study.add_trial(optuna.trial.create_trial(params=params, value=t.quality,
                                                  distributions={k: distributions[k] for k in params}))
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def _fits(distribution: Any, value: Any) -> bool:
    if hasattr(distribution, "choices"):
        return value in distribution.choices
    return isinstance(value, int | float) and distribution.low <= value <= distribution.high


def _literal_json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _distribution(described: str) -> Any:
    """Back from `Param.describe()`: "float [2.5, 40] log", "int [1, 7]", "{32, 64, 128}"."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    text = str(described).strip()
    try:
        if text.startswith("{"):
            return CategoricalDistribution(list(ast.literal_eval("[" + text[1:-1] + "]")))
        kind, rest = text.split(" ", 1)
        low, high = (float(x) for x in rest[rest.index("[") + 1:rest.index("]")].split(","))
        if kind == "int":
            return IntDistribution(int(low), int(high))
        return FloatDistribution(low, high, log=rest.rstrip().endswith("log"))
    except (ValueError, SyntaxError):
        return None


# ----- writing ------------------------------------------------------------------------------------------------
def write_report(store: Store, subject: Subject, out: Path) -> Path:
    """The HTML file and its PNGs (in OUT_files/ beside it); returns the HTML's path."""
    views = trials(store, subject)
    files = out.with_name(out.stem + "_files")
    files.mkdir(parents=True, exist_ok=True)
    sections = [_summary(subject, views), _best_table(views), _importance(subject, views, files, out),
                _stopped_table(views)]
    sections += [_trial_section(store, t, files, out) for t in views]
    page = _PAGE.format(title=html.escape(subject.title), body="\n".join(s for s in sections if s))
    out.write_text(page)
    return out


def _rel(path: Path, out: Path) -> str:
    return html.escape(str(path.relative_to(out.parent)))


def _summary(subject: Subject, views: list[TrialView]) -> str:
    counts: dict[str, int] = {}
    for t in views:
        counts[t.reading] = counts.get(t.reading, 0) + 1
    tags = subject.parent.data.tags
    rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{n}</td></tr>" for s, n in sorted(counts.items()))
    extra = ""
    if subject.kind == "autofix":
        extra = (f"<p>Diagnosis of the broken run: <b>{html.escape(tags.get(f'{TAG}.diagnosis', ''))}</b>; "
                 f"outcome: <b>{html.escape(tags.get(f'{TAG}.status', ''))}</b></p>")
    command = html.escape(tags.get(f"{TAG}.command", ""))
    return (f"<h1>{html.escape(subject.title)}</h1><p class=cmd>{command}</p>{extra}"
            f"<h2>Trials by status</h2><table><tr><th>status</th><th>trials</th></tr>{rows}</table>")


def _best_table(views: list[TrialView]) -> str:
    ranked = sorted((t for t in views if math.isfinite(t.quality) and not t.stopped), key=lambda t: -t.quality)
    if not ranked:
        return "<h2>Best trials</h2><p>No trial ran to the end with a measured quality.</p>"
    rows = "".join(f"<tr><td><a href='#{t.run_id}'>{html.escape(t.name)}</a></td><td>{html.escape(t.reading)}</td>"
                   f"<td>{t.quality:.4g}</td><td>{html.escape(_values(t.values))}</td></tr>" for t in ranked[:BEST])
    return ("<h2>Best trials</h2><p>quality: higher is better, at most 1 (two halves of the real data score 0.95-1); "
            "below 0 no sample lands among the real data yet, and the trial is still far from it (README, "
            "`gantune evaluate`).</p><table><tr><th>trial"
            f"</th><th>status</th><th>quality</th><th>values</th></tr>{rows}</table>")


def _importance(subject: Subject, views: list[TrialView], files: Path, out: Path) -> str:
    done = len(finished(subject, views))
    if done < IMPORTANCE_TRIALS:
        return (f"<h2>Parameter importances</h2><p>Not computed: {done} trial{'s' * (done != 1)} ran to the end with "
                f"a quality, and importances from fewer than {IMPORTANCE_TRIALS} rank noise; "
                f"{IMPORTANCE_TRIALS - done} more would show which parameters matter.</p>")
    found = importances(subject, views)
    if not found:
        return "<h2>Parameter importances</h2><p>Optuna could not compute importances from these trials.</p>"
    path = files / "importances.png"
    _bar_chart(found, path)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.2f}</td></tr>" for k, v in found.items())
    return (f"<h2>Parameter importances (Optuna, fANOVA, on quality)</h2><img src='{_rel(path, out)}' "
            f"alt='parameter importances'><table><tr><th>parameter</th><th>importance</th></tr>{rows}</table>")


def _stopped_table(views: list[TrialView]) -> str:
    stopped = [t for t in views if t.stopped]
    if not stopped:
        return "<h2>Stopped trials</h2><p>None.</p>"
    rows = []
    for t in stopped:
        evidence = "<br>".join(html.escape(f"{e.get('signal')} = {number(e.get('value'))} ({e.get('threshold')}; "
                                           f"{e.get('source')})") for e in t.evidence)
        rows.append(f"<tr><td><a href='#{t.run_id}'>{html.escape(t.title)}</a></td><td>{html.escape(t.status)}</td>"
                    f"<td>{html.escape(t.reason)}</td><td class=ev>{evidence}</td></tr>")
    return ("<h2>Stopped trials</h2><table><tr><th>trial</th><th>status</th><th>reason</th><th>evidence</th></tr>"
            + "".join(rows) + "</table>")


def _trial_section(store: Store, t: TrialView, files: Path, out: Path) -> str:
    from tuner.core.diagnosis import diagnose

    folder = files / t.run_id
    parts = [f"<h3 id='{t.run_id}'>{html.escape(t.stage)} / {html.escape(t.title)}: {html.escape(t.reading)}</h3>"]
    if {"d_loss", "g_loss"} <= set(t.history.columns) and len(t.history):
        from tuner.plots import plot_losses

        curve = folder / "losses.png"
        plot_losses(t.history, diagnose(t.history), curve)
        parts.append(f"<img class=curve src='{_rel(curve, out)}' alt='losses of {html.escape(t.name)}'>")
    grids = []
    for step, artifact in _spread(t.images, GRIDS_PER_TRIAL):
        local = Path(store.client.download_artifacts(t.run_id, artifact, str(folder)))
        target = folder / f"samples_epoch{step:04d}.png"
        local.replace(target)
        grids.append(f"<figure><img src='{_rel(target, out)}' alt='samples at epoch {step}'>"
                     f"<figcaption>epoch {step}</figcaption></figure>")
    if grids:
        parts.append("<div class=grids>" + "".join(grids) + "</div>")
    _cleanup(folder)
    return "<section>" + "".join(parts) + "</section>"


def _spread(items: tuple, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def _cleanup(folder: Path) -> None:
    images = folder / "images"
    if images.is_dir() and not any(images.iterdir()):
        images.rmdir()


def _values(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _bar_chart(values: Mapping[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.4 * len(values) + 1), dpi=100)
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names])
    ax.set_xlabel("importance")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px;
text-align: left; vertical-align: top; }} .ev {{ font-size: 85%; }} .cmd {{ font-family: monospace; }}
.grids {{ display: flex; gap: 8px; flex-wrap: wrap; }} figure {{ margin: 0; }} figure img {{ width: 160px;
image-rendering: pixelated; }} img.curve {{ max-width: 640px; }} section {{ border-top: 1px solid #ddd; }}
</style></head><body>
{body}
</body></html>
"""
