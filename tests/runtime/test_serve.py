"""`reconciler serve --git` end to end: a commit is reconciled, the API steers, SIGTERM stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import git
import httpx
import pytest

ADMIN, VIEWER = "e2e-admin-token-1", "e2e-viewer-token-1"
SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers:
    github: {{command: npx, args: [{args}]}}
  targets: [{{client: claude-code, scope: project, root: "{root}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: team-often}}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  interval: 2s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def commit(repo: git.Repo, root: Path, args: str, message: str) -> str:
    specs = Path(repo.working_tree_dir) / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "agents.yaml").write_text(SPEC.format(args=args, root=root))
    repo.index.add(["specs/agents.yaml"])
    return str(repo.index.commit(message).hexsha)


def wait(predicate, timeout: float = 20.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


@pytest.fixture
def daemon(tmp_path: Path):
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    root = tmp_path / "project"
    first = commit(repo, root, '"-y", "gh"', "first")
    port = free_port()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"), "ADMIN_T": ADMIN,
           "VIEWER_T": VIEWER}
    env.pop("RECONCILER_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "serve", "--git", str(tmp_path / "repo"),
         "--path", "specs", "--poll", "1s", "--port", str(port), "--admin-token-env", "ADMIN_T",
         "--viewer-token-env", "VIEWER_T"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: _ready(base), timeout=30)
        yield repo, root, base, first, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def history(base: str) -> list[dict]:
    response = httpx.get(f"{base}/api/v1/objects/AgentConfig/team/history",
                         headers={"Authorization": f"Bearer {VIEWER}"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_serve_follows_git_and_obeys_the_api(daemon) -> None:
    repo, root, base, first, proc = daemon
    runs = wait(lambda: [r for r in history(base) if r["revision"] == first])
    assert runs[-1]["outcome"] == "succeeded" and (root / ".mcp.json").exists()
    second = commit(repo, root, '"-y", "gh", "--v2"', "second")
    wait(lambda: [r for r in history(base) if r["revision"] == second and r["trigger"] == "git"])
    assert "--v2" in (root / ".mcp.json").read_text()

    # A hand edit of a target file is picked up within a second or two and re-imposed.
    mcp = root / ".mcp.json"
    mcp.write_text(mcp.read_text().replace('"npx"', '"evil"'))
    wait(lambda: [r for r in history(base) if r["trigger"] == "file-watch" and r["outcome"] != "running"],
         timeout=10)
    assert '"evil"' not in mcp.read_text()

    viewer = {"Authorization": f"Bearer {VIEWER}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert httpx.post(f"{base}/api/v1/objects/AgentConfig/team/run").status_code == 401
    assert httpx.post(f"{base}/api/v1/objects/AgentConfig/team/run", headers=viewer).status_code == 403
    assert httpx.post(f"{base}/api/v1/objects/AgentConfig/team/run", headers=admin).status_code == 202
    wait(lambda: [r for r in history(base) if r["trigger"] == "api" and r["outcome"] != "running"])

    # The interval job runs on schedule; suspended, it stops.
    wait(lambda: [r for r in history(base) if r["trigger"] == "schedule"], timeout=20)
    assert httpx.post(f"{base}/api/v1/objects/SyncJob/team-often/suspend", headers=admin).status_code == 200
    time.sleep(1.0)
    scheduled = len([r for r in history(base) if r["trigger"] == "schedule"])
    time.sleep(5)
    assert len([r for r in history(base) if r["trigger"] == "schedule"]) == scheduled

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
