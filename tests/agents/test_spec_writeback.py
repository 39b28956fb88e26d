"""Clients' edits written back into the spec file, as users do it: `apply` under a
strategy, `review accept`. A write-back never changes another field of the spec (through
an alias), and a patch the spec file cannot take never fails the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ALIASED = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github: &gh
      command: npx
      args: ["-y", "server-github"]
    github-readonly: *gh
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: codex, scope: project, root: {root}}}
  conflictPolicy:
    default: {policy}
"""

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    env.pop("RECONCILER_PLUGINS", None)
    (tmp_path / "home").mkdir()
    (tmp_path / "specs").mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    return run


def pending(cli: Run) -> list[dict]:
    listed = cli("review", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return [p for p in json.loads(listed.stdout) if p["status"] == "pending"]


def aliased(tmp_path: Path, cli: Run, policy: str) -> tuple[Path, str]:
    """The aliased spec applied, then `--write` added to github's args in `.mcp.json`."""
    spec = tmp_path / "specs" / "a.yaml"
    text = ALIASED.format(root=tmp_path / "proj", policy=policy)
    spec.write_text(text)
    os.utime(spec, (1_000_000_000, 1_000_000_000))  # older than the edit below
    assert cli("apply", "specs").returncode == 0
    mcp = tmp_path / "proj" / ".mcp.json"
    body = json.loads(mcp.read_text())
    body["mcpServers"]["github"]["args"].append("--write")
    mcp.write_text(json.dumps(body, indent=2) + "\n")
    return spec, text


def readonly_args(tmp_path: Path) -> list[str]:
    return json.loads((tmp_path / "proj" / ".mcp.json").read_text())["mcpServers"]["github-readonly"]["args"]


def test_accept_refuses_an_edit_of_an_anchored_server_and_names_the_anchor(tmp_path: Path, cli: Run) -> None:
    spec, text = aliased(tmp_path, cli, "manual-review")
    assert cli("apply", "specs").returncode == 0
    [proposal] = pending(cli)
    server = {"command": "npx", "args": ["-y", "server-github", "--write"]}
    assert proposal["patch"] == {"mcpServers.github": server}
    accepted = cli("review", "accept", proposal["id"], "--specs", "specs")
    assert accepted.returncode == 1
    assert "spec.mcpServers.github holds the anchor &gh, which spec.mcpServers.github-readonly also uses" in \
        accepted.stderr, accepted.stderr
    assert spec.read_text() == text
    assert readonly_args(tmp_path) == ["-y", "server-github"]
    assert [p["id"] for p in pending(cli)] == [proposal["id"]]


def test_last_write_wins_proposes_an_edit_it_cannot_write_back_and_the_run_succeeds(
        tmp_path: Path, cli: Run) -> None:
    spec, text = aliased(tmp_path, cli, "last-write-wins")
    for _ in range(2):  # the next run too: nothing left failing
        done = cli("apply", "specs")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "proposed: cannot write it into the spec file:" in done.stdout and "&gh" in done.stdout
    assert spec.read_text() == text
    assert readonly_args(tmp_path) == ["-y", "server-github"]
    assert "--write" in (tmp_path / "proj" / ".mcp.json").read_text()  # the edit stays, proposed
    [proposal] = pending(cli)
    assert proposal["key"].endswith(".mcp.json#/mcpServers/github")


RULES = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    docs: {{url: "https://docs.example.com/mcp"}}
  rules:
    - name: house-style   # how we write code
      content: |
        # House style
        - typed python
    - name: sql-migrations
      description: Rules for database migrations
      content: |
        Never edit a released migration.
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: codex, scope: project, root: {root}}}
  conflictPolicy:
    default: {policy}
"""


LINE = "- no print debugging"
CONTENT = f"# House style\n- typed python\n{LINE}\n"  # house-style's content once LINE is added


def add_line(claude: Path) -> None:
    """A person adds LINE to the house-style rule in the reconciler's block of CLAUDE.md."""
    claude.write_text(claude.read_text().replace("- typed python\n", f"- typed python\n{LINE}\n"))


def with_line(text: str) -> str:
    return text.replace("        - typed python\n", f"        - typed python\n        {LINE}\n")


