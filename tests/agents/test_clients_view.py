"""`GET /api/v1/clients` on a real `reconciler serve`, and `reconciler clients --server` against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from runtime.daemon_process import VIEWER, serve, wait_for


def test_clients_endpoint_lists_each_target_for_a_viewer(tmp_path: Path) -> None:
    with serve(tmp_path) as daemon:
        headers = {"Authorization": f"Bearer {VIEWER}"}
        assert httpx.get(f"{daemon.base}/api/v1/clients").status_code == 401

        def synced() -> list[dict] | None:
            rows = httpx.get(f"{daemon.base}/api/v1/clients", headers=headers, timeout=10).json()
            return rows if rows and rows[0]["last_sync"] else None

        [row] = wait_for(synced)
        assert row["object"] == "AgentConfig/team" and row["client"] == "claude-code"
        assert row["scope"] == "project" and row["root"] == str(tmp_path / "project")
        assert {f["path"]: f["exists"] for f in row["files"]} == {f"{tmp_path / 'project'}/.mcp.json": True}
        # a second run (the SyncJob's) may have found nothing to do
        assert row["last_sync"]["outcome"] in ("succeeded", "noop")
        assert row["drifted"] == []
        assert row["validation"]["held"] is False and row["validation"]["state"] in ("skipped", "passed")

        cli = subprocess.run([sys.executable, "-m", "reconciler.cli", "clients", str(tmp_path / "specs"),
                              "--server", daemon.base, "-o", "json"],
                             env={**os.environ, "RECONCILER_TOKEN": VIEWER}, capture_output=True, text=True,
                             timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)[0]["client"] == "claude-code"
