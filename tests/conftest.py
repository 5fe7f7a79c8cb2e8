"""Shared paths and fixtures for the test suite."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = "/usr/bin/chromium"

# CI shares two cores with a notebook kernel: no per-example deadline, and a fixed
# example sequence so that a failure reproduces on the next run.
settings.register_profile("course", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("course")


def load_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; CI must have it (``.ci/run`` installs it), elsewhere the browser tests skip."""
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run should have installed Debian's chromium")
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
