"""Two-way AgentConfig sync through a real `reconciler serve` (issue 18, core).

A folder of specs with all six clients at user scope under a temporary HOME. A hand edit
of Claude's MCP settings (`~/.claude.json`):
- under last-write-wins reaches the spec file (its comments kept) and the five other
  clients in the one run the file watcher starts;
- under manual-review becomes a proposal (API), which accept turns into the same result
  and reject reverts;
- under priority, edits of the same server in Claude (priority 5) and Gemini (3) seen in
  one run resolve to Claude's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.store import Store

ADMIN, VIEWER = "two-way-admin-token-1", "two-way-viewer-token-1"
OTHERS = {".codex/config.toml", ".qwen/settings.json", ".rovodev/mcp.json", ".gemini/settings.json",
          ".cursor/mcp.json"}

SPEC = """\
# Team agents: edited by hand and by the reconciler
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github:                      # the GitHub server
      command: npx
      args: ["-y", "@modelcontextprotocol/server-github"]
      env:
        GITHUB_TOOLSETS: repos   # which toolsets
  targets:
    - {{client: claude-code, scope: user, root: {home}, priority: 5}}
    - {{client: codex, scope: user, root: {home}}}
    - {{client: qwen-code, scope: user, root: {home}}}
    - {{client: rovo-dev, scope: user, root: {home}}}
    - {{client: gemini-cli, scope: user, root: {home}, priority: 3}}
    - {{client: cursor, scope: user, root: {home}}}
  conflictPolicy:
    default: {policy}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, tmp_path: Path, specs: Path, home: Path, *, poll_every: str = "1s") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "state"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        env = {**os.environ, "RECONCILER_STATE_DIR": str(self.state), "ADMIN_T": ADMIN, "VIEWER_T": VIEWER,
               "HOME": str(home), "PATH": os.path.dirname(sys.executable)}
        for name in ("RECONCILER_DATABASE_URL", "RECONCILER_REDIS_URL", "RECONCILER_MQTT_HOST",
                     "RECONCILER_ALERT_WEBHOOK_URL"):
            env.pop(name, None)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs), "--port", str(self.port),
             "--admin-token-env", "ADMIN_T", "--viewer-token-env", "VIEWER_T", "--poll", poll_every],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=tmp_path)
        poll(lambda: self.up() or self.proc.poll() is not None, what="the API")
        assert self.proc.poll() is None, self.log()

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, token: str = ADMIN) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"},
                             timeout=30)

    def runs(self) -> list[Any]:
        store = Store.open(f"sqlite:///{self.state / 'reconciler.db'}")
        try:
            return list(store.runs(limit=100))
        finally:
            store.close()

    def events(self) -> list[dict[str, Any]]:
        store = Store.open(f"sqlite:///{self.state / 'reconciler.db'}")
        try:
            return store.events(limit=200)
        finally:
            store.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Callable[[str], tuple[Path, Path, Callable[[], Daemon]]]]:
    started: list[Daemon] = []

    def make(policy: str) -> tuple[Path, Path, Callable[[], Daemon]]:
        home = tmp_path / "home"
        home.mkdir()
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "agents.yaml").write_text(SPEC.format(home=home, policy=policy))

        def start() -> Daemon:
            daemon = Daemon(tmp_path, specs, home)
            started.append(daemon)
            return daemon

        return home, specs / "agents.yaml", start

    yield make
    for daemon in started:
        daemon.stop()


def toolsets(home: Path, file: str) -> str | None:
    """GITHUB_TOOLSETS of the github server as the client's file holds it."""
    text = (home / file).read_text() if (home / file).exists() else ""
    if file.endswith(".toml"):
        import tomllib

        data = tomllib.loads(text or "")
        return data.get("mcp_servers", {}).get("github", {}).get("env", {}).get("GITHUB_TOOLSETS")
    data = json.loads(text or "{}")
    return data.get("mcpServers", {}).get("github", {}).get("env", {}).get("GITHUB_TOOLSETS")


