"""The sweep as it runs, in the driver.

In a terminal: one table redrawn in place (rich's Live), a row per trial with its state, epoch progress, losses,
collapse score, quality and diagnosis, under a line with the sweep's elapsed and estimated remaining time; a line
per finished trial prints above it. In a log (stdout is not a terminal): one line per trial event (started,
finished with its status and reason, failed, retried) and a one-line progress note every `every` seconds, never
the table, so a long sweep's log reads as a list of what happened.
"""

from __future__ import annotations

import atexit
import math
import time
from collections.abc import Mapping
from typing import Any

from ray.tune import Callback

from tuner.core.stopping import StopPolicy, outcome
from tuner.epoch_report import QUALITY_FLOOR
from tuner.sweep_callbacks import error_line, trial_number

COLUMNS = ("trial", "state", "progress", "d_loss", "g_loss", "collapse", "quality", "diagnosis")
REDRAW_S = 0.5  # the table is rebuilt at most this often by default (Ray's loop steps far more often)


class LiveView(Callback):
    """`every`: seconds between progress lines in a log; `terminal`: None decides from the stream (rich's
    Console.is_terminal), which defaults to stdout; `redraw`: least seconds between two redraws of the table."""

    def __init__(self, policy: StopPolicy, every: float = 20.0, stream: Any = None, terminal: bool | None = None,
                 redraw: float = REDRAW_S) -> None:
        self.policy, self.every, self.stream, self.terminal, self.redraw = policy, every, stream, terminal, redraw
        self._reset()

    def _reset(self) -> None:
        self.console = self.live = None
        self.started = self.last_draw = self.last_note = 0.0
        self.total = 0

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles its callbacks with the experiment (for --resume)
        state = dict(self.__dict__)
        state.update(console=None, live=None, stream=None)
        return state

    # ----- Ray's hooks -----------------------------------------------------------------------------------------
    def setup(self, total_num_samples: int = 0, **info) -> None:
        from rich.console import Console

        self.console = Console(file=self.stream, force_terminal=self.terminal, soft_wrap=True)
        self.started, self.total = time.monotonic(), int(total_num_samples or 0)
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()
            atexit.register(self.close)  # an interrupted sweep leaves the cursor shown and the table whole

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        now = time.monotonic()
        if self.live is not None and now - self.last_draw >= self.redraw:
            self.last_draw = now
            self.live.update(self.table(trials), refresh=True)
        elif self.live is None and now - self.last_note >= self.every and _epochs_done(trials):
            self.last_note = now
            self._say(self.progress(trials))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info) -> None:
        if self.live is None:
            self._say(f"  {_name(trial)} started: {_values(trial.config)}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        verdict = outcome(trial.last_result, self.policy)
        self._say(f"  {_name(trial)} {verdict.status} at epoch {verdict.epoch} "
                  f"(quality {quality_text(trial.last_result or {})}): {verdict.reason[:160]}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._say(f"  {_name(trial)} error: {error_line(trial)}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._say(f"  {_name(trial)} failed (try {trial.num_failures}), retried from its last checkpoint: "
                  f"{error_line(trial)}")

    def on_experiment_end(self, trials: list, **info) -> None:
        if self.live is not None:
            self.live.update(self.table(trials), refresh=True)
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ----- what it shows ---------------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.console is None:  # an event before setup (never in Ray's order, but print it anyway)
            self.setup()
        self.console.print(text, highlight=False, markup=False)

    def progress(self, trials: list) -> str:
        """`2.5 min: 3 of 8 trials ended, 2 running, about 6 min left`."""
        ended = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        running = sum(t.status == "RUNNING" for t in trials)
        elapsed = time.monotonic() - self.started
        return (f"  {_minutes(elapsed)}: {ended} of {max(self.total, len(trials))} trials ended, {running} running, "
                f"{remaining_text(trials, self.total, self.policy.max_epochs, elapsed)}")

    def table(self, trials: list) -> Any:
        from rich.table import Table

        table = Table(title=self.progress(trials).strip(), title_justify="left", box=None, pad_edge=False)
        for column in COLUMNS:
            table.add_column(column, justify="right" if column in ("d_loss", "g_loss", "quality") else "left",
                             no_wrap=column != "diagnosis")
        for trial in sorted(trials, key=trial_number):
            table.add_row(*row(trial, self.policy))
        return table


def row(trial: Any, policy: StopPolicy) -> tuple[Any, ...]:
    """A trial's cells: its outcome once ended, else Ray's state; its epochs as a bar."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    r = trial.last_result or {}
    if "epoch" not in r:
        return (_name(trial), trial.status.lower(), "", "", "", "", "", "")
    epochs = int(r["epoch"]) + 1
    state = outcome(r, policy).status if trial.status == "TERMINATED" else trial.status.lower()
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=policy.max_epochs, completed=epochs, width=12), f"{epochs}/{policy.max_epochs}")
    return (_name(trial), state, bar, f"{r.get('d_loss', math.nan):.4g}", f"{r.get('g_loss', math.nan):.4g}",
            f"{int(r.get('collapse_score', 0))}/14", quality_text(r),
            f"{r.get('diagnosis', '')} x{r.get('diagnosis_streak', 0)}")


def remaining_text(trials: list, total: int, max_epochs: int, elapsed: float) -> str:
    """The time left at the sweep's rate so far in trial-epochs per second: an upper bound, as stopped trials
    give their epochs back."""
    done = _epochs_done(trials)
    if not done:
        return "time left not known yet"
    left = sum(max_epochs - _epochs(t) for t in trials if t.status not in ("TERMINATED", "ERROR"))
    left += max(0, total - len(trials)) * max_epochs
    return f"at most about {_minutes(elapsed * left / done)} left"


def quality_text(result: Mapping[str, Any]) -> str:
    quality = result.get("quality", math.nan)
    return "not yet" if quality <= QUALITY_FLOOR or quality != quality else f"{quality:.4f}"


def _epochs(trial: Any) -> int:
    epoch = (trial.last_result or {}).get("epoch")
    return int(epoch) + 1 if epoch is not None else 0


def _epochs_done(trials: list) -> int:
    return sum(_epochs(t) for t in trials)


def _name(trial: Any) -> str:
    return f"t{trial_number(trial):03d}"


def _values(config: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
