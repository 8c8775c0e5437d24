"""`gantune watch`: follow a training run's log as it grows, diagnose every epoch, and call a failure the moment
the sweep's own stopper would (tuner/stopping.py's `stop_decision`: the same confirmation window and settling;
divergence at once; a collapse or dominance label once the samples agree, or, for labels the caller confirmed,
as autofix does with the broken run's label, from the losses alone).

The log is read from where the last read ended: each poll costs one stat, and a read of only the bytes appended
since (a row being written is kept for the next poll). A log that shrinks was restarted: it is read again from
its start. Pure of the command line: `watch` yields one `Epoch` per new row and a `Failure` when confirmed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.core.stopping import StopPolicy, Verdict, stop_decision


@dataclasses.dataclass(frozen=True)
class Epoch:
    row: Mapping[str, float]
    report: Mapping[str, Any]  # the sweep's per-epoch report: diagnosis, streak, onset, confidence, evidence


@dataclasses.dataclass(frozen=True)
class Failure:
    verdict: Verdict
    frame: pd.DataFrame  # the whole log so far


class Tail:
    """A growing text file, read from where the last read ended; complete lines only."""

    def __init__(self, path: Path, not_before: float = 0.0) -> None:
        self.path, self.not_before = path, not_before  # a log older than `not_before` is a previous run's
        self.offset, self.partial, self.restarted = 0, b"", False

    def read(self) -> str:
        """The complete lines appended since the last read ("" when none); sets `restarted` when the file
        shrank (a new run rewrote it), in which case the text is the new file's from its start."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return ""
        if stat.st_mtime < self.not_before or stat.st_size == self.offset:
            return ""
        self.restarted = stat.st_size < self.offset
        if self.restarted:
            self.offset, self.partial = 0, b""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = self.partial + f.read()
        self.offset += len(data) - len(self.partial)
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut].decode("utf-8", errors="replace")


class Watcher:
    """The log's rows so far and the stopper's view of them. `model`: the gantune model writing the log, whose own
    reading of it the diagnosis uses (the integrated system: per generator, as autofix does); None: the MODEL of
    the run's config.json beside the log, read when the first rows arrive (gantune writes it before them)."""

    def __init__(self, source: Path, family: str | None, policy: StopPolicy, model: str | None = None) -> None:
        self.source, self.family, self.policy, self.given_model = source, family, policy, model
        self.text = ""
        self.reset()

    def reset(self) -> None:
        from tuner.epoch_report import Report

        self.text, self.seen, self.report, self.model = "", 0, Report(), self.given_model

    def add(self, text: str) -> Iterator[Epoch | Failure]:
        """The new rows' epochs, and a Failure after the epoch that confirms one."""
        from tuner.core.logs import infer_family, parse_log
        from tuner.external import row_proxy

        self.text += text
        frame = parse_log(self.text, self.source) if self.text.count("\n") > 1 else pd.DataFrame()
        if frame.empty:
            return
        family = self.family or infer_family(frame)
        if self.seen == 0 and self.model is None:
            self.model = run_model(self.source)
        for row in frame.iloc[self.seen:].to_dict("records"):
            self.seen += 1
            row = {str(k): float(v) for k, v in row.items()}
            result = self.report.add(row, family, objective=row_proxy(row, family), model=self.model)
            yield Epoch(row, result)
            verdict = stop_decision(result, self.policy)
            if verdict is not None:
                yield Failure(verdict, frame.iloc[:self.seen])
                return


def run_model(log: Path) -> str | None:
    """The MODEL of the gantune run whose log this is (its config.json beside it), else None."""
    from tuner.user_config import for_run

    model = for_run(None, log.parent).get("MODEL")
    return model if isinstance(model, str) else None


def watch(tail: Tail, watcher: Watcher, running: Callable[[], bool], poll_s: float = 1.0,
          max_rows: int | None = None) -> Iterator[Epoch | Failure]:
    """Follow the log while `running()` (the trainer is alive), then read what it left; ends at a Failure or
    after `max_rows` rows."""
    while True:
        alive = running()
        text = tail.read()
        if tail.restarted:
            watcher.reset()
        for event in watcher.add(text) if text else ():
            yield event
            if isinstance(event, Failure) or (max_rows is not None and watcher.seen >= max_rows):
                return
        if not alive:
            return
        time.sleep(poll_s)
