"""`python child.py CMD ARGS...`: run CMD so that it dies with the process that started it.

A Ray trial that is stopped or killed must not leave the user's trainer running: on Linux, PR_SET_PDEATHSIG
(kept across exec) kills CMD when its parent goes; elsewhere the trial's own kill on exit is all there is.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            sys.exit(1)
    if len(sys.argv) < 2:
        sys.exit("usage: child.py CMD [ARGS...]")
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as err:
        sys.exit(f"cannot run {sys.argv[1]!r}: {err.strerror}")


if __name__ == "__main__":
    main()