def with_rules(tmp_path: Path, cli: Run, policy: str) -> tuple[Path, str, Path]:
    spec = tmp_path / "specs" / "a.yaml"
    text = RULES.format(root=tmp_path / "proj", policy=policy)
    spec.write_text(text)
    os.utime(spec, (1_000_000_000, 1_000_000_000))  # older than the edits below
    assert cli("apply", "specs").returncode == 0
    return spec, text, tmp_path / "proj" / "CLAUDE.md"


@pytest.mark.parametrize("policy", ["last-write-wins", "priority"])
def test_a_line_added_in_the_claude_block_becomes_the_rules_content_in_the_spec_and_in_codex(
        tmp_path: Path, cli: Run, policy: str) -> None:
    spec, text, claude = with_rules(tmp_path, cli, policy)
    add_line(claude)
    done = cli("apply", "specs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert spec.read_text() == with_line(text)
    assert f"- typed python\n{LINE}\n" in (tmp_path / "proj" / "AGENTS.md").read_text()
    assert cli("plan", "--detailed-exitcode", "specs").returncode == 0


def test_manual_review_proposes_the_changed_rules_content_and_accept_writes_it(
        tmp_path: Path, cli: Run) -> None:
    spec, text, claude = with_rules(tmp_path, cli, "manual-review")
    add_line(claude)
    plan = cli("plan", "specs")
    assert f"spec.rules[house-style].content = {json.dumps(CONTENT)}" in plan.stdout, plan.stdout
    assert cli("apply", "specs").returncode == 0
    [proposal] = pending(cli)
    assert proposal["patch"] == {"rules[house-style].content": CONTENT}
    accepted = cli("review", "accept", proposal["id"], "--specs", "specs")
    assert accepted.returncode == 0, accepted.stderr
    assert spec.read_text() == with_line(text)
    assert LINE in (tmp_path / "proj" / "AGENTS.md").read_text()


def test_edits_of_several_rules_in_one_block_are_one_proposal_of_each_changed_field(
        tmp_path: Path, cli: Run) -> None:
    spec, text, claude = with_rules(tmp_path, cli, "manual-review")
    claude.write_text(claude.read_text().replace("- typed python\n", "- typed python, always\n")
                      .replace("> Rules for database migrations", "> Migrations")
                      .replace("released migration.", "released migration; add one."))
    assert cli("apply", "specs").returncode == 0
    [proposal] = pending(cli)
    assert proposal["patch"] == {"rules": {
        "rules[house-style].content": "# House style\n- typed python, always\n",
        "rules[sql-migrations].description": "Migrations",
        "rules[sql-migrations].content": "Never edit a released migration; add one.\n"}}
    assert cli("review", "accept", proposal["id"], "--specs", "specs").returncode == 0
    assert spec.read_text() == (text.replace("- typed python\n", "- typed python, always\n")
                                .replace("Rules for database migrations\n", "Migrations\n")
                                .replace("released migration.", "released migration; add one."))


def test_a_block_edit_that_maps_to_no_rule_is_proposed_with_an_error_and_the_rest_still_syncs(
        tmp_path: Path, cli: Run) -> None:
    spec, text, claude = with_rules(tmp_path, cli, "last-write-wins")
    end = "<!-- reconciler:end team -->"
    claude.write_text(claude.read_text().replace(end, f"## testing\n\nWrite a test first.\n{end}"))
    mcp = tmp_path / "proj" / ".mcp.json"
    body = json.loads(mcp.read_text())
    body["mcpServers"]["docs"]["url"] = "https://docs.example.org/mcp"
    mcp.write_text(json.dumps(body, indent=2) + "\n")
    done = cli("apply", "specs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert spec.read_text() == text.replace("docs.example.com", "docs.example.org")  # the server synced
    assert "docs.example.org" in (tmp_path / "proj" / ".codex" / "config.toml").read_text()
    assert "## testing" in claude.read_text()  # the block edit stays, proposed
    [proposal] = pending(cli)
    assert proposal["key"].endswith("CLAUDE.md#block") and proposal["patch"] is None
    assert ("proposed: cannot read the block back into the spec's rules: the block's sections (house-style, "
            "sql-migrations, testing) are not the spec's rules (house-style, sql-migrations)") in done.stdout
    assert cli("apply", "specs").returncode == 0
