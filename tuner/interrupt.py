"""Stop signals during a sweep: SIGINT, SIGTERM and SIGHUP end it the way Ray ends an interrupted experiment
(the running trials stop, the experiment's state is saved for `--resume`), and the sweep knows it was interrupted,
by which signal, so its records can say so instead of reading the stopped trials as ASHA's.

Ray Tune catches SIGINT itself and asks the experiment to stop; it also stops on SIGUSR1, whatever else is set.
Here Ray's own SIGINT handler is turned off (TUNE_DISABLE_SIGINT_HANDLER) and each of the three signals is
recorded, then passed to Ray's SIGUSR1 handler. A second signal stops at once (KeyboardInterrupt), as Ray's does.

The signal received is kept in this process's environment (GANTUNE_INTERRUPTED), where the sweep's Ray callbacks
read it: a resumed sweep runs the callbacks Ray unpickled from the sweep's start, which hold no reference to the
`Interruption` of this process.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
VARIABLE = "GANTUNE_INTERRUPTED"


def received() -> str | None:
    """The stop signal this process received during its sweep (SIGINT, SIGTERM, SIGHUP), None if none."""
    return os.environ.get(VARIABLE) or None


class Interruption:
    """A context manager around `Tuner.fit()`: `received` names the first stop signal, None if none came."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    @property
    def received(self) -> str | None:
        return received()

    def __enter__(self) -> Interruption:
        os.environ.pop(VARIABLE, None)
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
            # Ray sets its own on entering its loop; until then a stale one (an earlier sweep's) would swallow a stop
            self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # the second signal: stop now
            self.__exit__()
            raise KeyboardInterrupt
        os.environ[VARIABLE] = signal.Signals(signum).name
        ray_stop = signal.getsignal(signal.SIGUSR1)
        if not callable(ray_stop):  # Ray's loop has not started (or has ended): nothing to stop gracefully
            raise KeyboardInterrupt
        ray_stop(signal.SIGUSR1, frame)


def exit_code(name: str | None) -> int:
    """The shell's code for a command ended by the signal: 130 for SIGINT, 143 SIGTERM, 129 SIGHUP; 0 for none."""
    return 128 + signal.Signals[name].value if name else 0
