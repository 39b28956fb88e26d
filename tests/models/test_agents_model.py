"""The AgentConfig spec model: defaults, a complete spec, and every custom error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.models.agents import (
    AgentClient,
    AgentConfig,
    ConflictPolicy,
    DefaultMode,
    McpTransport,
    TargetScope,
)
from reconciler.models.common import SecretRef

TARGETS = [{"client": "claude-code"}]


def config(**spec: Any) -> dict[str, Any]:
    """A minimal valid AgentConfig document, with `spec` sections replaced or added."""
    base: dict[str, Any] = {"targets": TARGETS}
    base.update(spec)
    return {
        "apiVersion": "reconciler.dev/v1alpha1",
        "kind": "AgentConfig",
        "metadata": {"name": "team-agents"},
        "spec": base,
    }


def servers(**entries: dict[str, Any]) -> dict[str, Any]:
    return config(mcpServers=entries)


def error_of(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        AgentConfig.model_validate(document)
    return str(info.value)


def test_minimal_spec_gets_defaults() -> None:
    spec = AgentConfig.model_validate(config()).spec
    assert spec.mcp_servers == {}
    assert spec.rules == []
    assert (spec.permissions.allow, spec.permissions.ask, spec.permissions.deny) == ([], [], [])
    assert spec.permissions.default_mode is None
    assert spec.conflict_policy.default is ConflictPolicy.OVERRIDE
    assert spec.conflict_policy.clients == {}
    assert spec.strict is False


def test_target_defaults_to_project_scope_in_the_current_folder() -> None:
    target = AgentConfig.model_validate(config()).spec.targets[0]
    assert target.scope is TargetScope.PROJECT
    assert target.root is None
    assert target.effective_root == "."
    assert target.overrides == {}
    assert target.conflict_policy is None


def test_user_scope_target_defaults_to_the_home_folder() -> None:
    spec = AgentConfig.model_validate(config(targets=[{"client": "codex", "scope": "user"}])).spec
    assert spec.targets[0].effective_root == "~"


def test_stdio_server_gets_defaults_and_no_transport() -> None:
    spec = AgentConfig.model_validate(servers(fs={"command": "npx"})).spec
    server = spec.mcp_servers["fs"]
    assert (server.args, server.env, server.cwd) == ([], {}, None)
    assert server.transport is None
    assert server.enabled is True
    assert (server.enabled_tools, server.disabled_tools) == (None, [])
    assert server.is_remote is False


def test_remote_server_defaults_to_http_transport() -> None:
    spec = AgentConfig.model_validate(servers(docs={"url": "https://mcp.example.com/mcp"})).spec
    assert spec.mcp_servers["docs"].transport is McpTransport.HTTP
    assert spec.mcp_servers["docs"].is_remote is True


def test_complete_spec_is_accepted_with_every_section() -> None:
    document = config(
        mcpServers={
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "LOG_LEVEL": "info"},
                "cwd": "./tools",
                "disabledTools": ["delete_repo"],
            },
            "events": {
                "url": "https://events.example.com/sse",
                "transport": "sse",
                "headers": {"Authorization": {"env": "EVENTS_AUTH"}, "X-Team": "platform"},
                "enabledTools": ["subscribe"],
                "enabled": False,
            },
            "docs": {"url": "https://docs.example.com/mcp", "bearerToken": {"env": "DOCS_TOKEN"}},
        },
        rules=[
            {"name": "style", "content": "# Style\nUse ruff."},
            {"name": "sql", "description": "SQL", "content": "Quote ids.", "paths": ["**/*.sql"]},
        ],
        permissions={
            "allow": ["Read", "Bash(npm run test *)", "mcp__github__get_issue"],
            "ask": ["Bash(git push *)", "WebFetch(domain:example.com)"],
            "deny": ["Read(./.env)", "mcp__*"],
            "defaultMode": "acceptEdits",
        },
        targets=[
            {"client": "claude-code", "root": "./sandbox/project", "conflictPolicy": "Merge"},
            {
                "client": "codex",
                "scope": "user",
                "root": "/tmp/home",
                "overrides": {"approval_policy": "on-request", "sandbox": {"network": False}},
            },
        ],
        conflictPolicy={
            "default": "Adopt",
            "clients": {"codex": "IfNotPresent"},
            "paths": [{"path": "/mcpServers/github", "policy": "Ignore"}],
        },
        strict=True,
    )
    spec = AgentConfig.model_validate(document).spec
    assert spec.mcp_servers["github"].env["GITHUB_TOKEN"] == SecretRef(env="GITHUB_TOKEN")
    assert spec.mcp_servers["github"].env["LOG_LEVEL"] == "info"
    assert spec.mcp_servers["events"].transport is McpTransport.SSE
    assert spec.mcp_servers["docs"].bearer_token == SecretRef(env="DOCS_TOKEN")
    assert spec.rules[1].paths == ["**/*.sql"]
    assert spec.permissions.default_mode is DefaultMode.ACCEPT_EDITS
    assert spec.targets[0].conflict_policy is ConflictPolicy.MERGE
    assert spec.targets[1].overrides["sandbox"] == {"network": False}
    assert spec.conflict_policy.clients == {AgentClient.CODEX: ConflictPolicy.IF_NOT_PRESENT}
    assert spec.conflict_policy.paths[0].policy is ConflictPolicy.IGNORE
    assert spec.strict is True


def test_spec_round_trips_through_its_camel_case_dump() -> None:
    document = servers(docs={"url": "https://docs.example.com/mcp"})
    model = AgentConfig.model_validate(document)
    dumped = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert dumped["spec"]["mcpServers"]["docs"]["transport"] == "http"
    assert AgentConfig.model_validate(dumped) == model


def test_server_with_both_command_and_url_is_refused() -> None:
    message = error_of(servers(x={"command": "npx", "url": "https://a.example.com"}))
    expected = "expected exactly one of command (a stdio server) or url (a remote server), got both"
    assert expected in message


def test_server_with_neither_command_nor_url_is_refused() -> None:
    message = error_of(servers(x={"args": ["-y"]}))
    assert "expected exactly one of command (a stdio server) or url (a remote server), got " in (
        message
    )
    assert "got neither" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("args", ["-y"]), ("env", {"LOG": "1"}), ("cwd", "/srv")],
)
def test_stdio_field_on_a_remote_server_names_the_field(field: str, value: Any) -> None:
    message = error_of(servers(x={"url": "https://a.example.com", field: value}))
    assert f"expected no {field} on a remote server (url), got {field}" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transport", "sse"),
        ("headers", {"X-Team": "a"}),
        ("bearerToken", {"env": "TOKEN"}),
    ],
)
def test_remote_field_on_a_stdio_server_names_the_field(field: str, value: Any) -> None:
    message = error_of(servers(x={"command": "npx", field: value}))
    assert f"expected no {field} on a stdio server (command), got {field}" in message


def test_server_name_with_a_space_or_accents_is_accepted() -> None:
    # Real Cursor files name servers "My Server" or "Büro-Tools": the import must read them.
    obj = AgentConfig.model_validate(servers(**{"my server": {"command": "npx"},
                                                "Büro-Tools": {"command": "npx"}}))
    assert set(obj.spec.mcp_servers) == {"my server", "Büro-Tools"}


@pytest.mark.parametrize("name", ["a.b", "a/b", "~a", "a#b", ""])
def test_server_name_that_cannot_be_a_key_path_is_refused(name: str) -> None:
    message = error_of(servers(**{name: {"command": "npx"}}))
    assert "expected an MCP server name (letters, digits, spaces" in message


def test_literal_secret_in_env_is_refused() -> None:
    message = error_of(servers(gh={"command": "npx", "env": {"GITHUB_TOKEN": "ghp_sentinel"}}))
    assert "expected a secret reference such as {env: GITHUB_TOKEN} for env GITHUB_TOKEN" in message
    assert "ghp_sentinel" not in message.split("[type=")[0]


def test_literal_authorization_header_is_refused() -> None:
    document = servers(x={"url": "https://a.example.com", "headers": {"Authorization": "Bearer s"}})
    message = error_of(document)
    assert "expected a secret reference (or bearerToken) for header Authorization" in message


def test_unknown_transport_is_refused() -> None:
    message = error_of(servers(x={"url": "https://a.example.com", "transport": "ws"}))
    assert "'http' or 'sse'" in message


def test_remote_url_without_scheme_is_refused() -> None:
    message = error_of(servers(x={"url": "a.example.com/mcp"}))
    assert "expected an http:// or https:// URL, got 'a.example.com/mcp'" in message


def test_rule_name_that_is_not_a_dns_label_is_refused() -> None:
    message = error_of(config(rules=[{"name": "Code_Style", "content": "x"}]))
    assert "expected a DNS-1123 label" in message
    assert "got 'Code_Style'" in message


def test_duplicate_rule_names_name_the_duplicate() -> None:
    rules = [{"name": "style", "content": "a"}, {"name": "style", "content": "b"}]
    assert "expected unique rule names, got 'style' twice" in error_of(config(rules=rules))


def test_rule_without_content_is_refused() -> None:
    message = error_of(config(rules=[{"name": "style", "content": ""}]))
    assert "spec.rules.0.content" in message


def test_permission_rule_in_the_wrong_syntax_shows_the_expected_syntax() -> None:
    message = error_of(config(permissions={"allow": ["Bash npm test"]}))
    assert "expected a permission rule in the form Tool or Tool(specifier)" in message
    assert "got 'Bash npm test'" in message


def test_unknown_default_mode_is_refused() -> None:
    message = error_of(config(permissions={"defaultMode": "yolo"}))
    assert "spec.permissions.defaultMode" in message
    assert "'bypassPermissions'" in message


def test_spec_without_targets_is_refused() -> None:
    assert "expected at least one target, got none" in error_of(config(targets=[]))


def test_duplicate_target_is_refused_with_its_client_scope_and_root() -> None:
    targets = [{"client": "codex"}, {"client": "codex", "scope": "project", "root": "."}]
    message = error_of(config(targets=targets))
    assert (
        "expected each (client, scope, root) once in targets, got client 'codex', scope "
        "'project', root '.' twice"
    ) in message


def test_same_client_at_two_roots_is_accepted() -> None:
    targets = [{"client": "codex"}, {"client": "codex", "root": "./other"}]
    spec = AgentConfig.model_validate(config(targets=targets)).spec
    assert [t.effective_root for t in spec.targets] == [".", "./other"]


def test_unknown_client_is_refused() -> None:
    message = error_of(config(targets=[{"client": "copilot"}]))
    assert "'claude-code'" in message
    assert "spec.targets.0.client" in message


def test_conflict_path_that_is_not_a_json_pointer_is_refused() -> None:
    policy = {"paths": [{"path": "mcpServers.github", "policy": "Ignore"}]}
    message = error_of(config(conflictPolicy=policy))
    assert "expected a JSON pointer starting with '/'" in message
    assert "got 'mcpServers.github'" in message


def test_duplicate_conflict_path_is_refused() -> None:
    entry = {"path": "/mcpServers/github", "policy": "Ignore"}
    message = error_of(config(conflictPolicy={"paths": [entry, entry]}))
    assert "expected each path once in conflictPolicy.paths, got '/mcpServers/github' twice" in (
        message
    )


def test_unknown_conflict_policy_is_refused() -> None:
    message = error_of(config(conflictPolicy={"default": "Replace"}))
    assert "'IfNotPresent'" in message


@pytest.mark.parametrize("value", ["", "${GITHUB_TOKEN}", "$GITHUB_TOKEN", "${env:GITHUB_TOKEN}",
                                   "%GITHUB_TOKEN%"])
def test_a_secret_named_env_holding_no_secret_is_accepted(value: str) -> None:
    """Empty, or only a variable reference in some client's syntax (as real files hold them)."""
    spec = AgentConfig.model_validate(servers(gh={"command": "gh-mcp", "env": {"GITHUB_TOKEN": value}})).spec
    assert spec.mcp_servers["gh"].env["GITHUB_TOKEN"] == value


