"""A real `reconciler serve --specs` process on a free port, for tests that need a real server.

The process is started as a user would start it (`python -m reconciler.cli serve`), with an
admin and a viewer token and a git webhook secret from environment variables, and is
stopped with SIGTERM (killed only if it ignores that). `rss_bytes` reads the process's
resident memory from `/proc/PID/status`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADMIN, VIEWER, WEBHOOK_SECRET = "limits-admin-token-1", "limits-viewer-token-1", "limits-hook-secret-1"
SPECS = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers:
    github: {{command: npx, args: ["-y", "gh"]}}
  targets: [{{client: claude-code, scope: project, root: "{root}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: team-daily}}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  interval: 24h
"""


@dataclass(frozen=True)
class Daemon:
    proc: subprocess.Popen[str]
    base: str
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, step: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy (a generous deadline, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting for a condition")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def is_ready(base: str) -> bool:
    """`/readyz` answers 200 (False while the port is closed or the daemon is starting)."""
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve(tmp_path: Path, *, env: dict[str, str] | None = None, spec: str | None = None) -> Iterator[Daemon]:
    """`reconciler serve` on `spec` (default `SPECS`, a project-scope AgentConfig) as a process."""
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "agents.yaml").write_text(spec if spec is not None else SPECS.format(root=tmp_path / "project"))
    port = free_port()
    environ = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"), "ADMIN_T": ADMIN,
               "VIEWER_T": VIEWER, "HOOK_T": WEBHOOK_SECRET, **(env or {})}
    environ.pop("RECONCILER_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs), "--port", str(port),
         "--admin-token-env", "ADMIN_T", "--viewer-token-env", "VIEWER_T", "--webhook-secret-env", "HOOK_T",
         "--grace", "5s"],
        env=environ, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or is_ready(base))
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield Daemon(proc, base, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
