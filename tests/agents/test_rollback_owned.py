"""`reconciler rollback` puts back what the reconciler owns, as it was right after the run,
and nothing else: what a person added to a client file or to the spec file since stays.

A rollback used to restore whole-file snapshots: a key of the user's own added to Qwen's
settings after the snapshot, and a server and a comment added by hand to the spec file that
last-write-wins had written back into, were lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.conftest import Runner, agent_config
from reconciler.structs.runs import Outcome, Trigger

SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github: {{command: npx, args: [{args}]}}
{more}  targets:
    - {{client: qwen-code, scope: project, root: {root}}}
    - {{client: claude-code, scope: project, root: {root}}}
  conflictPolicy:
    default: last-write-wins
"""
Run = Callable[..., subprocess.CompletedProcess[str]]


def world(tmp_path: Path) -> tuple[Path, Path, Run]:
    root = tmp_path / "p"
    root.mkdir()
    (tmp_path / "specs").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    return root, tmp_path / "specs" / "a.yaml", run


def last_run(run: Run) -> str:
    history = run("history", "-o", "json")
    assert history.returncode == 0, history.stderr
    return str(json.loads(history.stdout)[0]["id"])


def write_spec(spec: Path, root: Path, args: str, more: str = "") -> None:
    spec.write_text(SPEC.format(args=args, more=more, root=root))
    os.utime(spec, (1_000_000_000, 1_000_000_000))  # older than every client edit below


def test_rollback_restores_the_reconcilers_keys_and_keeps_what_the_user_added(tmp_path: Path) -> None:
    root, spec, run = world(tmp_path)
    write_spec(spec, root, '"-y", "server-github"', "    docs: {url: 'https://docs.example.com/mcp'}\n")
    assert run("apply", "specs").returncode == 0
    first = last_run(run)
    write_spec(spec, root, '"-y", "server-github", "--v2"', "    extra: {command: extra-server}\n")
    assert run("apply", "specs").returncode == 0
    qwen = root / ".qwen" / "settings.json"
    body = json.loads(qwen.read_text())
    body["model"] = {"name": "qwen3-coder-plus"}  # the user's own, after the run
    body["mcpServers"]["mine"] = {"command": "my-server"}
    qwen.write_text("// my settings\n" + json.dumps(body, indent=2) + "\n")

    back = run("rollback", "AgentConfig/team", "--to", first, "--specs", "specs")

    assert back.returncode == 0, back.stderr
    text = qwen.read_text()
    assert text.startswith("// my settings\n")
    restored = json.loads(text.split("\n", 1)[1])
    assert restored["model"] == {"name": "qwen3-coder-plus"}
    assert restored["mcpServers"]["mine"] == {"command": "my-server"}
    assert restored["mcpServers"]["github"]["args"] == ["-y", "server-github"]
    assert "docs" in restored["mcpServers"] and "extra" not in restored["mcpServers"]


def test_rollback_undoes_only_the_spec_fields_write_back_changed(tmp_path: Path) -> None:
    root, spec, run = world(tmp_path)
    write_spec(spec, root, '"-y", "server-github"')
    assert run("apply", "specs").returncode == 0
    first = last_run(run)
    claude = root / ".mcp.json"
    body = json.loads(claude.read_text())
    body["mcpServers"]["github"]["args"] = ["-y", "server-github", "--edited"]
    claude.write_text(json.dumps(body, indent=2) + "\n")
    taken = run("apply", "specs")  # last-write-wins: the edit is written back into the spec
    assert taken.returncode == 0, taken.stderr
    assert "--edited" in spec.read_text()
    spec.write_text(spec.read_text().replace(
        "  targets:\n", "    # added by hand\n    mine: {command: my-server}\n  targets:\n"))

    back = run("rollback", "AgentConfig/team", "--to", first, "--specs", "specs")

    assert back.returncode == 0, back.stderr
    text = spec.read_text()
    assert "--edited" not in text and "server-github" in text
    assert "    # added by hand\n    mine: {command: my-server}\n" in text
    assert "--edited" not in (root / ".qwen" / "settings.json").read_text()


def test_rollback_is_refused_when_a_field_write_back_changed_was_edited_by_hand_since(tmp_path: Path) -> None:
    root, spec, run = world(tmp_path)
    write_spec(spec, root, '"-y", "server-github"')
    assert run("apply", "specs").returncode == 0
    first = last_run(run)
    claude = root / ".mcp.json"
    body = json.loads(claude.read_text())
    body["mcpServers"]["github"]["args"] = ["--edited"]
    claude.write_text(json.dumps(body, indent=2) + "\n")
    assert run("apply", "specs").returncode == 0
    spec.write_text(spec.read_text().replace("--edited", "--by-hand"))
    before = {p: p.read_bytes() for p in (spec, claude, root / ".qwen" / "settings.json")}

    back = run("rollback", "AgentConfig/team", "--to", first, "--specs", "specs")

    said = back.stdout + back.stderr
    assert back.returncode != 0
    assert "rollback refused" in said and "edited by hand in mcpServers.github" in said
    assert {p: p.read_bytes() for p in before} == before


def test_a_snapshot_from_before_ownership_was_recorded_restores_the_keys_owned_now(
        runner: Runner, tmp_path: Path) -> None:
    from sqlalchemy import select, update

    from reconciler.store import tables

    def body(args: list[str]) -> dict[str, Any]:
        return {"mcpServers": {"github": {"command": "npx", "args": args}},
                "targets": [{"client": "qwen-code", "scope": "project", "root": str(tmp_path)}]}

    first = runner(agent_config(body(["v1"])))
    assert runner(agent_config(body(["v2"]))).outcome is Outcome.SUCCEEDED
    with runner.store.engine.begin() as conn:  # as an older release stored them
        for row in conn.execute(select(tables.snapshots)).all():
            content = {k: v for k, v in row.content.items() if k not in ("owned", "ownedBefore", "spec")}
            conn.execute(update(tables.snapshots).where(tables.snapshots.c.id == row.id)
                         .values(content=content))
    settings = tmp_path / ".qwen" / "settings.json"
    text = settings.read_text()
    settings.write_text(text.replace('"mcpServers"', '"model": {"name": "q"},\n  "mcpServers"'))

    back = runner(agent_config(body(["v2"])), rollback_to=first.run_id, trigger=Trigger.ROLLBACK)

    assert back.outcome is Outcome.SUCCEEDED, back.error
    restored = json.loads(settings.read_text())
    assert restored["mcpServers"]["github"]["args"] == ["v1"] and restored["model"] == {"name": "q"}
    assert any("predates ownership records" in w for w in back.warnings)
