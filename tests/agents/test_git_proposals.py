"""Accepting a proposal in git mode (issue 18): a commit on a new branch, never the watched one.

A real `reconciler serve --git <bare repo> --branch main --path specs` with an AgentConfig
under manual-review. A hand edit of Claude's settings becomes a proposal; accept answers
with a branch of the daemon's clone holding one new commit (the spec patch, comments kept)
and leaves the watched branch alone; with `--write-back review-branch` the commit is pushed
to that branch of the remote. `--write-back main` (the watched branch) is refused at start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import httpx
import pytest

from tests.agents.test_two_way import ADMIN, VIEWER, free_port, poll

SPEC = """\
# Team agents: reviewed by people
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
    - {{client: claude-code, scope: user, root: {home}}}
  conflictPolicy:
    default: manual-review
"""


class GitDaemon:
    def __init__(self, tmp_path: Path, bare: Path, home: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"), "ADMIN_T": ADMIN,
               "VIEWER_T": VIEWER, "HOME": str(home)}
        for name in ("RECONCILER_DATABASE_URL", "RECONCILER_REDIS_URL", "RECONCILER_MQTT_HOST",
                     "RECONCILER_ALERT_WEBHOOK_URL"):
            env.pop(name, None)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "serve", "--git", str(bare), "--branch", "main",
             "--path", "specs", "--port", str(self.port), "--admin-token-env", "ADMIN_T",
             "--viewer-token-env", "VIEWER_T", "--poll", "1s", *extra],
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
                             timeout=60)

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
def world(tmp_path: Path) -> Iterator[tuple[Path, git.Repo, Callable[..., GitDaemon]]]:
    home = tmp_path / "home"
    home.mkdir()
    work = git.Repo.init(tmp_path / "work", initial_branch="main")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    (tmp_path / "work" / "specs").mkdir()
    (tmp_path / "work" / "specs" / "agents.yaml").write_text(SPEC.format(home=home))
    work.index.add(["specs/agents.yaml"])
    work.index.commit("the team's agents")
    bare = git.Repo.clone_from(str(tmp_path / "work"), tmp_path / "remote.git", bare=True)
    started: list[GitDaemon] = []

    def start(*extra: str) -> GitDaemon:
        daemon = GitDaemon(tmp_path, Path(bare.git_dir), home, *extra)
        started.append(daemon)
        return daemon

    yield home, bare, start
    for daemon in started:
        daemon.stop()


def claude_toolsets(home: Path) -> str | None:
    path = home / ".claude.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("mcpServers", {}).get("github", {}).get("env", {}).get(
        "GITHUB_TOOLSETS")


def edit_claude(home: Path, value: str) -> None:
    path = home / ".claude.json"
    data = json.loads(path.read_text())
    data["mcpServers"]["github"]["env"]["GITHUB_TOOLSETS"] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


def pending_proposal(daemon: GitDaemon) -> dict[str, Any]:
    def pending() -> list[dict[str, Any]]:
        answer = daemon.request("GET", "/api/v1/proposals", token=VIEWER)
        assert answer.status_code == 200, answer.text
        return [p for p in answer.json()["items"] if p["key"].endswith(".claude.json#/mcpServers/github")]

    found = poll(pending, what="a pending proposal")
    assert len(found) == 1 and found[0]["status"] == "pending"
    return found[0]


def assert_one_commit_with_the_patch(repo: git.Repo, commit_sha: str, watched: str, proposal: dict) -> None:
    commit = repo.commit(commit_sha)
    assert [p.hexsha for p in commit.parents] == [watched]
    assert commit.author.name == "reconciler" and commit.author.email == "reconciler@localhost"
    assert proposal["id"] in commit.message and "AgentConfig/team" in commit.message
    assert "mcpServers.github" in commit.message
    changed = commit.parents[0].diff(commit)
    assert [d.b_path for d in changed] == ["specs/agents.yaml"]
    before = (commit.parents[0].tree / "specs/agents.yaml").data_stream.read().decode()
    after = (commit.tree / "specs/agents.yaml").data_stream.read().decode()
    # Exactly the toolsets value changed; every comment is kept where it was.
    assert after == before.replace("GITHUB_TOOLSETS: repos   # which toolsets",
                                   "GITHUB_TOOLSETS: repos,issues   # which toolsets"), after


def test_accept_in_git_mode_commits_on_a_new_branch_of_the_clone(world) -> None:
    home, bare, start = world
    watched = bare.commit("main").hexsha
    daemon = start()
    poll(lambda: claude_toolsets(home) == "repos", what="the first reconcile")
    edit_claude(home, "repos,issues")
    proposal = pending_proposal(daemon)

    answer = daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["proposal"]["status"] == "accepted"
    assert body["specFile"] is None
    change = body["gitCommit"]
    assert change["branch"] == f"reconciler/proposal-{proposal['id']}"
    assert change["pushedTo"] is None
    assert change["path"] == "specs/agents.yaml"
    assert "not reconciled" in body["note"] and "main" in body["note"]
    clone = git.Repo(change["repository"])
    assert clone.commit(change["branch"]).hexsha == change["commit"]
    assert_one_commit_with_the_patch(clone, change["commit"], watched, proposal)
    # The watched branch is untouched, here and in the remote; no branch was pushed.
    assert clone.commit("main").hexsha == watched
    assert bare.commit("main").hexsha == watched
    assert [h.name for h in bare.heads] == ["main"]
    # The proposal branch survives the daemon's next fetches (a new commit on main).
    work = git.Repo(bare.git_dir.replace("remote.git", "work"))
    (Path(work.working_tree_dir) / "README").write_text("hello\n")
    work.index.add(["README"])
    work.index.commit("unrelated")
    work.git.push(bare.git_dir, "main:main")
    poll(lambda: clone.commit("main").hexsha != watched, what="the daemon's fetch of the new commit")
    assert clone.commit(change["branch"]).hexsha == change["commit"]
    assert daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept").status_code == 409


def test_accept_with_write_back_pushes_to_that_branch(world) -> None:
    home, bare, start = world
    watched = bare.commit("main").hexsha
    daemon = start("--write-back", "review-branch")
    poll(lambda: claude_toolsets(home) == "repos", what="the first reconcile")
    edit_claude(home, "repos,issues")
    proposal = pending_proposal(daemon)

    answer = daemon.request("POST", f"/api/v1/proposals/{proposal['id']}/accept")
    assert answer.status_code == 200, answer.text
    change = answer.json()["gitCommit"]
    assert change["pushedTo"] == "review-branch"
    assert bare.commit("review-branch").hexsha == change["commit"]
    assert_one_commit_with_the_patch(bare, change["commit"], watched, proposal)
    assert bare.commit("main").hexsha == watched


def test_write_back_to_the_watched_branch_is_refused(world, tmp_path: Path) -> None:
    _home, bare, _start = world
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "serve", "--git", bare.git_dir, "--branch", "main",
         "--write-back", "main"],
        env={**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state-refused")},
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--write-back" in result.stderr and "watched branch" in result.stderr, result.stderr
    assert not (tmp_path / "state-refused" / "git").exists()


def test_review_accept_server_names_the_branch_and_commit(world, tmp_path: Path) -> None:
    home, bare, start = world
    watched = bare.commit("main").hexsha
    daemon = start()
    poll(lambda: claude_toolsets(home) == "repos", what="the first reconcile")
    edit_claude(home, "repos,issues")
    proposal = pending_proposal(daemon)

    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "review", "accept", proposal["id"], "--server", daemon.base,
         "--token-env", "ADMIN_T"],
        env={**os.environ, "ADMIN_T": ADMIN, "RECONCILER_STATE_DIR": str(tmp_path / "cli-state")},
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    branch = f"reconciler/proposal-{proposal['id']}"
    assert f"{proposal['id']}: accepted" in result.stdout
    assert branch in result.stdout and "not reconciled" in result.stdout, result.stdout
    clone_path = next(line.split(" of ", 1)[1].split(":", 1)[0] for line in result.stdout.splitlines()
                      if f"on branch {branch} of " in line)
    clone = git.Repo(clone_path)
    sha = clone.commit(branch).hexsha
    assert sha[:12] in result.stdout
    assert_one_commit_with_the_patch(clone, sha, watched, proposal)
    assert bare.commit("main").hexsha == watched
    # Deciding twice over the API is refused with the daemon's reason.
    again = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "review", "accept", proposal["id"], "--server", daemon.base,
         "--token-env", "ADMIN_T"], env={**os.environ, "ADMIN_T": ADMIN}, capture_output=True, text=True,
        timeout=120, cwd=tmp_path)
    assert again.returncode == 1 and "409" in again.stderr and "not pending" in again.stderr, again.stderr


def test_a_second_proposal_of_a_field_an_accepted_one_changed_is_refused_in_git_mode(world) -> None:
    """With --write-back, the first accepted proposal is a commit on the write-back branch;
    a later proposal of the same field was made against the watched spec, and its commit
    would overwrite the first one's change there: it is refused (409), nothing is pushed."""
    home, bare, start = world
    daemon = start("--write-back", "review-branch")
    poll(lambda: claude_toolsets(home) == "repos", what="the first reconcile")
    edit_claude(home, "repos,issues")
    first = pending_proposal(daemon)
    assert daemon.request("POST", f"/api/v1/proposals/{first['id']}/accept").status_code == 200
    pushed = bare.commit("review-branch").hexsha
    edit_claude(home, "repos,actions")
    second = poll(lambda: [p for p in daemon.request("GET", "/api/v1/proposals", token=VIEWER).json()["items"]
                           if p["id"] != first["id"]], what="a second proposal")[0]
    refused = daemon.request("POST", f"/api/v1/proposals/{second['id']}/accept")
    assert refused.status_code == 409, refused.text
    assert "mcpServers.github changed since the proposal was made" in refused.json()["detail"]
    assert bare.commit("review-branch").hexsha == pushed
    assert daemon.request("GET", "/api/v1/proposals", token=VIEWER).json()["items"][0]["status"] == "pending"
