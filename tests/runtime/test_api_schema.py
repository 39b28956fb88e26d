"""Schemathesis against the OpenAPI document a real `reconciler serve` process serves.

Every operation of `/openapi.json` is called with generated data, valid and invalid, with
an admin token and with none; no answer may be a server error (5xx). The budget is fixed
and the generation deterministic (`--generation-deterministic`, schemathesis's form of
hypothesis's derandomize), so a run tries the same inputs each time. Path parameters draw
from the served objects' kinds and names often enough to reach past the 404s. The SSE
stream (`/api/v1/events`) never ends, so it is left to its own tests.

Also here: the server errors such runs found, as plain regression tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.daemon_process import ADMIN, Daemon, serve

MAX_EXAMPLES = 20
CONFIG = """\
[dictionaries.kinds]
values = ["AgentConfig", "SyncJob"]

[dictionaries.names]
values = ["team", "team-daily"]

[parameters]
"path.kind" = { dictionary = "kinds", probability = 0.75 }
"path.name" = { dictionary = "names", probability = 0.75 }
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with serve(tmp_path_factory.mktemp("schema")) as running:
        yield running


def schemathesis(daemon: Daemon, tmp_path: Path,
                 token: str | None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               f"{daemon.base}/openapi.json", "--checks", "not_a_server_error", "--generation-deterministic",
               "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--exclude-path", "/api/v1/events",
               "--request-timeout", "30", "--no-color", "--report", "json", "--report-json-path", str(report)]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(report.read_text())


@pytest.mark.timeout(600)  # a generous deadline for a loaded machine; idle, a run takes seconds
@pytest.mark.parametrize("token", [ADMIN, None], ids=["admin", "no-token"])
def test_no_server_error_for_any_generated_request(daemon: Daemon, tmp_path: Path, token: str | None) -> None:
    done, report = schemathesis(daemon, tmp_path, token)
    operations, cases = report["operations"], report["test_cases"]
    print(f"schemathesis: {operations['tested']}/{operations['total']} operations, {cases['generated']} "
          f"requests, {len(report['failures'])} failures, {len(report['errors'])} errors")
    assert report["failures"] == [] and report["errors"] == [], done.stdout[-6000:]
    assert done.returncode == 0 and report["complete"], done.stdout[-3000:] + done.stderr[-2000:]
    assert operations["tested"] == operations["selected"] == operations["total"] - 1  # all but the SSE stream
    assert cases["generated"] > operations["tested"] * 5
    assert daemon.proc.poll() is None


# --- server errors found by such runs ----------------------------------------------------------


def test_a_schedule_interval_too_long_for_a_date_is_refused(daemon: Daemon) -> None:
    """An interval of 99999999999999h crashed the request (OverflowError); 999999999d was taken and
    then every status read and scheduler tick failed with 'date value out of range'."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    url = f"{daemon.base}/api/v1/objects/SyncJob/team-daily/schedule"
    for interval in ("99999999999999h", "999999999d", "1" * 400 + "s"):
        answer = httpx.put(url, headers=admin, json={"interval": interval})
        assert answer.status_code == 422, answer.text
        assert "interval" in answer.json()["detail"] and "at most 36500d" in answer.json()["detail"]
    assert httpx.put(url, headers=admin, json={"interval": "36500d"}).status_code == 200
    assert httpx.get(f"{daemon.base}/api/v1/objects", headers=admin).status_code == 200
    assert httpx.get(url, headers=admin).json()["override"] == {"interval": "36500d"}
    assert httpx.delete(url, headers=admin).status_code == 200
