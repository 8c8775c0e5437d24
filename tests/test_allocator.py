"""The allocator set-up: read from the processes themselves (a trial's Ray worker, a re-executed command), and
measured in the page faults glibc takes when a process frees and reallocates large buffers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_sweep import cmdline, descendants, wait_for
from tuner import allocator

GLIBC = sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the set-up is glibc's tunables")

# Frees and reallocates a 64 MiB buffer, touching every page, and prints the minor page faults it cost.
CHURN = """
import resource
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    buffer = bytearray(64 << 20)
    del buffer
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def started_with_setup(pid: int) -> bool:
    """Whether `pid` started with the set-up, read from the environment the kernel holds for it. glibc cuts the
    variable there at its first `:` once it has parsed it, so a parsed set-up shows as a prefix of it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)
    value = found.get(allocator.VARIABLE, "")
    return bool(value) and allocator.KEEP.startswith(value)


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (allocator.VARIABLE, allocator.SWITCH)}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_the_setup_is_off_when_switched_off_and_keeps_a_users_own_tunables():
    assert allocator.environment({"GANTUNE_MALLOC": "system"}) == {}
    if GLIBC:
        assert allocator.environment({}) == {"GLIBC_TUNABLES": allocator.KEEP}
        assert allocator.environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {
            "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}


def test_a_bad_switch_gets_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "tuner.cli", "train", "--help"], capture_output=True, text=True,
                          env=plain_env(GANTUNE_MALLOC="fast"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["gantune: error: GANTUNE_MALLOC='fast' is not one of keep, system"]


@needs_glibc
def test_a_process_started_with_the_setup_keeps_freed_buffers_instead_of_faulting_them_back_in():
    def faults(env: dict[str, str]) -> int:
        return int(subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, env=env,
                                  check=True).stdout)

    system, kept = faults(plain_env()), faults(plain_env(**allocator.environment({})))
    assert system > 20 * 16384 * 0.9  # every 64 MiB buffer faulted in afresh (4 KiB pages)
    assert kept < system / 10, (kept, system)  # glibc took the tunables (it ignores a misspelt one silently)


@needs_glibc
def test_a_sweeps_driver_and_its_trial_workers_run_with_the_setup(tmp_path):
    args = ["toy2d", "--trials", "1", "--epochs", "400", "--set", "DATASET_SIZE=2000", "--set", "QUALITY_EVERY=0",
            "--no-asha", "--name", "malloc"]
    driver = subprocess.Popen([sys.executable, "-m", "tuner.cli", "sweep", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=plain_env(), start_new_session=True)
    try:
        workers: list[int] = []

        def found() -> bool:
            workers[:] = [p for p in descendants(driver.pid) if "ImplicitFunc" in cmdline(p)]
            return bool(workers)

        wait_for(found, 300, "the trial's worker")
        assert started_with_setup(driver.pid)  # `gantune` re-executed itself with it
        assert all(started_with_setup(pid) for pid in workers)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