def settled(daemon: Any) -> bool:
    """The start-up reconcile is recorded (not only written): a hand edit made before that is
    indistinguishable, for the daemon's file watcher, from the run's own writes."""
    runs = daemon.request("GET", "/api/v1/objects/AgentConfig/team/history").json()
    return isinstance(runs, list) and any(r.get("outcome") not in (None, "running") for r in runs)


def edit_claude(home: Path, value: str) -> None:
    path = home / ".claude.json"
    data = json.loads(path.read_text())
    data["mcpServers"]["github"]["env"]["GITHUB_TOOLSETS"] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


def everywhere(home: Path, value: str) -> bool:
    return all(toolsets(home, f) == value for f in {*OTHERS, ".claude.json"})


def test_last_write_wins_edit_reaches_spec_and_five_clients_in_one_run(world) -> None:
    home, spec, start = world("last-write-wins")
    daemon = start()
    poll(lambda: everywhere(home, "repos") and settled(daemon), what="the first reconcile")
    edit_claude(home, "repos,issues")
    poll(lambda: "GITHUB_TOOLSETS: repos,issues" in spec.read_text(), what="the spec write-back")
    text = spec.read_text()
    assert "# Team agents: edited by hand and by the reconciler" in text
    assert "# the GitHub server" in text and "# which toolsets" in text
    poll(lambda: everywhere(home, "repos,issues"), what="the five other clients")
    watched = [r for r in daemon.runs() if r.trigger == "file-watch" and r.counts.get("updated")]
    assert watched, daemon.log()
    # One run wrote the spec file and the five other clients (six files), and said why.
    one = [r for r in watched if r.counts["updated"] == 6 and r.outcome == "succeeded"]
    assert one, watched
    assert any("last-write-wins" in w and "accepted" in w for w in one[0].warnings), one[0].warnings
    # The decision is an event of its own (recorded and on the bus: SSE, Redis, MQTT).
    decided = [e for e in daemon.events() if e["type"] == "SyncDecision" and e["run_id"] == one[0].id]
    assert decided and decided[0]["data"]["outcome"] == "accepted", daemon.events()[:5]


def test_manual_review_proposal_accept_and_reject(world) -> None:
    home, spec, start = world("manual-review")
    daemon = start()
    poll(lambda: everywhere(home, "repos") and settled(daemon), what="the first reconcile")
    edit_claude(home, "repos,issues")

    def pending() -> list[dict[str, Any]]:
        answer = daemon.request("GET", "/api/v1/proposals", token=VIEWER)
        assert answer.status_code == 200, answer.text
        return [p for p in answer.json()["items"] if p["key"].endswith(".claude.json#/mcpServers/github")]

    found = poll(pending, what="a pending proposal")
    assert len(found) == 1
    proposal = found[0]
    assert proposal["client"] == "claude-code" and proposal["status"] == "pending"
    assert proposal["fileValue"]["env"]["GITHUB_TOOLSETS"] == "repos,issues"
    assert proposal["specValue"]["env"]["GITHUB_TOOLSETS"] == "repos"
    assert proposal["patch"]["mcpServers.github"]["env"]["GITHUB_TOOLSETS"] == "repos,issues"
    # Nothing else moved: the spec and the other clients keep the spec's value.
    assert "GITHUB_TOOLSETS: repos   # which toolsets" in spec.read_text()
    assert all(toolsets(home, f) == "repos" for f in OTHERS)
    # Viewers cannot decide.
    refused = daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept", token=VIEWER)
    assert refused.status_code == 403

    answer = daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept")
    assert answer.status_code == 200, answer.text
    assert answer.json()["proposal"]["status"] == "accepted"
    assert answer.json()["proposal"]["decidedBy"]  # the actor
    assert "GITHUB_TOOLSETS: repos,issues" in spec.read_text() and "# which toolsets" in spec.read_text()
    poll(lambda: everywhere(home, "repos,issues"), what="the accepted edit in every client")
    assert daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept").status_code == 409

    # A second edit, rejected: Claude's file goes back to the spec's value.
    edit_claude(home, "repos,issues,actions")
    second = poll(lambda: [p for p in pending() if p["id"] != proposal["id"]], what="a second proposal")[0]
    answer = daemon.request("POST", f"/api/v1/proposals/{second['id']}/reject")
    assert answer.status_code == 200, answer.text
    poll(lambda: toolsets(home, ".claude.json") == "repos,issues", what="the rejected edit reverted")
    assert everywhere(home, "repos,issues")
    assert "GITHUB_TOOLSETS: repos,issues " in spec.read_text() or "GITHUB_TOOLSETS: repos,issues #" in \
        spec.read_text()
    from sqlalchemy import select

    from reconciler.store import tables

    store = Store.open(f"sqlite:///{daemon.state / 'reconciler.db'}")
    try:
        with store.engine.connect() as conn:
            actions = {(r.action, r.actor) for r in conn.execute(select(tables.audit))}
    finally:
        store.close()
    assert {a for a, _ in actions} >= {"proposal-accept", "proposal-reject"}, actions


