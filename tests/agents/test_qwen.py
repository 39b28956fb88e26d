"""Qwen Code: rendering, JSONC settings kept byte for byte through the engine, import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config, assert_same_spec, entries, items, own_rule, tree
from reconciler.drivers.agents import jsonc
from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Place
from reconciler.drivers.agents.planning import render_spec
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome

# Hand-written JSONC: comments, trailing commas, settings and a server the reconciler does not own.
SETTINGS = """// Qwen Code settings for this repository
{
  // the model everyone uses
  "model": {"name": "qwen3-coder-plus"},
  "ui": {
    "theme": "GitHub", // dark is too dark
    "hideTips": true,
  },
  /* servers people add by hand stay theirs */
  "mcpServers": {
    "personal": {"command": "my-server", "timeout": 30000},
  },
}
"""
FOREIGN = [
    "// Qwen Code settings for this repository\n{\n  // the model everyone uses\n",
    '  "model": {"name": "qwen3-coder-plus"},\n',
    '  "ui": {\n    "theme": "GitHub", // dark is too dark\n    "hideTips": true,\n  },\n',
    "  /* servers people add by hand stay theirs */\n",
    '    "personal": {"command": "my-server", "timeout": 30000},\n',
]
MEMORY = "# Notes\n\nWritten by a person.\n"


def spec(root: Path, scope: str = "project", **extra: Any) -> dict[str, Any]:
    return {
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "MODE": "ro"}, "cwd": "/srv/gh",
                       "enabledTools": ["get_issue", "list_issues"], "disabledTools": ["list_issues"]},
            "docs": {"url": "https://docs.example.com/mcp", "bearerToken": {"env": "DOCS_TOKEN"}},
            "metrics": {"url": "https://m.example.com/sse", "transport": "sse",
                        "headers": {"X-Team": "platform"}},
        },
        "rules": [
            {"name": "style", "description": "House style", "content": "# Style\n- typed\n"},
            {"name": "sql", "description": "Migrations", "paths": ["migrations/**/*.sql"],
             "content": "Never edit a migration.\n"},
        ],
        "permissions": {"allow": ["Read", "Bash(npm run test *)", "WebFetch(domain:docs.rs)"],
                        "ask": ["Bash(git push *)"], "deny": ["Read(./.env)", "mcp__github__delete_repo"],
                        "defaultMode": "acceptEdits"},
        "targets": [{"client": "qwen-code", "scope": scope, "root": str(root)}],
        **extra,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".qwen").mkdir(parents=True)
    (root / ".qwen" / "settings.json").write_text(SETTINGS)
    (root / "QWEN.md").write_text(MEMORY)
    return root


def test_render_translates_servers_permissions_and_rules(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    got = entries(spec(root))
    settings = f"{root}/.qwen/settings.json"
    assert got[f"{settings}#/mcpServers/github"].value == {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "MODE": "ro"}, "cwd": "/srv/gh",
        "includeTools": ["get_issue", "list_issues"], "excludeTools": ["list_issues"]}
    assert got[f"{settings}#/mcpServers/docs"].value == {
        "httpUrl": "https://docs.example.com/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}
    assert got[f"{settings}#/mcpServers/metrics"].value == {
        "url": "https://m.example.com/sse", "headers": {"X-Team": "platform"}}
    # Qwen has no `domain:` prefix.
    allow = items(got, f"{settings}#/permissions/allow")
    assert allow == ["Read", "Bash(npm run test *)", "WebFetch(docs.rs)"]
    assert items(got, f"{settings}#/permissions/ask") == ["Bash(git push *)"]
    assert items(got, f"{settings}#/permissions/deny") == ["Read(./.env)", "mcp__github__delete_repo"]
    assert got[f"{settings}#/tools/approvalMode"].value == "auto-edit"
    block = got[f"{root}/QWEN.md#block"]
    assert block.format is Format.BLOCK and "## style" in block.value and "Never edit" not in block.value
    rule = got[f"{root}/.qwen/rules/sql.md"]
    assert rule.format is Format.TEXT
    assert rule.value == ('---\ndescription: "Migrations"\npaths:\n  - "migrations/**/*.sql"\n---\n\n'
                          "Never edit a migration.\n")
    assert not render_spec(agent_config(spec(root))).notes


@pytest.mark.parametrize(("mode", "native"), [("default", "default"), ("acceptEdits", "auto-edit"),
                                              ("plan", "plan"), ("bypassPermissions", "yolo")])
def test_default_mode_becomes_the_approval_mode(tmp_path: Path, mode: str, native: str) -> None:
    body = spec(tmp_path)
    body["permissions"]["defaultMode"] = mode
    assert entries(body)[f"{tmp_path}/.qwen/settings.json#/tools/approvalMode"].value == native


def test_user_scope_files_and_disabled_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    body = spec(home, scope="user", targets=[{"client": "qwen-code", "scope": "user", "root": str(home)}])
    body["mcpServers"]["metrics"]["enabled"] = False
    rendered = render_spec(agent_config(body))
    keys = {e.key for e in rendered.entries}
    assert f"{home}/.qwen/QWEN.md#block" in keys and f"{home}/.qwen/rules/sql.md" in keys
    assert f"{home}/.qwen/settings.json#/mcpServers/github" in keys
    assert f"{home}/.qwen/settings.json#/mcpServers/metrics" not in keys
    assert [str(n) for n in rendered.notes] == [
        "qwen-code: mcpServers.metrics.enabled dropped: Qwen Code has no per-entry switch; the disabled "
        "server is not rendered"]


def test_apply_keeps_comments_and_foreign_settings_byte_for_byte(runner: Runner, project: Path) -> None:
    obj = agent_config(spec(project))
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    text = (project / ".qwen" / "settings.json").read_text()
    positions = [text.find(part) for part in FOREIGN]
    assert -1 not in positions, text
    assert positions == sorted(positions)
    data = jsonc.loads(text)
    assert data["model"] == {"name": "qwen3-coder-plus"}
    assert data["ui"] == {"theme": "GitHub", "hideTips": True}
    assert data["mcpServers"]["personal"] == {"command": "my-server", "timeout": 30000}
    assert data["mcpServers"]["docs"]["httpUrl"] == "https://docs.example.com/mcp"
    assert data["permissions"]["allow"][-1] == "WebFetch(docs.rs)"
    assert data["tools"] == {"approvalMode": "auto-edit"}
    memory = (project / "QWEN.md").read_text()
    assert memory.startswith(MEMORY) and "<!-- reconciler:begin team -->" in memory
    assert (project / ".qwen" / "rules" / "sql.md").read_text().startswith("---\n")

    before = tree(project)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP
    assert second.counts.unchanged == len(runner.store.inventory(obj.ref))
    assert tree(project) == before


def test_removing_everything_leaves_the_original_settings(runner: Runner, project: Path) -> None:
    runner(agent_config(spec(project)))
    empty = spec(project)
    for key in ("mcpServers", "rules", "permissions"):
        del empty[key]
    assert runner(agent_config(empty)).outcome is Outcome.SUCCEEDED
    data = jsonc.loads((project / ".qwen" / "settings.json").read_text())
    assert data["mcpServers"] == {"personal": {"command": "my-server", "timeout": 30000}}
    # The owned keys are gone (their emptied parent objects may stay).
    assert not data.get("permissions") and not data.get("tools")
    assert not (project / ".qwen" / "rules" / "sql.md").exists()
    text = (project / ".qwen" / "settings.json").read_text()
    positions = [text.find(part) for part in FOREIGN]
    assert -1 not in positions and positions == sorted(positions)
    assert (project / "QWEN.md").read_text() == MEMORY


def test_import_reads_the_rendered_files_back_into_the_spec(runner: Runner, project: Path) -> None:
    body = spec(project)
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    warnings: list[str] = []
    place = Place(AgentClient.QWEN_CODE, TargetScope.PROJECT, str(project), "team")
    found = adapter_for("qwen-code").read(Reader(project), place, warnings.append)
    assert found["mcpServers"].pop("personal") == {"command": "my-server"}
    own = own_rule(found, "qwen")  # the file's own text, imported whole
    assert_same_spec(found, body)
    found["rules"].append(own)  # and applying it writes nothing twice
    assert warnings == []


def test_import_accepts_hand_written_dollar_references(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".qwen").mkdir(parents=True)
    (root / ".qwen" / "settings.json").write_text(json.dumps({
        "mcpServers": {"s": {"command": "srv", "env": {"API_KEY": "$API_KEY", "LEVEL": "debug"}}},
        "tools": {"approvalMode": "auto"}}))
    warnings: list[str] = []
    place = Place(AgentClient.QWEN_CODE, TargetScope.PROJECT, str(root), "team")
    found = adapter_for("qwen-code").read(Reader(root), place, warnings.append)
    assert found["mcpServers"]["s"]["env"] == {"API_KEY": {"env": "API_KEY"}, "LEVEL": "debug"}
    assert found["permissions"] == {}
    assert any("approvalMode 'auto'" in w for w in warnings)
