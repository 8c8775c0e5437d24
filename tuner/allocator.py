"""Keep freed memory in the process: the allocator set-up every process gantune trains in starts with.

A CPU PyTorch step frees and reallocates the same large activation buffers every step. glibc's malloc serves a
buffer over its mmap threshold (128 KiB to 32 MiB, adjusted as it goes) with a fresh mmap and unmaps it on free,
so every step faults its buffers back in page by page: on two cores that system time was 40% of a CPU epoch
(BENCHMARKS.md, "Allocator"). Raising the mmap and trim thresholds keeps freed buffers in the heap for the next
step. glibc reads its tunables only when a process starts, so the set-up is an environment variable that must be
in place before the interpreter runs: the `gantune` command re-executes itself once with it, and Ray trial
workers and the trainers gantune starts receive it in their environment.

GANTUNE_MALLOC=system turns it off. A GLIBC_TUNABLES the user set is left as it is (and passed on unchanged).
"""

from __future__ import annotations

import os
import sys

from trainables.errors import ConfigError

SWITCH = "GANTUNE_MALLOC"  # "keep" (the default): keep freed memory; "system": glibc's own defaults
MODES = ("keep", "system")
VARIABLE = "GLIBC_TUNABLES"
# No mmap for any size and no trimming of the heap's top: freed buffers stay mapped for the next step.
KEEP = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"


def mode(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """GANTUNE_MALLOC's value, checked: "keep" unless the user chose "system"."""
    value = environ.get(SWITCH, "keep").strip().lower() or "keep"
    if value not in MODES:
        raise ConfigError(f"{SWITCH}={environ[SWITCH]!r} is not one of {', '.join(MODES)}")
    return value


def _glibc() -> bool:
    try:
        return sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError):
        return False


def environment(environ: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """The variables a training process should start with: {} when switched off or not on glibc; the user's own
    GLIBC_TUNABLES when set, else the set-up that keeps freed memory."""
    if mode(environ) == "system" or not _glibc():
        return {}
    return {VARIABLE: environ.get(VARIABLE) or KEEP}


def restart_with_setup() -> None:
    """Re-execute this command line with the set-up in the environment, when it is due and missing.

    Runs at most once: the new process finds GLIBC_TUNABLES set and goes on. Call it before heavy imports; it
    does not return when it re-executes.
    """
    wanted = environment()
    if not wanted or os.environ.get(VARIABLE) or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), {**os.environ, **wanted})


def ray_runtime_env() -> dict[str, dict[str, str]]:
    """Ray's job runtime_env giving every trial worker the set-up (workers on a joined cluster included)."""
    wanted = environment()
    return {"env_vars": wanted} if wanted else {}
