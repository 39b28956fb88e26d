"""The README's quickstart, run exactly as the README gives it, on embedded defaults."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def readme_quickstart() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("Quickstart, from the checkout", 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert match, "the README has no quickstart code block"
    return match.group(1).strip()


def test_quickstart_runs_the_main_job_on_embedded_defaults(tmp_path: Path) -> None:
    command = readme_quickstart()
    assert command == "reconciler quickstart"
    work = tmp_path / "checkout"
    shutil.copytree(REPO / "specs", work / "specs")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    for name in ("AED_DATABASE_URL", "EGEN_SERVICE_KEY", "RECONCILER_DATABASE_URL", "RECONCILER_PLUGINS",
                 "ARCHIVE_DATABASE_URL", "RBAC_DATABASE_URL"):
        env.pop(name, None)
    first = subprocess.run(command, shell=True, cwd=work, env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "== plan ==" in out and "== apply ==" in out and "== status ==" in out
    assert "AedSourceBinding/aed-registry: 81464 to create" in out
    assert "AedSourceBinding/aed-registry: succeeded (81464 created" in out
    assert "AgentConfig/team-agents: succeeded" in out
    assert re.search(r"SyncJob/aed-nightly\s+True", out)
    assert "note: RbacMapping/archive-rbac skipped: RbacMapping does not run on the embedded" in first.stderr
    assert (tmp_path / "state" / "aed.db").exists()
    assert (work / "sandbox" / "project" / ".mcp.json").exists()
    second = subprocess.run(command, shell=True, cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "AedSourceBinding/aed-registry: noop" in second.stdout
    assert "AgentConfig/team-agents: noop" in second.stdout