@pytest.mark.parametrize(("where", "key", "value"), [
    ("env", "GITHUB_TOKEN", "ghp_abc123"), ("env", "GITHUB_TOKEN", "${GITHUB_TOKEN}x"),
    ("headers", "Authorization", "Bearer abc123"), ("headers", "X-Api-Key", "$KEY and more"),
])
def test_a_literal_secret_is_still_refused(where: str, key: str, value: str) -> None:
    entry: dict[str, Any] = ({"command": "gh-mcp", "env": {key: value}} if where == "env"
                             else {"url": "https://a.example.com/mcp", "headers": {key: value}})
    assert "secret values are never written in specs" in error_of(servers(gh=entry))


def test_every_literal_secret_of_a_server_is_named_at_its_own_key() -> None:
    """Three literal secrets are three problems, each at its env key or header (not one, at
    the server), and no message shows a value."""
    from reconciler.models.agents import McpServer

    with pytest.raises(ValidationError) as info:
        McpServer.model_validate({"command": "x", "env": {"GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstu",
                                                          "API_KEY": "sk-abcdefghijklmnopqrstuv"}})
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [("env", "GITHUB_TOKEN"), ("env", "API_KEY")]
    assert not any("ghp_" in e["msg"] or "sk-" in e["msg"] for e in errors)
    with pytest.raises(ValidationError) as info:
        McpServer.model_validate({"url": "https://e.test/mcp",
                                  "headers": {"Authorization": "Bearer abcdefghijkl"}})
    assert [e["loc"] for e in info.value.errors()] == [("headers", "Authorization")]


