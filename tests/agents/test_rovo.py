"""Rovo Dev CLI: rendering, `config.yml` kept with its comments through the engine, import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agents.conftest import Runner, agent_config, tree
from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.clients.rovo import bash_rule, command_regex
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Entry, Place
from reconciler.drivers.agents.planning import render_spec
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome

# What people and the client (an "Always" answer: some_tool) already wrote.
CONFIG = """# Rovo Dev settings for this repository
agent:
  # the model for this repo
  modelId: claude-sonnet-4
  streaming: true
toolPermissions:
  tools:
    some_tool: allow  # answered "Always" in a session
  bash:
    default: ask  # everything else asks
    env:
      - GITHUB_TOKEN  # passed through to commands, never managed here
  allowedExternalPaths: [/opt/shared]
"""
FOREIGN = [
    "# Rovo Dev settings for this repository\nagent:\n  # the model for this repo\n"
    "  modelId: claude-sonnet-4\n  streaming: true\ntoolPermissions:\n  tools:\n",
    '    some_tool: allow  # answered "Always" in a session\n',
    "  bash:\n    default: ask  # everything else asks\n    env:\n"
    "      - GITHUB_TOKEN  # passed through to commands, never managed here\n",
    "  allowedExternalPaths: [/opt/shared]\n",
]
AGENTS = "# Project notes\n\nWritten by a person.\n"
READ_TOOLS = ("open_files", "expand_code_chunks", "grep")
EDIT_TOOLS = ("create_file", "delete_file", "move_file", "find_and_replace_code")


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
            {"name": "sql", "paths": ["migrations/**/*.sql"], "content": "Never edit a migration.\n"},
        ],
        "permissions": {"allow": ["Read", "Bash(npm run test *)", "Bash(git status)"],
                        "ask": ["Bash(git push *)"], "deny": ["Edit", "Bash(rm -rf *)"],
                        "defaultMode": "default"},
        "targets": [{"client": "rovo-dev", "scope": scope, "root": str(root)}],
        **extra,
    }


def rendered(body: dict[str, Any]) -> tuple[dict[str, Entry], list[str]]:
    out = render_spec(agent_config(body))
    return {e.key: e for e in out.entries}, [str(n) for n in out.notes]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".rovodev").mkdir(parents=True)
    (root / ".rovodev" / "config.yml").write_text(CONFIG)
    (root / "AGENTS.md").write_text(AGENTS)
    return root


def test_command_regexes_round_trip() -> None:
    cases = {"npm run test *": "npm run test( .*)?", "npm run test:*": "npm run test( .*)?",
             "git status": "git status", "make -C a.b *": r"make -C a\.b( .*)?", None: ".*"}
    for specifier, regex in cases.items():
        assert command_regex(specifier) == regex
    assert command_regex("ls | grep x") is None
    assert bash_rule("npm run test( .*)?") == "Bash(npm run test *)"
    assert bash_rule(r"make -C a\.b") == "Bash(make -C a.b)"
    assert bash_rule(".*") == "Bash"
    assert bash_rule("git( .*)?") == "Bash(git *)"
    assert bash_rule("(git|hg) status") is None


def test_render_nests_tool_levels_and_lists_bash_regexes(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    got, notes = rendered(spec(root))
    mcp = f"{root}/.rovodev/mcp.json"
    assert got[f"{mcp}#/mcpServers/github"].value == {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "MODE": "ro"}, "transport": "stdio"}
    assert got[f"{mcp}#/mcpServers/docs"].value == {
        "url": "https://docs.example.com/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"},
        "transport": "http"}
    assert got[f"{mcp}#/mcpServers/metrics"].value["transport"] == "sse"
    config = f"{root}/.rovodev/config.yml"
    assert got[f"{config}#/mcp/mcpConfigPath"].value == ".rovodev/mcp.json"
    for tool in READ_TOOLS:
        assert got[f"{config}#/toolPermissions/tools/{tool}"].value == "allow"
    for tool in EDIT_TOOLS:
        assert got[f"{config}#/toolPermissions/tools/{tool}"].value == "deny"
    assert not any(k.startswith(f"{config}#/toolPermissions/{t}") for k in got for t in READ_TOOLS)
    commands = f"{config}#/toolPermissions/bash/commands"
    assert [e.value for k, e in got.items() if k.startswith(commands + "#")] == [
        {"command": "rm -rf( .*)?", "permission": "deny"},
        {"command": "git push( .*)?", "permission": "ask"},
        {"command": "npm run test( .*)?", "permission": "allow"},
        {"command": "git status", "permission": "allow"},
    ]
    assert f"{commands}#Bash(git push *)" in got  # one entry per command, keyed by its rule
    assert got[f"{config}#/toolPermissions/default"].value == "ask"
    assert all(e.format is Format.YAML for k, e in got.items() if k.startswith(config))
    block = got[f"{root}/AGENTS.md#block"].value
    assert "## style" in block and "Applies to files matching: `migrations/**/*.sql`" in block
    assert notes == [
        "rovo-dev: mcpServers weakened: the secret references of github, docs are written as ${VAR}; "
        "whether Rovo Dev expands them in mcp.json is unverified",
        "rovo-dev: rules[sql].paths weakened: Rovo Dev has no path-scoped rules; the rule is always on, "
        "with its paths stated in its text",
    ]


def test_untranslatable_fields_are_reported(tmp_path: Path) -> None:
    body = spec(tmp_path / "home", scope="user")
    body["mcpServers"]["github"] |= {"cwd": "/srv", "disabledTools": ["x"]}
    body["mcpServers"]["metrics"]["enabled"] = False
    body["permissions"] = {"allow": ["Read(src/**)", "WebFetch(domain:docs.rs)", "Bash(ls | wc)"],
                           "defaultMode": "plan"}
    got, notes = rendered(body)
    home = tmp_path / "home"
    # User scope: ~/.rovodev/mcp.json is Rovo Dev's own file, no mcpConfigPath needed.
    assert f"{home}/.rovodev/config.yml#/mcp/mcpConfigPath" not in got
    assert f"{home}/.rovodev/AGENTS.md#block" in got and f"{home}/AGENTS.md#block" not in got
    assert not any("toolPermissions" in k for k in got)
    dropped = [n.split(" dropped:")[0] for n in notes if " dropped:" in n]
    assert dropped == ["rovo-dev: mcpServers.github.cwd", "rovo-dev: mcpServers.github.disabledTools",
                       "rovo-dev: mcpServers.metrics.enabled", "rovo-dev: permissions.allow[Read(src/**)]",
                       "rovo-dev: permissions.allow[WebFetch(domain:docs.rs)]",
                       "rovo-dev: permissions.allow[Bash(ls | wc)]", "rovo-dev: permissions.defaultMode"]


def test_apply_keeps_comments_and_client_keys_of_config_yml(runner: Runner, project: Path) -> None:
    obj = agent_config(spec(project))
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    text = (project / ".rovodev" / "config.yml").read_text()
    positions = [text.find(part) for part in FOREIGN]
    assert -1 not in positions, text
    assert positions == sorted(positions)
    data = YAML(typ="safe").load(text)
    perms = data["toolPermissions"]
    assert perms["tools"] == {"some_tool": "allow", **dict.fromkeys(EDIT_TOOLS, "deny"),
                              **dict.fromkeys(READ_TOOLS, "allow")}
    assert perms["bash"]["env"] == ["GITHUB_TOKEN"] and perms["bash"]["default"] == "ask"
    assert perms["bash"]["commands"][0] == {"command": "rm -rf( .*)?", "permission": "deny"}
    assert perms["default"] == "ask" and perms["allowedExternalPaths"] == ["/opt/shared"]
    assert data["agent"] == {"modelId": "claude-sonnet-4", "streaming": True}
    assert data["mcp"] == {"mcpConfigPath": ".rovodev/mcp.json"}
    servers = json.loads((project / ".rovodev" / "mcp.json").read_text())["mcpServers"]
    assert {name: s["transport"] for name, s in servers.items()} == {
        "github": "stdio", "docs": "http", "metrics": "sse"}
    agents = (project / "AGENTS.md").read_text()
    assert agents.startswith(AGENTS) and "<!-- reconciler:begin team -->" in agents

    before = tree(project)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP
    assert second.counts.unchanged == len(runner.store.inventory(obj.ref))
    assert tree(project) == before


def test_pruned_permissions_leave_the_client_keys(runner: Runner, project: Path) -> None:
    runner(agent_config(spec(project)))
    smaller = spec(project)
    smaller["permissions"] = {"allow": ["Read"]}
    assert runner(agent_config(smaller)).outcome is Outcome.SUCCEEDED
    data = YAML(typ="safe").load((project / ".rovodev" / "config.yml").read_text())
    perms = data["toolPermissions"]
    assert perms["tools"] == {"some_tool": "allow", **dict.fromkeys(READ_TOOLS, "allow")}
    assert perms["bash"] == {"default": "ask", "env": ["GITHUB_TOKEN"]}
    assert "default" not in perms


def test_import_reads_the_rendered_files_back_into_the_spec(runner: Runner, project: Path) -> None:
    body = spec(project)
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    warnings: list[str] = []
    place = Place(AgentClient.ROVO_DEV, TargetScope.PROJECT, str(project), "team")
    found = adapter_for("rovo-dev").read(Reader(project), place, warnings.append)
    expected = agent_config(body).spec
    imported = agent_config({**found, "targets": body["targets"]}).spec
    assert imported.mcp_servers == expected.mcp_servers
    assert imported.permissions == expected.permissions
    # The person's text outside the block comes along as a rule of its own, named after the file.
    assert [r for r in imported.rules if r.name != "agents"] == expected.rules
    assert [r.content for r in imported.rules if r.name == "agents"] == [AGENTS]
    # The client's own "Always" answer has no canonical name: said, not imported.
    assert warnings == [".rovodev/config.yml: toolPermissions.tools.some_tool has no canonical tool; "
                        "not imported"]


def test_import_leaves_tool_groups_with_mixed_levels_in_the_file(tmp_path: Path) -> None:
    # A canonical Edit sets all four Edit tools: importing `deny` would change move_file,
    # importing `allow` would weaken create_file. Neither group is imported.
    root = tmp_path / "home"
    (root / ".rovodev").mkdir(parents=True)
    (root / ".rovodev" / "config.yml").write_text(
        "toolPermissions:\n  tools:\n    grep: allow\n    create_file: deny\n    move_file: allow\n")
    warnings: list[str] = []
    place = Place(AgentClient.ROVO_DEV, TargetScope.USER, str(root), "team")
    found = adapter_for("rovo-dev").read(Reader(root), place, warnings.append)
    assert not found["permissions"]
    assert len(warnings) == 2 and all("not imported (they stay in the file" in w for w in warnings)


@pytest.mark.parametrize(("before", "after"), [
    ('toolPermissions:\n  bash:\n    commands: [{command: "ls.*", permission: allow}, '
     "{command: 'git log: .*', permission: allow}]\n",
     'toolPermissions:\n  bash:\n    commands: [{command: "ls.*", permission: allow}, '
     "{command: 'git log: .*', permission: allow}, {command: 'rm -rf( .*)?', permission: deny}]\n"),
    ("toolPermissions: {}\n",
     "toolPermissions: {bash: {commands: [{command: 'rm -rf( .*)?', permission: deny}]}}\n"),
], ids=["flow-list", "empty-flow-mapping"])
def test_apply_into_flow_collections_keeps_user_items_and_writes_for_every_yaml_reader(
        runner: Runner, tmp_path: Path, before: str, after: str) -> None:
    import yaml

    home = tmp_path / "home"
    (home / ".rovodev").mkdir(parents=True)
    config = home / ".rovodev" / "config.yml"
    config.write_text(before)
    obj = agent_config({"permissions": {"deny": ["Bash(rm -rf *)"]},
                        "targets": [{"client": "rovo-dev", "scope": "user", "root": str(home)}]})
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert config.read_bytes() == after.encode()
    assert yaml.safe_load(after) == YAML(typ="safe", pure=True).load(after)
    assert runner(obj).outcome is Outcome.NOOP


def test_import_turns_only_exact_spellings_of_a_glob_into_bash_rules(tmp_path: Path) -> None:
    """`Bash(rm *)` is `rm` alone or followed by a space and arguments, what the writer's
    `rm( .*)?` matches. `rm.*` also matches `rmdir` and `rm-foo`, and `cat\\s.*` not a bare
    `cat`: read back as a glob they would change what the other clients permit or deny."""
    root = tmp_path / "home"
    (root / ".rovodev").mkdir(parents=True)
    (root / ".rovodev" / "config.yml").write_text(
        "toolPermissions:\n  bash:\n    commands:\n"
        "      - command: rm.*\n        permission: deny\n"
        "      - command: npm.*\n        permission: allow\n"
        "      - command: cat\\s.*\n        permission: allow\n"
        "      - command: rm -rf( .*)?\n        permission: deny\n"
        "      - command: git diff(\\s.*)?\n        permission: allow\n"
        "      - command: ^git status$\n        permission: allow\n"
        "      - command: 'git push( +.*)?'\n        permission: ask\n")
    warnings: list[str] = []
    place = Place(AgentClient.ROVO_DEV, TargetScope.USER, str(root), "team")
    found = adapter_for("rovo-dev").read(Reader(root), place, warnings.append)
    assert found["permissions"] == {"allow": ["Bash(git diff *)", "Bash(git status)"],
                                    "ask": ["Bash(git push *)"], "deny": ["Bash(rm -rf *)"]}
    assert [w.split("{")[1].split(",")[0] for w in warnings] == [
        "'command': 'rm.*'", "'command': 'npm.*'", "'command': 'cat\\\\s.*'"]
    assert all("not imported (it stays in the file" in w for w in warnings)
    for regex in ("rm.*", "rm\\s.*", "rm .*", "rm\\s+.*", "rm"):
        assert bash_rule(regex) != "Bash(rm *)", regex


def test_a_regex_that_only_looks_like_the_spec_rule_is_not_taken_for_it(runner: Runner,
                                                                         tmp_path: Path) -> None:
    # The user's `rm.*` is broader than the spec's `Bash(rm *)`: another rule, kept, and the
    # spec's own is written beside it (before, the two were one item and nothing was written).
    home = tmp_path / "home"
    (home / ".rovodev").mkdir(parents=True)
    config = home / ".rovodev" / "config.yml"
    mine = "toolPermissions:\n  bash:\n    commands:\n    - command: rm.*\n      permission: deny\n"
    config.write_text(mine)
    obj = agent_config({"permissions": {"deny": ["Bash(rm *)"]},
                        "targets": [{"client": "rovo-dev", "scope": "user", "root": str(home)}]})
    assert runner(obj).outcome is Outcome.SUCCEEDED
    assert config.read_text() == mine + "    - command: rm( .*)?\n      permission: deny\n"
