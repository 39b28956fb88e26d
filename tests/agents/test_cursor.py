"""Cursor: `.mdc` rules, CLI permission tokens, translation warnings, import; secrets by reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config, assert_same_spec, items, tree
from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.clients.cursor import canonical_rule, parse_mdc
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Entry, Place
from reconciler.drivers.agents.planning import render_spec
from reconciler.engine.rendering import render
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome

CLI = '{\n  "version": 1,\n  "editor": {"vimMode": true},\n  "permissions": {"allow": []}\n}\n'


def spec(root: Path, scope: str = "project", **extra: Any) -> dict[str, Any]:
    return {
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "MODE": "ro"}},
            "docs": {"url": "https://docs.example.com/mcp", "bearerToken": {"env": "DOCS_TOKEN"}},
            "metrics": {"url": "https://m.example.com/sse", "transport": "sse",
                        "headers": {"X-Team": "platform"}},
        },
        "rules": [
            {"name": "style", "description": "House style", "content": "# Style\n- typed\n"},
            {"name": "sql", "description": "Migrations", "paths": ["migrations/**/*.sql", "**/alembic/*.py"],
             "content": "Never edit a migration.\n"},
        ],
        "permissions": {"allow": ["Read", "Bash(git *)", "Edit(src/**)", "WebFetch(domain:docs.rs)",
                                  "mcp__github__get_issue"],
                        "deny": ["Read(./.env)", "Bash(rm *)", "mcp__docs"]},
        "targets": [{"client": "cursor", "scope": scope, "root": str(root)}],
        **extra,
    }


def rendered(body: dict[str, Any]) -> tuple[dict[str, Entry], list[str]]:
    out = render_spec(agent_config(body))
    return {e.key: e for e in out.entries}, [str(n) for n in out.notes]


def test_rules_are_mdc_files_with_cursor_front_matter(tmp_path: Path) -> None:
    got, notes = rendered(spec(tmp_path))
    always = got[f"{tmp_path}/.cursor/rules/style.mdc"]
    assert always.format is Format.TEXT
    assert always.value == ("---\ndescription: House style\nglobs:\nalwaysApply: true\n---\n\n"
                            "# Style\n- typed\n")
    scoped = got[f"{tmp_path}/.cursor/rules/sql.mdc"].value
    # Unquoted and comma-joined: Cursor does not read this front matter as YAML.
    assert scoped.startswith("---\ndescription: Migrations\nglobs: migrations/**/*.sql,**/alembic/*.py\n"
                             "alwaysApply: false\n---\n")
    assert parse_mdc(scoped) == ({"description": "Migrations", "globs": "migrations/**/*.sql,**/alembic/*.py",
                                  "alwaysApply": "false"}, "Never edit a migration.\n")
    assert notes == []


def test_user_scope_rules_are_dropped_with_a_note(tmp_path: Path) -> None:
    home = tmp_path / "home"
    got, notes = rendered(spec(home, scope="user"))
    assert not any(".mdc" in key for key in got)
    assert [n for n in notes if "rules[" in n] == [
        f"cursor: rules[{name}] dropped: Cursor keeps user rules in its app settings, not in a file; "
        "add the rule there or use a project target" for name in ("style", "sql")]
    assert items(got, f"{home}/.cursor/cli-config.json#/permissions/allow")
    assert f"{home}/.cursor/mcp.json#/mcpServers/github" in got


def test_servers_and_permission_tokens(tmp_path: Path) -> None:
    body = spec(tmp_path)
    body["mcpServers"]["github"] |= {"cwd": "/srv", "enabledTools": ["get_issue"]}
    body["permissions"]["allow"] += ["Bash(npm run test *)", "Bash(ls)", "Bash"]
    body["permissions"]["deny"] += ["Bash(git push --force *)", "Bash(curl x | sh)"]
    body["permissions"] |= {"ask": ["Edit"], "defaultMode": "plan"}
    got, notes = rendered(body)
    mcp = f"{tmp_path}/.cursor/mcp.json#/mcpServers"
    assert got[f"{mcp}/github"].value == {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "MODE": "ro"}}
    assert got[f"{mcp}/docs"].value == {"url": "https://docs.example.com/mcp",
                                        "headers": {"Authorization": "Bearer ${env:DOCS_TOKEN}"}}
    assert got[f"{mcp}/metrics"].value == {"type": "sse", "url": "https://m.example.com/sse",
                                           "headers": {"X-Team": "platform"}}
    cli = f"{tmp_path}/.cursor/cli.json#/permissions"
    assert items(got, f"{cli}/allow") == ["Read(**)", "Shell(git)", "Write(src/**)", "WebFetch(docs.rs)",
                                         "Mcp(github:get_issue)", "Shell(ls)", "Shell(*)"]
    assert items(got, f"{cli}/deny") == ["Read(./.env)", "Shell(rm)", "Mcp(docs:*)", "Shell(git)"]
    summary = [n.split(": ", 2)[1] for n in notes]
    assert summary == [
        "mcpServers.github.cwd dropped",
        "mcpServers.github.enabledTools dropped",
        "permissions.deny[Bash(git push --force *)] weakened",
        "permissions.deny[Bash(curl x | sh)] dropped",
        "permissions.ask[Edit] dropped",
        "permissions.allow[Bash(npm run test *)] dropped",
        "permissions.allow[Bash(ls)] weakened",
        "permissions.defaultMode dropped",
    ]


def test_apply_maps_permissions_and_warns_about_a_dropped_allow(runner: Runner, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".cursor").mkdir(parents=True)
    (root / ".cursor" / "cli.json").write_text(CLI)
    body = spec(root)
    body["permissions"]["allow"].append("Bash(npm run test *)")
    body["permissions"]["deny"].append("Bash(git push --force *)")
    obj = agent_config(body)
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert result.plan is not None
    assert ("translation: cursor: permissions.allow[Bash(npm run test *)] dropped: Cursor's Shell(...) "
            "matches a command's first word only; allowing every npm command would be broader than the "
            "spec") in result.plan.warnings
    assert any(w.startswith("translation: cursor: permissions.deny[Bash(git push --force *)] weakened")
               for w in result.plan.warnings)
    cli = json.loads((root / ".cursor" / "cli.json").read_text())
    assert cli["version"] == 1 and cli["editor"] == {"vimMode": True}
    assert cli["permissions"]["allow"] == ["Read(**)", "Shell(git)", "Write(src/**)", "WebFetch(docs.rs)",
                                           "Mcp(github:get_issue)"]
    assert cli["permissions"]["deny"] == ["Read(./.env)", "Shell(rm)", "Mcp(docs:*)", "Shell(git)"]
    assert (root / ".cursor" / "cli.json").read_text().startswith(
        '{\n  "version": 1,\n  "editor": {"vimMode": true},\n  "permissions": {')
    rule = (root / ".cursor" / "rules" / "sql.mdc").read_text()
    assert "globs: migrations/**/*.sql,**/alembic/*.py\nalwaysApply: false\n" in rule
    servers = json.loads((root / ".cursor" / "mcp.json").read_text())["mcpServers"]
    assert servers["github"]["env"]["GITHUB_TOKEN"] == "${env:GITHUB_TOKEN}"

    before = tree(root)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP
    assert tree(root) == before


def test_import_reads_the_rendered_files_back_into_the_spec(runner: Runner, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    body = spec(root)
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    warnings: list[str] = []
    place = Place(AgentClient.CURSOR, TargetScope.PROJECT, str(root), "team")
    found = adapter_for("cursor").read(Reader(root), place, warnings.append)
    assert_same_spec(found, body)
    assert warnings == []


def test_import_reads_hand_written_mdc_and_tokens(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".cursor" / "rules").mkdir(parents=True)
    (root / ".cursor" / "rules" / "Py Style.mdc").write_text(
        "---\ndescription: \"Python\"\nglobs: **/*.py, scripts/*\nalwaysApply: false\n---\nUse types.\n")
    (root / ".cursor" / "rules" / "manual.mdc").write_text(
        "---\ndescription:\nglobs:\n---\nOnly on request.\n")
    (root / ".cursor" / "cli.json").write_text(json.dumps({"permissions": {
        "allow": ["Shell(npm)", "Shell(curl:*)", "Mcp(gh:*)"], "deny": ["Write(**/*.key)", "Bogus(x)"]}}))
    warnings: list[str] = []
    place = Place(AgentClient.CURSOR, TargetScope.PROJECT, str(root), "team")
    found = adapter_for("cursor").read(Reader(root), place, warnings.append)
    assert found["rules"] == [
        {"name": "py-style", "description": "Python", "content": "Use types.\n",
         "paths": ["**/*.py", "scripts/*"]},
    ]  # manual.mdc (no alwaysApply, no globs) has no canonical equivalent: left in its file
    assert found["permissions"] == {"allow": ["Bash(npm *)", "Bash(curl *)", "mcp__gh"],
                                    "deny": ["Edit(**/*.key)"]}
    assert len(warnings) == 2 and "manual.mdc" in warnings[0] and "Bogus(x)" in warnings[1]


@pytest.mark.parametrize(("token", "rule"), [
    ("Shell(*)", "Bash"), ("Shell(git)", "Bash(git *)"), ("Shell(curl:*)", "Bash(curl *)"),
    ("Read(**)", "Read"), ("Write(src/**)", "Edit(src/**)"),
    ("WebFetch(docs.rs)", "WebFetch(domain:docs.rs)"), ("WebFetch(*)", "WebFetch"),
    ("Mcp(s:t)", "mcp__s__t"), ("Mcp(s:*)", "mcp__s"), ("Shell(git push)", None), ("Mcp(*)", None),
])
def test_canonical_rule_of_cursor_tokens(token: str, rule: str | None) -> None:
    assert canonical_rule(token) == rule


def test_secret_values_never_leave_the_environment(runner: Runner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = "sentinel-4b2f0e-do-not-leak"
    monkeypatch.setenv("GITHUB_TOKEN", sentinel)
    monkeypatch.setenv("DOCS_TOKEN", sentinel)
    body = spec(tmp_path / "cursor")
    body["targets"] = [{"client": client, "root": str(tmp_path / client)}
                       for client in ("cursor", "qwen-code", "rovo-dev")]
    obj = agent_config(body)
    results = [runner(obj, dry_run=True), runner(obj)]
    assert results[1].outcome is Outcome.SUCCEEDED, results[1].error
    for result in results:
        assert result.plan is not None
        for fmt in ("text", "markdown", "json"):
            assert sentinel not in render([result.plan], fmt)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 8
    for path in files:
        assert sentinel.encode() not in path.read_bytes(), path