# A secret can hide in a server's arguments or URL as well as in its env and headers: the
# spec is committed to git and every client's file would carry it.
SECRETS_IN_ARGS_AND_URLS = [
    ({"command": "mcp", "args": ["--api-key", "abc123sentinel"]}, ("args", 1)),
    ({"command": "mcp", "args": ["serve", "--token=abc123sentinel"]}, ("args", 1)),
    ({"command": "docker", "args": ["run", "-e", "GITHUB_TOKEN=abc123sentinel", "img"]}, ("args", 2)),
    ({"command": "mcp", "args": ["--password", "abc123sentinel"]}, ("args", 1)),
    ({"command": "mcp", "args": ["ghp_abc123sentinel0123456789abcdefghijkl"]}, ("args", 0)),
    ({"command": "mcp", "args": ["--key", "sk-ant-api03-abc123sentinel012345"]}, ("args", 1)),
    ({"url": "https://user:abc123sentinel@mcp.example.com/mcp"}, ("url",)),
    ({"url": "https://mcp.example.com/mcp?api_key=abc123sentinel&x=1"}, ("url",)),
    ({"url": "https://mcp.example.com/sse?token=abc123sentinel", "transport": "sse"}, ("url",)),
]


@pytest.mark.parametrize(("entry", "loc"), SECRETS_IN_ARGS_AND_URLS)
def test_a_literal_secret_in_args_or_url_is_refused_at_its_place(entry: dict[str, Any],
                                                                 loc: tuple[Any, ...]) -> None:
    from reconciler.models.agents import McpServer

    with pytest.raises(ValidationError) as info:
        McpServer.model_validate(entry)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [loc]
    assert "secret values are never written in specs" in errors[0]["msg"]
    assert "sentinel" not in str(errors[0]["msg"])


