"""Gemini CLI: rendering, settings.json kept byte for byte through the engine, policies, import."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config, assert_same_spec, entries, in_order, own_rule, tree
from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Place
from reconciler.drivers.agents.planning import render_spec
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome

SETTINGS = """{
  "general": {
    "vimMode": true,
    "preferredEditor": "vim"
  },
  "ui": {
    "theme": "GitHub"
  },
  "mcpServers": {
    "personal": {
      "command": "my-server",
      "trust": true
    }
  },
  "security": {
    "auth": {
      "selectedType": "oauth-personal"
    }
  }
}
"""
FOREIGN = [
    '{\n  "general": {\n    "vimMode": true,\n    "preferredEditor": "vim"',
    '  "ui": {\n    "theme": "GitHub"\n  },\n',
    '    "personal": {\n      "command": "my-server",\n      "trust": true\n    }',
    '  "security": {\n    "auth": {\n      "selectedType": "oauth-personal"\n    }\n  }\n}\n',
]
MEMORY = "# Notes\n\nWritten by a person.\n"
OWNED = {("mcpServers", "github"), ("mcpServers", "docs"), ("mcpServers", "metrics"),
         ("general", "defaultApprovalMode")}


def spec(root: Path, scope: str = "project", **extra: Any) -> dict[str, Any]:
    return {
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "MODE": "ro"}, "cwd": "/srv/gh",
                       "enabledTools": ["get_issue", "list_issues"], "disabledTools": ["list_issues"]},
            "docs": {"url": "https://docs.example.com/mcp", "bearerToken": {"env": "DOCS_TOKEN"},
                     "headers": {"X-Api-Key": {"env": "DOCS_API_KEY"}}},
            "metrics": {"url": "https://m.example.com/sse", "transport": "sse",
                        "headers": {"X-Team": "platform"}},
        },
        "rules": [
            {"name": "style", "description": "House style", "content": "# Style\n- typed\n"},
            {"name": "sql", "description": "Migrations", "paths": ["migrations/**/*.sql"],
             "content": "Never edit a migration.\n"},
        ],
        "permissions": {"allow": ["Read", "Bash(npm run test *)", "WebFetch", "mcp__github__get_issue"],
                        "ask": ["Bash(git push *)", "Edit"],
                        "deny": ["Bash(rm -rf *)", "mcp__docs"],
                        "defaultMode": "acceptEdits"},
        "targets": [{"client": "gemini-cli", "scope": scope, "root": str(root)}],
        **extra,
    }


EXPECTED_POLICY = [
    {"toolName": "run_shell_command", "commandPrefix": "rm -rf", "decision": "deny", "priority": 300},
    {"mcpName": "docs", "decision": "deny", "priority": 300},
    {"toolName": "run_shell_command", "commandPrefix": "git push", "decision": "ask_user", "priority": 200},
    {"toolName": "replace", "decision": "ask_user", "priority": 200},
    {"toolName": "write_file", "decision": "ask_user", "priority": 200},
    {"toolName": "read_file", "decision": "allow", "priority": 100},
    {"toolName": "run_shell_command", "commandPrefix": "npm run test", "decision": "allow", "priority": 100},
    {"toolName": "web_fetch", "decision": "allow", "priority": 100},
    {"mcpName": "github", "toolName": "get_issue", "decision": "allow", "priority": 100},
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".gemini").mkdir(parents=True)
    (root / ".gemini" / "settings.json").write_text(SETTINGS)
    (root / "GEMINI.md").write_text(MEMORY)
    return root


def without(data: dict[str, Any], paths: set[tuple[str, ...]]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    for path in paths:
        container = out
        for key in path[:-1]:
            container = container.get(key, {})
        container.pop(path[-1], None)
    return out


# --- render (pure) -----------------------------------------------------------------------------


def test_render_translates_servers_rules_and_default_mode(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    got = entries(spec(root))
    settings = f"{root}/.gemini/settings.json"
    assert got[f"{settings}#/mcpServers/github"].format is Format.JSON
    assert got[f"{settings}#/mcpServers/github"].value == {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_TOKEN": "$GITHUB_TOKEN", "MODE": "ro"}, "cwd": "/srv/gh",
        "includeTools": ["get_issue", "list_issues"], "excludeTools": ["list_issues"]}
    # Streamable HTTP is httpUrl, SSE is url.
    assert got[f"{settings}#/mcpServers/docs"].value == {
        "httpUrl": "https://docs.example.com/mcp",
        "headers": {"X-Api-Key": "$DOCS_API_KEY", "Authorization": "Bearer $DOCS_TOKEN"}}
    assert got[f"{settings}#/mcpServers/metrics"].value == {
        "url": "https://m.example.com/sse", "headers": {"X-Team": "platform"}}
    assert got[f"{settings}#/general/defaultApprovalMode"].value == "auto_edit"
    block = got[f"{root}/GEMINI.md#block"]
    assert block.format is Format.BLOCK
    assert "## style" in block.value and "Applies to files matching: `migrations/**/*.sql`" in block.value
    notes = [str(n) for n in render_spec(agent_config(spec(root))).notes]
    assert notes == [
        "gemini-cli: permissions weakened: Gemini CLI ignores workspace policy files (.gemini/policies, "
        "google-gemini/gemini-cli#18186): the rules are written but take effect only at user scope",
        "gemini-cli: rules[sql].paths weakened: GEMINI.md has no path-scoped rules; the rule is always "
        "on, with its paths stated in its text"]


def test_policy_file_is_valid_toml_with_the_expected_rules(tmp_path: Path) -> None:
    policy = entries(spec(tmp_path))[f"{tmp_path}/.gemini/policies/reconciler.toml"]
    assert policy.format is Format.TEXT and policy.pointer == ()
    assert policy.value.startswith("# Generated by reconciler from AgentConfig/team; edits are overwritten.")
    assert tomllib.loads(policy.value) == {"rule": EXPECTED_POLICY}


def test_user_scope_files_and_no_workspace_policy_note(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rendered = render_spec(agent_config(spec(home, scope="user")))
    keys = {e.key for e in rendered.entries}
    assert {f"{home}/.gemini/settings.json#/mcpServers/github", f"{home}/.gemini/GEMINI.md#block",
            f"{home}/.gemini/policies/reconciler.toml"} <= keys
    assert f"{home}/GEMINI.md#block" not in keys
    assert [n.field for n in rendered.notes] == ["rules[sql].paths"]


def test_what_gemini_cannot_express_is_reported(tmp_path: Path) -> None:
    body = spec(tmp_path)
    body["mcpServers"]["metrics"]["enabled"] = False
    body["mcpServers"]["my_db"] = {"command": "db-server"}
    body["permissions"] = {"allow": ["Bash(git status)", "Read(src/**)"],
                           "ask": ["Bash(ls | wc)", "WebFetch(domain:docs.rs)"],
                           "deny": ["Read", "Agent(Explore)"], "defaultMode": "bypassPermissions"}
    rendered = render_spec(agent_config(body))
    notes = {n.field: n.severity for n in rendered.notes}
    assert notes["mcpServers.metrics.enabled"] == "dropped"
    assert notes["mcpServers.my_db"] == "weakened"
    assert notes["permissions.allow[Bash(git status)]"] == "weakened"
    assert notes["permissions.allow[Read(src/**)]"] == "dropped"
    assert notes["permissions.ask[Bash(ls | wc)]"] == "dropped"
    assert notes["permissions.ask[WebFetch(domain:docs.rs)]"] == "dropped"
    assert notes["permissions.deny[Read]"] == "weakened"
    assert notes["permissions.deny[Agent(Explore)]"] == "dropped"
    assert notes["permissions.defaultMode"] == "dropped"
    got = {e.key: e.value for e in rendered.entries}
    settings = f"{tmp_path}/.gemini/settings.json"
    assert f"{settings}#/mcpServers/metrics" not in got
    assert got[f"{settings}#/mcpServers/my_db"] == {"command": "db-server"}
    assert f"{settings}#/general/defaultApprovalMode" not in got
    policy = tomllib.loads(got[f"{tmp_path}/.gemini/policies/reconciler.toml"])
    assert policy["rule"] == [
        {"toolName": "read_file", "decision": "deny", "priority": 300},
        {"toolName": "run_shell_command", "commandPrefix": "git status", "decision": "allow",
         "priority": 100}]


@pytest.mark.parametrize(("mode", "native"), [("default", "default"), ("acceptEdits", "auto_edit"),
                                              ("plan", "plan"), ("bypassPermissions", None)])
def test_default_mode_becomes_the_default_approval_mode(tmp_path: Path, mode: str,
                                                       native: str | None) -> None:
    body = spec(tmp_path)
    body["permissions"]["defaultMode"] = mode
    got = {k: e.value for k, e in entries(body).items()}
    assert got.get(f"{tmp_path}/.gemini/settings.json#/general/defaultApprovalMode") == native


def test_overrides_go_to_settings_and_win_over_default_mode(tmp_path: Path) -> None:
    body = spec(tmp_path)
    body["targets"][0]["overrides"] = {"general.defaultApprovalMode": "plan", "ui.theme": "Dracula"}
    got = {k: e.value for k, e in entries(body).items()}
    settings = f"{tmp_path}/.gemini/settings.json"
    assert got[f"{settings}#/general/defaultApprovalMode"] == "plan"
    assert got[f"{settings}#/ui/theme"] == "Dracula"


def test_bare_bash_has_no_command_prefix(tmp_path: Path) -> None:
    body = spec(tmp_path)
    body["permissions"] = {"deny": ["Bash"]}
    policy = tomllib.loads(entries(body)[f"{tmp_path}/.gemini/policies/reconciler.toml"].value)
    assert policy == {"rule": [{"toolName": "run_shell_command", "decision": "deny", "priority": 300}]}


# --- through the engine ------------------------------------------------------------------------


def test_apply_keeps_foreign_settings_byte_for_byte(runner: Runner, project: Path) -> None:
    obj = agent_config(spec(project))
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    text = (project / ".gemini" / "settings.json").read_text()
    assert in_order(text, FOREIGN), text
    data = json.loads(text)
    # Only owned keys differ from the original file.
    assert without(data, OWNED) == json.loads(SETTINGS)
    servers = data["mcpServers"]
    assert servers["docs"]["httpUrl"] == "https://docs.example.com/mcp" and "url" not in servers["docs"]
    assert servers["metrics"]["url"] == "https://m.example.com/sse" and "httpUrl" not in servers["metrics"]
    assert servers["github"]["includeTools"] == ["get_issue", "list_issues"]
    assert servers["github"]["excludeTools"] == ["list_issues"]
    assert data["general"] == {"vimMode": True, "preferredEditor": "vim", "defaultApprovalMode": "auto_edit"}
    policy = tomllib.loads((project / ".gemini" / "policies" / "reconciler.toml").read_text())
    assert policy == {"rule": EXPECTED_POLICY}
    memory = (project / "GEMINI.md").read_text()
    assert memory.startswith(MEMORY) and "<!-- reconciler:begin team -->" in memory
    assert result.plan is not None
    assert any("gemini-cli#18186" in w for w in result.plan.warnings)

    before = tree(project)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP, second.error
    assert second.counts.unchanged == len(runner.store.inventory(obj.ref))
    assert tree(project) == before


def test_removing_servers_and_rules_restores_the_foreign_settings(runner: Runner, project: Path) -> None:
    runner(agent_config(spec(project)))
    smaller = spec(project)
    del smaller["mcpServers"], smaller["rules"]
    smaller["permissions"]["defaultMode"] = None
    result = runner(agent_config(smaller))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    data = json.loads((project / ".gemini" / "settings.json").read_text())
    assert data == json.loads(SETTINGS)
    assert (project / "GEMINI.md").read_text() == MEMORY
    assert (project / ".gemini" / "policies" / "reconciler.toml").exists()


def test_removing_permissions_deletes_the_policy_file(runner: Runner, project: Path) -> None:
    runner(agent_config(spec(project)))
    smaller = spec(project)
    del smaller["permissions"]
    result = runner(agent_config(smaller))
    if result.outcome is Outcome.FAILED and "IndexError" in (result.error or ""):
        raise IndexError(result.error)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert not (project / ".gemini" / "policies" / "reconciler.toml").exists()
    assert json.loads((project / ".gemini" / "settings.json").read_text())["general"] == {
        "vimMode": True, "preferredEditor": "vim"}


def test_secret_values_never_reach_a_file(runner: Runner, project: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = "sentinel-gemini-81ac-never-written"
    for name in ("GITHUB_TOKEN", "DOCS_TOKEN", "DOCS_API_KEY"):
        monkeypatch.setenv(name, sentinel)
    assert runner(agent_config(spec(project))).outcome is Outcome.SUCCEEDED
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), path


def test_malformed_settings_fail_with_file_and_line(runner: Runner, project: Path, tmp_path: Path) -> None:
    path = project / ".gemini" / "settings.json"
    path.write_text('{\n  "ui": {"theme": "GitHub",,}\n}\n')
    before = tree(tmp_path)
    result = runner(agent_config(spec(project)))
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and f"{path}:2:" in result.error, result.error
    assert tree(tmp_path) == before


# --- import ------------------------------------------------------------------------------------


def test_import_round_trip_gives_the_spec_back(runner: Runner, project: Path) -> None:
    body = spec(project)
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    warnings: list[str] = []
    place = Place(AgentClient.GEMINI_CLI, TargetScope.PROJECT, str(project), "team")
    found = adapter_for("gemini-cli").read(Reader(project), place, warnings.append)
    assert found["mcpServers"].pop("personal") == {"command": "my-server"}
    own = own_rule(found, "gemini")  # the file's own text, imported whole
    assert_same_spec(found, body)
    found["rules"].append(own)  # and applying it writes nothing twice
    assert warnings == []
    planned = runner(agent_config({**found, "targets": body["targets"]}), dry_run=True)
    assert planned.plan is not None and not planned.plan.has_changes


def test_import_reads_hand_written_policies_and_references(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gemini" / "policies").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "mcpServers": {"s": {"command": "srv", "env": {"API_KEY": "${API_KEY}", "LEVEL": "debug"}},
                       "r": {"httpUrl": "https://r.example.com", "headers": {"Authorization": "Bearer ${R}"}},
                       "broken": {"timeout": 5}},
        "general": {"defaultApprovalMode": "yolo"}}))
    (home / ".gemini" / "policies" / "team.toml").write_text(
        '[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = ["git status", "git log"]\n'
        'decision = "allow"\npriority = 10\n\n'
        '[[rule]]\ntoolName = "write_file"\ndecision = "deny"\npriority = 10\n\n'
        '[[rule]]\ntoolName = "github__create_issue"\ndecision = "ask_user"\npriority = 10\n\n'
        '[[rule]]\ntoolName = "run_shell_command"\nargsPattern = "rm"\ndecision = "deny"\npriority = 10\n')
    (home / ".gemini" / "policies" / "broken.toml").write_text('[[rule]\ntoolName = "x"\n')
    warnings: list[str] = []
    place = Place(AgentClient.GEMINI_CLI, TargetScope.USER, str(home), "mine")
    found = adapter_for("gemini-cli").read(Reader(home), place, warnings.append)
    assert found["mcpServers"] == {
        "s": {"command": "srv", "env": {"API_KEY": {"env": "API_KEY"}, "LEVEL": "debug"}},
        "r": {"url": "https://r.example.com", "bearerToken": {"env": "R"}}}
    assert found["permissions"] == {"allow": ["Bash(git status *)", "Bash(git log *)"],
                                    "ask": ["mcp__github__create_issue"]}
    assert any("broken" in w for w in warnings)
    assert any("'yolo'" in w for w in warnings)
    assert any("write_file (deny) without replace" in w for w in warnings)
    assert any("argsPattern" in w for w in warnings)
    assert any(w.startswith(".gemini/policies/broken.toml:1: cannot parse") for w in warnings), warnings
