"""`reconciler quickstart --port P` as a user runs it: the specs fetch from the emulator on P
(started there, or found there), a busy port holding something else is refused, a plan that
fails is shown and not applied; and `plan` never says "No objects to plan." above an error.

Real processes throughout: the command in a subprocess, the emulator (when the test provides
one) serving over HTTP from this process.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator.egen import EgenEmulator
from reconciler.emulator.faults import Faults

REPO = Path(__file__).parents[1]
ROWS = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port(base_url: str) -> int:
    return int(base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    work = tmp_path / "checkout"
    shutil.copytree(REPO / "specs", work / "specs")
    return work


def _reconciler(work: Path, tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "COLUMNS": "200", **extra_env}
    for name in ("AED_DATABASE_URL", "EGEN_SERVICE_KEY", "RECONCILER_DATABASE_URL", "RECONCILER_PLUGINS"):
        if name not in extra_env:
            env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)


def test_quickstart_fetches_from_the_emulator_it_starts_on_the_port(checkout: Path, tmp_path: Path) -> None:
    port = _free_port()
    result = _reconciler(checkout, tmp_path, "quickstart", "--port", str(port))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"AED emulator: http://127.0.0.1:{port}/" in result.stdout
    assert f"AedSourceBinding/aed-registry: source pointed at the emulator on port {port}" in result.stdout
    assert "AedSourceBinding/aed-registry: succeeded (81464 created" in result.stdout


def test_quickstart_uses_the_emulator_already_on_the_port(checkout: Path, tmp_path: Path) -> None:
    # An emulator with ROWS rows on P: whatever listens on 8089 (nothing, or a full
    # emulator), the rows loaded say which one the specs fetched from.
    with EgenEmulator(count=ROWS) as base_url:
        port = _port(base_url)
        result = _reconciler(checkout, tmp_path, "quickstart", "--port", str(port))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"port {port} is busy; using the AED emulator already there" in result.stderr
    assert f"AedSourceBinding/aed-registry: {ROWS} to create" in result.stdout
    assert f"AedSourceBinding/aed-registry: succeeded ({ROWS} created" in result.stdout


class _NotTheEmulator(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello from another service</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotTheEmulator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_quickstart_refuses_a_busy_port_that_is_not_the_emulator(checkout: Path, tmp_path: Path,
                                                                  other_server: int) -> None:
    result = _reconciler(checkout, tmp_path, "quickstart", "--port", str(other_server))
    assert result.returncode == 1
    assert (f"error: port {other_server} is busy (Address already in use) and what answers there is not "
            "the AED emulator; give a free port with --port") in result.stderr
    assert "== apply ==" not in result.stdout
    assert not (tmp_path / "state" / "aed.db").exists()
    assert not (checkout / "sandbox").exists()


def test_quickstart_shows_a_failed_plan_and_does_not_apply_it(checkout: Path, tmp_path: Path) -> None:
    with EgenEmulator(count=ROWS, faults=Faults.parse(["unregistered-key"])) as base_url:
        result = _reconciler(checkout, tmp_path, "quickstart", "--port", str(_port(base_url)))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    plan_section = out.split("== plan ==", 1)[1].split("== apply ==", 1)[0]
    apply_section = out.split("== apply ==", 1)[1].split("== status ==", 1)[0]
    assert "AedSourceBinding/aed-registry: plan failed: " in plan_section
    assert "SERVICE_KEY_IS_NOT_REGISTERED" in plan_section or "30" in plan_section
    assert "AgentConfig/team-agents: 19 to create" in plan_section
    assert "No objects to plan." not in out
    assert "AedSourceBinding/aed-registry: not applied: its plan failed" in apply_section
    assert "AgentConfig/team-agents: succeeded" in apply_section
    assert "AedSourceBinding/aed-registry: succeeded" not in out
    assert "error: AedSourceBinding/aed-registry: failed: " in result.stderr


def test_plan_whose_every_target_fails_prints_no_empty_plan_line(checkout: Path, tmp_path: Path) -> None:
    with EgenEmulator(count=ROWS, faults=Faults.parse(["unregistered-key"])) as base_url:
        spec = checkout / "specs" / "aed.yaml"
        spec.write_text(spec.read_text().replace("http://127.0.0.1:8089", base_url.split("/B552657")[0]))
        result = _reconciler(checkout, tmp_path, "plan", "specs", "--target", "AedSourceBinding/aed-registry",
                             EGEN_SERVICE_KEY="any", AED_DATABASE_URL=f"sqlite:///{tmp_path / 'aed.db'}")
    assert result.returncode == 1
    assert "No objects to plan." not in result.stdout
    assert result.stdout.strip() == ""
    assert "error: AedSourceBinding/aed-registry: failed: " in result.stderr
