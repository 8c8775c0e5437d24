"""Shared fixtures: tiny real configs, and an isolated working directory per test."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Two xdist workers on two cores: one intra-op thread each keeps them from fighting.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


# Tests that must not run beside each other, by file: each group runs on one xdist worker, one test at a time
# (two Ray runtimes, or two browsers, on two cores starve each other). The `xdist_group` mark would say this per
# test, but pytest 9.2 with pytest-xdist 3.8 drops the mark's nodeid suffix, so `--dist loadgroup` spreads a
# group over the workers; the scheduler below reads the group from here instead.
GROUPS = {"test_sweep.py": "ray", "test_faults.py": "ray",
          "test_allocator.py": "ray", "test_autofix_apply.py": "ray", "test_triage.py": "ray",
          "test_seed_project.py": "ray", "test_integrated.py": "ray", "test_ui_browser.py": "browser"}


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        """A test's scope is its file's group, else the test itself (so ungrouped tests spread like `load`)."""

        def _split_scope(self, nodeid: str) -> str:
            return GROUPS.get(nodeid.split("::")[0].rsplit("/", 1)[-1], nodeid)

    return ByGroup(config, log)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    # one classifier cache for the whole session, shared by the xdist workers (their base temps are siblings)
    monkeypatch.setenv("GANTUNE_CACHE", str(tmp_path_factory.getbasetemp().parent / "gantune-cache"))


def tiny_overrides(**extra) -> dict:
    """A few-second wgan config: 16x16 sprites, narrow networks, few images."""
    base = {"image_size": 16, "gen_feature_maps": 8, "disc_feature_maps": 8, "latent_dim": 16,
            "dataset_size": 128, "batch_size": 32, "num_epochs": 2, "num_samples": 32, "checkpoint_every": 1,
            "quality_every": 0}
    return {**base, **extra}
