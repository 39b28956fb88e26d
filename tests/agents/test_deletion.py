"""deletionPolicy: what deleting an AgentConfig does to the files it wrote (the operator's finalizer)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agents.conftest import Runner, agent_config
from reconciler.models import DeletionPolicy

FOREIGN = {"mcpServers": {"mine": {"command": "my-server"}}, "theme": "dark"}


def spec(root: Path, policy: str) -> dict[str, Any]:
    return {"mcpServers": {"github": {"command": "npx", "args": ["-y", "gh-mcp"]}},
            "rules": [{"name": "style", "content": "Use type hints."}],
            "permissions": {"allow": ["Read"], "deny": ["Bash(rm -rf:*)"]},
            "targets": [{"client": "claude-code", "scope": "project", "root": str(root)}],
            "deletionPolicy": policy}


def test_orphan_keeps_every_file_as_it_is(runner: Runner, tmp_path: Path) -> None:
    obj = agent_config(spec(tmp_path, "Orphan"))
    assert obj.spec.deletion_policy is DeletionPolicy.ORPHAN
    assert runner(obj).outcome == "succeeded"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "store" not in p.name}
    assert asyncio.run(runner.orchestrator.delete(obj)) is None
    assert {p: p.read_bytes() for p in before} == before


def test_delete_removes_only_what_the_reconciler_wrote(runner: Runner, tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / ".mcp.json").write_text(json.dumps(FOREIGN, indent=2) + "\n")
    obj = agent_config(spec(project, "Delete"))
    assert runner(obj).outcome == "succeeded"
    assert "github" in json.loads((project / ".mcp.json").read_text())["mcpServers"]
    assert runner.store.inventory(obj.ref)

    result = asyncio.run(runner.orchestrator.delete(obj))
    assert result is not None and result.outcome == "succeeded" and result.trigger == "delete"
    assert result.counts.deleted > 0
    assert json.loads((project / ".mcp.json").read_text()) == FOREIGN  # foreign keys survive
    claude = project / "CLAUDE.md"
    assert not claude.exists() or "Use type hints." not in claude.read_text()
    settings = project / ".claude" / "settings.json"
    if settings.exists():
        assert "Bash(rm -rf:*)" not in settings.read_text()
    assert runner.store.inventory(obj.ref) == frozenset()
    again = asyncio.run(runner.orchestrator.delete(obj))  # a retried finalizer is a no-op
    assert again is not None and again.outcome == "noop"


def test_delete_removes_files_left_empty_and_parents_it_emptied(runner: Runner, tmp_path: Path) -> None:
    obj = agent_config({**spec(tmp_path / "p", "Delete"),
                        "targets": [{"client": c, "scope": "project", "root": str(tmp_path / "p")}
                                    for c in ("claude-code", "codex", "gemini-cli", "qwen-code")]})
    assert runner(obj).outcome == "succeeded"
    written = sorted(p.relative_to(tmp_path) for p in (tmp_path / "p").rglob("*") if p.is_file())
    assert len(written) >= 5
    result = asyncio.run(runner.orchestrator.delete(obj))
    assert result is not None and result.outcome == "succeeded"
    left = sorted(p.relative_to(tmp_path) for p in (tmp_path / "p").rglob("*") if p.is_file())
    assert left == []  # every file held only what the reconciler wrote: none is left as `{}`


def test_pruning_the_last_server_drops_the_emptied_parent_not_the_file(runner: Runner,
                                                                       tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / ".mcp.json").write_text('{\n  "theme": "dark"\n}\n')
    body = spec(project, "Orphan")
    assert runner(agent_config(body)).outcome == "succeeded"
    assert runner(agent_config({**body, "mcpServers": {}})).outcome == "succeeded"
    assert json.loads((project / ".mcp.json").read_text()) == {"theme": "dark"}
