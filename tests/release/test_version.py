"""`reconciler --version`: the installed distribution's version, the one a release publishes."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_version_option_prints_the_package_metadata_version_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reconciler {importlib.metadata.version('reconciler')}\n"


def test_installed_metadata_version_is_the_one_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert importlib.metadata.version("reconciler") == project["version"]
