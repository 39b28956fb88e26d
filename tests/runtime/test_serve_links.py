"""`reconciler serve` watches a symlinked client file where its target lives.

Dotfiles managers keep `~/.claude.json` in a repository and link it into $HOME; the user
edits the repository's copy (or through the link, which writes the same file). The daemon
watches folders, and the edit happens in the target's folder: it must be watched too, or a
hand edit waits for the next schedule.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {name: team}
spec:
  mcpServers:
    github: {command: npx, args: ["-y", "server-github@1"]}
  targets: [{client: claude-code, scope: user}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_edit_of_a_linked_files_target_is_reverted_by_the_watcher(tmp_path: Path) -> None:
    home, dotfiles, specs = tmp_path / "home", tmp_path / "dotfiles", tmp_path / "specs"
    home.mkdir()
    dotfiles.mkdir()
    specs.mkdir()
    (specs / "agents.yaml").write_text(SPEC)
    real = dotfiles / "claude.json"
    real.write_text(json.dumps({"theme": "dark", "mcpServers": {}}, indent=2) + "\n")
    (home / ".claude.json").symlink_to(real)
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs),
                             "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _ready(f"http://127.0.0.1:{port}"))
        _wait(lambda: "server-github@1" in real.read_text())  # the start-up run wrote through the link
        assert (home / ".claude.json").is_symlink()
        real.write_text(real.read_text().replace("server-github@1", "server-github@0"))  # in the repo
        _wait(lambda: "server-github@1" in real.read_text())
        assert (home / ".claude.json").is_symlink() and json.loads(real.read_text())["theme"] == "dark"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
