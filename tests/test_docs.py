"""The user's documents: the README is a guide a user reads, and neither it nor BENCHMARKS.md is a diary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# work dated by its round ("session 8", "this round", "new this session") or a list of CI runs
DIARY = re.compile(r"\bsessions? \d+|\bthis (session|round)\b|\bround \d+\b|\bCI runs?\b", re.IGNORECASE)


def test_the_readme_is_a_short_guide_that_links_its_reference_pages():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines; reference material belongs in docs/"
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", "\n".join(lines)))
    assert linked and all((ROOT / "docs" / page).is_file() for page in linked), linked
    assert all(any(command in line for line in lines[:20]) for command in ("make demo", "make test"))


@pytest.mark.parametrize("name", ["README.md", "BENCHMARKS.md"])
def test_no_line_dates_work_by_its_round(name):
    found = [f"{i}: {line}" for i, line in enumerate((ROOT / name).read_text().splitlines(), 1) if DIARY.search(line)]
    assert not found, "\n".join(found)


def test_ci_runs_the_readmes_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