@pytest.mark.parametrize("entry", [
    {"command": "mcp", "args": ["--token-file", "/run/secrets/token"]},
    {"command": "mcp", "args": ["--api-key", "${API_KEY}"]},
    {"command": "mcp", "args": ["--token=$GITHUB_TOKEN"]},
    {"command": "docker", "args": ["run", "-e", "GITHUB_TOKEN", "-e", "API_KEY=${API_KEY}", "img"]},
    {"command": "mcp", "args": ["--password-stdin", "--tokens", "4096", "--max-token", "8192"]},
    {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github", "--secret"]},
    {"url": "https://mcp.example.com/mcp?api_key=${DOCS_KEY}&token=%TOKEN%&page=2"},
    {"url": "https://mcp.example.com/mcp?key=&tokenizer=cl100k"},
])
def test_args_and_urls_without_a_secret_value_are_accepted(entry: dict[str, Any]) -> None:
    from reconciler.models.agents import McpServer

    McpServer.model_validate(entry)


def test_a_literal_secret_in_a_target_override_is_refused_at_its_key() -> None:
    overrides = {"mcp_servers.stripe.env": {"STRIPE_SECRET_KEY": "sk_live_sentinel0123"},
                 "mcp_servers.stripe.startup_timeout_sec": 20, "approval_policy": "on-request",
                 "mcp_servers.gh.env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "LOG_LEVEL": "debug"}}
    with pytest.raises(ValidationError) as info:
        AgentConfig.model_validate(config(targets=[{"client": "codex", "overrides": overrides}]))
    errors = info.value.errors()
    assert [e["loc"][-3:] for e in errors] == [("overrides", "mcp_servers.stripe.env", "STRIPE_SECRET_KEY")]
    assert "sentinel" not in str(errors)
    del overrides["mcp_servers.stripe.env"]
    AgentConfig.model_validate(config(targets=[{"client": "codex", "overrides": overrides}]))
