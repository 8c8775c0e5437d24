"""`gantune report` on a real MLflow SQLite store holding a sweep as the sweep's tracker writes it: the numbers read
as a person would write them, and importances only from enough finished trials."""

from __future__ import annotations

import html
import json
import os
import random

from tuner.report import IMPORTANCE_TRIALS, find_subject, write_report
from tuner.tracking import Store

SPACE = {"learning_rate_g": "float [0.0001, 0.003] log", "n_critic": "int [1, 7]"}
EVIDENCE = [{"signal": "d_loss_positive_share", "value": 0.9999999999999999, "threshold": "> 90% of tail epochs",
             "source": "001 1"},
            {"signal": "d_loss_positive_level", "value": 1.209299647305246, "threshold": "> 0.05", "source": "001 1"}]


def sweep(store: Store, name: str, finished: int) -> None:
    """A parent run, `finished` healthy trials with a quality, and one trial stopped with its evidence."""
    parent, _ = store.run(name, {"sweep": name, "kind": "sweep"})
    store.log(parent, tags={"gantune.space": json.dumps(SPACE)})
    rng = random.Random(0)
    for i in range(finished + 1):
        values = {"learning_rate_g": 10 ** rng.uniform(-4, -2.6), "n_critic": rng.randint(1, 7)}
        run, _ = store.run(f"{name}-t{i + 1:03d}", {"sweep": name, "trial_id": f"id{i}"}, parent)
        stopped = i == finished
        tags = {"gantune.status": "stopped:generator_dominant" if stopped else "healthy",
                "gantune.search_values": values, "gantune.evidence": json.dumps(EVIDENCE if stopped else []),
                "gantune.stop_reason": "generator dominant" if stopped else "ran all epochs"}
        store.log(run, {"quality": -0.45 + values["n_critic"] / 10 + rng.gauss(0, 0.01)}, step=5, tags=tags)


def report(tmp_path, finished: int) -> str:
    store = Store(os.environ["MLFLOW_TRACKING_URI"], "gantune")
    sweep(store, "few", finished)
    return write_report(store, find_subject(store, "few"), tmp_path / "report.html").read_text()


def test_evidence_reads_as_rounded_numbers_and_few_trials_get_no_importances(tmp_path):
    page = report(tmp_path, finished=8)
    assert "0.9999999999999999" not in page and "1.209299647305246" not in page
    assert "d_loss_positive_share = 1 (" in page and "d_loss_positive_level = 1.209 (" in page
    importances = page.split("<h2>Parameter importances</h2>")[1].split("<h2>")[0]
    assert "Not computed: 8 trials" in importances and f"{IMPORTANCE_TRIALS - 8} more" in importances
    assert "<img" not in importances and "<table>" not in importances


def test_enough_finished_trials_get_importances_with_two_decimals(tmp_path):
    page = report(tmp_path, finished=IMPORTANCE_TRIALS)
    section = page.split("Parameter importances (Optuna, fANOVA, on quality)</h2>")[1].split("<h2>")[0]
    cells = section.split("<td>")[1:]
    names = [c.split("</td>")[0] for c in cells[::2]]
    values = [c.split("</td>")[0] for c in cells[1::2]]
    assert names[0] == "n_critic" and set(names) == set(SPACE)  # the quality follows n_critic
    assert all(len(v.split(".")[1]) == 2 for v in values)


def test_a_healthy_trial_whose_samples_have_not_reached_the_data_is_said_to_be_far_from_it(tmp_path):
    page = report(tmp_path, finished=8)
    best = page.split("<h2>Best trials</h2>")[1].split("<h2>")[0]
    for row in best.split("<tr>")[2:]:
        quality = float(row.split("<td>")[3].split("</td>")[0])
        assert ("healthy, still far from the data" in row) == (quality < 0), row
    counts = page.split("<h2>Trials by status</h2>")[1].split("</table>")[0]
    far = int(counts.split("<td>healthy, still far from the data</td><td>")[1].split("<")[0])
    near = int(counts.split("<td>healthy</td><td>")[1].split("<")[0])
    assert far + near == 8 and far and near
    assert page.count(": healthy, still far from the data</h3>") == far
    assert "stopped:generator_dominant</h3>" in page  # a stopped trial says why it stopped, not how far it got


def test_the_guides_known_bad_trial_is_named_as_such(tmp_path):
    from search_spaces.cases import GUIDE_CASES

    case = GUIDE_CASES["wgan_large"]
    store = Store(os.environ["MLFLOW_TRACKING_URI"], "gantune")
    parent, _ = store.run("demo", {"sweep": "demo", "kind": "sweep"})
    store.log(parent, params={"model": "wgan_large"}, tags={"gantune.space": json.dumps(SPACE)})
    for i, values in enumerate(({"learning_rate_d": 1e-4, "lr_ratio": 1.0}, dict(case.point))):
        run, _ = store.run(f"demo-t{i + 1:03d}", {"sweep": "demo", "trial_id": f"id{i}"}, parent)
        store.log(run, {"quality": -0.3}, step=3, tags={"gantune.search_values": values, "gantune.status":
                                                        "healthy" if i == 0 else case.verdict})
    page = write_report(store, find_subject(store, "demo"), tmp_path / "report.html").read_text()
    name = html.escape(case.name)
    assert page.count(f"({name})") == 2  # its row among the stopped trials and its section's heading
    assert f"demo-t002 ({name})" in page and "demo-t001 (" not in page