def test_priority_concurrent_edits_resolve_to_the_higher_priority_client(world) -> None:
    home, spec, start = world("priority")
    daemon = start()
    poll(lambda: everywhere(home, "repos") and settled(daemon), what="the first reconcile")
    daemon.stop()
    # Both clients edited while the daemon was down: the next run sees both at once.
    edit_claude(home, "from-claude")
    gemini = home / ".gemini/settings.json"
    data = json.loads(gemini.read_text())
    data["mcpServers"]["github"]["env"]["GITHUB_TOOLSETS"] = "from-gemini"
    gemini.write_text(json.dumps(data, indent=2) + "\n")
    start()
    poll(lambda: everywhere(home, "from-claude"), what="Claude's edit (priority 5) in every client")
    assert "GITHUB_TOOLSETS: from-claude" in spec.read_text()
    assert "# which toolsets" in spec.read_text()


# --- the daemon's spec after its own write-back ----------------------------------------------

PROJECT_SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github:
      command: npx
      args: ["-y", "server-github"]
    docs:
      url: https://docs.example.com/mcp
      transport: http
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: qwen-code, scope: project, root: {root}}}
    - {{client: gemini-cli, scope: project, root: {root}}}
  conflictPolicy:
    default: last-write-wins
"""
PROJECT_FILES = (".mcp.json", ".qwen/settings.json", ".gemini/settings.json")
EDITED = ["-y", "server-github", "--edit1"]


def server(root: Path, file: str, name: str) -> dict[str, Any]:
    path = root / file
    data = json.loads(path.read_text()) if path.exists() else {}
    found = data.get("mcpServers", {}).get(name, {})
    return found if isinstance(found, dict) else {}


def docs_url(root: Path, file: str) -> str | None:
    found = server(root, file, "docs")
    return found.get("url") or found.get("httpUrl")


def spec_args(spec: Path) -> Any:
    import yaml

    return yaml.safe_load(spec.read_text())["spec"]["mcpServers"]["github"].get("args")


def edit_server(root: Path, file: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / file
    data = json.loads(path.read_text())
    change(data["mcpServers"][name])
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_a_file_watch_run_after_a_write_back_plans_with_the_written_spec(tmp_path: Path) -> None:
    """Trial f-daemon-stale-spec: the daemon's own write-back is its spec at once. The spec
    folder is polled once an hour here, so every run below plans with the daemon's
    in-memory spec: a second edit must not take back the first one."""
    root, specs = tmp_path / "proj", tmp_path / "specs"
    for folder in (root / ".qwen", root / ".gemini", specs):  # the clients' folders exist, as in the trial
        folder.mkdir(parents=True)
    spec = specs / "a.yaml"
    spec.write_text(PROJECT_SPEC.format(root=root))
    daemon = Daemon(tmp_path, specs, tmp_path / "home", poll_every="1h")
    try:
        poll(lambda: all(server(root, f, "github") for f in PROJECT_FILES) and settled(daemon),
             what="the first reconcile")
        edit_server(root, ".mcp.json", "github", lambda s: s["args"].append("--edit1"))
        poll(lambda: "--edit1" in spec.read_text()
             and all(server(root, f, "github").get("args") == EDITED for f in PROJECT_FILES),
             what="the first edit in the spec and every client")
        edit_server(root, ".gemini/settings.json", "docs",
                    lambda s: s.update(httpUrl="https://docs2.example.com/mcp"))
        poll(lambda: "https://docs2.example.com/mcp" in spec.read_text()
             and all(docs_url(root, f) == "https://docs2.example.com/mcp" for f in PROJECT_FILES),
             what="the second edit in the spec and every client")
        assert "--edit1" in spec.read_text()
        for file in PROJECT_FILES:
            assert server(root, file, "github").get("args") == EDITED, (file, daemon.log())
        changes = [c for r in daemon.runs()
                   for c in daemon.request("GET", f"/api/v1/runs/{r.id}").json()["changes"]]
        taken_back = [c for c in changes if "--edit1" in json.dumps(c.get("before"))
                      and "--edit1" not in json.dumps(c.get("after"))]
        assert not taken_back, taken_back
    finally:
        daemon.stop()


def test_two_clients_edited_in_quick_succession_end_with_every_client_and_the_spec_on_the_newest(
        tmp_path: Path) -> None:
    """Trial t5-daemon/race.py: Claude edited, then Gemini as soon as the daemon started the
    run for Claude's edit, six times over. Each time, once the daemon is done, the spec and
    every client hold Gemini's value, the newest."""
    root, specs = tmp_path / "proj", tmp_path / "specs"
    for folder in (root / ".qwen", root / ".gemini", specs):
        folder.mkdir(parents=True)
    spec = specs / "a.yaml"
    spec.write_text(PROJECT_SPEC.format(root=root))
    daemon = Daemon(tmp_path, specs, tmp_path / "home", poll_every="1h")  # runs plan with its own spec
    try:
        poll(lambda: all(server(root, f, "github") for f in PROJECT_FILES) and settled(daemon),
             what="the first reconcile")
        for round_ in range(6):
            seen = daemon.log().count("target file changed outside the reconciler")
            edit_server(root, ".mcp.json", "github",
                        lambda s, r=round_: s.update(args=["-y", f"--claude{r}"]))
            poll(lambda n=seen: daemon.log().count("target file changed outside the reconciler") > n,
                 what="the run for Claude's edit")
            edit_server(root, ".gemini/settings.json", "github",
                        lambda s, r=round_: s.update(args=["-y", f"--gemini{r}"]))
            newest = ["-y", f"--gemini{round_}"]
            poll(lambda v=newest: spec_args(spec) == v
                 and all(server(root, f, "github").get("args") == v for f in PROJECT_FILES),
                 what=f"round {round_}: Gemini's edit in the spec and every client")
    finally:
        daemon.stop()


def test_an_edit_in_a_client_folder_the_first_reconcile_created_is_seen(tmp_path: Path) -> None:
    """A fresh project: `.qwen/` and `.gemini/` do not exist until the daemon's first
    reconcile writes them; an edit of Gemini's settings is still a hand edit it handles."""
    root, specs = tmp_path / "proj", tmp_path / "specs"
    for folder in (root, specs):
        folder.mkdir()
    spec = specs / "a.yaml"
    spec.write_text(PROJECT_SPEC.format(root=root))
    daemon = Daemon(tmp_path, specs, tmp_path / "home", poll_every="1h")
    try:
        poll(lambda: all(server(root, f, "github") for f in PROJECT_FILES) and settled(daemon),
             what="the first reconcile")
        edit_server(root, ".gemini/settings.json", "github", lambda s: s["args"].append("--edit1"))
        poll(lambda: spec_args(spec) == EDITED
             and all(server(root, f, "github").get("args") == EDITED for f in PROJECT_FILES),
             what="Gemini's edit in the spec and every client")
    finally:
        daemon.stop()
