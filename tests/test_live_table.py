"""The sweep's live view driven with Ray's own Trial objects through the hooks in Ray's order: in a log, a line per
event and never the table; in a terminal, one table redrawn in place."""

from __future__ import annotations

import io

from ray.tune.experiment import Trial

from tuner.core.stopping import StopPolicy
from tuner.live_table import LiveView

EPOCHS = 6
HEADER = "progress"  # a column of the table


def trials(n: int) -> list[Trial]:
    return [Trial("train_trial", config={"learning_rate_g": 1e-3 * (i + 1), "n_critic": 5}, stub=True,
                  experiment_tag=f"{i + 1}_x", trial_id=f"id{i}") for i in range(n)]


def result(epoch: int) -> dict:
    return {"epoch": epoch, "d_loss": 0.123456, "g_loss": -0.1, "quality": -0.05, "quality_measured": True,
            "diagnosis": "healthy", "diagnosis_streak": epoch + 1, "collapse_score": 3}


def sweep(view: LiveView, n: int = 3) -> None:
    """Three trials started, EPOCHS epochs each with a loop step after every one, the first erroring on the last."""
    running = trials(n)
    view.setup(total_num_samples=n + 1)
    for t in running:
        t.set_status(Trial.RUNNING)
        view.on_trial_start(0, running, t)
    for epoch in range(EPOCHS):
        for t in running:
            t.update_last_result(result(epoch))
        view.on_step_end(epoch, running)
    running[0].set_status(Trial.ERROR)
    view.on_trial_error(0, running, running[0])
    for t in running[1:]:
        t.set_status(Trial.TERMINATED)
        view.on_trial_complete(0, running, t)
    view.on_experiment_end(running)


def test_a_log_gets_one_line_per_trial_event_and_never_the_table():
    out = io.StringIO()
    sweep(LiveView(StopPolicy(EPOCHS), every=0, stream=out, terminal=False))
    lines = out.getvalue().splitlines()
    assert HEADER not in out.getvalue() and "\x1b[" not in out.getvalue()
    assert [ln.split()[0] for ln in lines if " started: learning_rate_g=" in ln] == ["t001", "t002", "t003"]
    assert sum("t001 error" in ln for ln in lines) == 1
    assert sum(" healthy at epoch 5 (quality -0.0500)" in ln for ln in lines) == 2
    progress = [ln for ln in lines if "trials ended" in ln]
    assert len(progress) == EPOCHS and "0 of 4 trials ended, 3 running" in progress[0]
    assert len(lines) == 3 + EPOCHS + 3  # starts, progress notes, ends: nothing else


def test_a_terminal_gets_one_table_redrawn_in_place():
    out = io.StringIO()
    sweep(LiveView(StopPolicy(EPOCHS), stream=out, terminal=True, redraw=0))
    text = out.getvalue()
    draws = text.count(HEADER)
    assert draws > EPOCHS  # a redraw per loop step, and one under each event line printed above the table
    # every redraw but the first moves the cursor back up over the table (title, header, 3 rows) and clears it
    assert text.count("\x1b[1A\x1b[2K" * 4) >= draws - 1
    assert f"{EPOCHS}/{EPOCHS}" in text and "0.1235" in text and "0.123456" not in text
    last = text.rsplit(HEADER, 1)[1]
    assert "error" in last and last.count("healthy") >= 2
