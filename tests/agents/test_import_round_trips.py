"""`import agents` then `apply` changes no byte: cases taken from real public dotfiles.

Each file below is a minimal rewrite of what a real configuration held when 74 public
client files were run through the corpus checks (the real files are not copied here). In
every case, before the fix, importing the file and applying the imported spec to it changed
its bytes, or the import failed as a whole on one value the canonical model cannot hold:

- Rovo Dev entries without `transport` (Rovo's own examples always write it; real files
  often leave it out) got one added;
- Qwen's `Bearer $TOKEN` header came back as `Bearer ${TOKEN}`;
- an empty header value, or a value that is only a variable reference in another syntax
  (`${VAR}` in Cursor's file, `$TOKEN` in Claude's), was taken for a literal secret and
  replaced by an env reference of the key's name;
- a number in an MCP server's `env` (Cursor passes it on) came back as a string;
- Claude's `dontAsk` mode, a deny rule the canonical syntax cannot read, and a Cursor server
  named `@scope/name` made the whole import fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from running import Runner

from agents.conftest import agent_config, tree
from reconciler.drivers.agents.importing import import_spec
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


CASES = [
    ("rovo-no-transport", AgentClient.ROVO_DEV, ".rovodev/mcp.json", _json({"mcpServers": {
        "memory": {"command": "npx", "args": ["-y", "memory-server"]},
        "docs": {"url": "https://docs.example.com/mcp"},
        "sse one": {"url": "https://events.example.com/sse", "transport": "sse"}}})),
    ("qwen-dollar-header", AgentClient.QWEN_CODE, ".qwen/settings.json", _json({"mcpServers": {
        "search": {"httpUrl": "https://search.example.com/mcp",
                   "headers": {"Authorization": "Bearer $SEARCH_TOKEN", "X-Team": "$TEAM"}}}})),
    ("gemini-empty-key", AgentClient.GEMINI_CLI, ".gemini/settings.json", _json({"mcpServers": {
        "c7": {"httpUrl": "https://mcp.example.com/mcp", "headers": {"API_KEY": ""}}}})),
    ("claude-empty-and-dollar", AgentClient.CLAUDE_CODE, ".claude.json", _json({"mcpServers": {
        "c7": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"API_KEY": ""}},
        "gh": {"type": "http", "url": "https://gh.example.com/mcp",
               "headers": {"Authorization": "Bearer $GH_TOKEN"}}}})),
    ("cursor-plain-reference", AgentClient.CURSOR, ".cursor/mcp.json", _json({"mcpServers": {
        "github": {"command": "docker", "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
                   "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_PERSONAL_ACCESS_TOKEN}"}}}})),
    ("claude-dont-ask", AgentClient.CLAUDE_CODE, ".claude/settings.json", _json({"permissions": {
        "defaultMode": "dontAsk", "allow": ["Bash(git status)"],
        "deny": ["Bash(git checkout .)*", "Read(./.env)"]}})),
    ("cursor-number-env", AgentClient.CURSOR, ".cursor/mcp.json", _json({"mcpServers": {
        "figma": {"command": "npx", "args": ["-y", "figma-mcp"], "env": {"PORT": 3334, "DEBUG": True}}}})),
    ("cursor-scoped-name", AgentClient.CURSOR, ".cursor/mcp.json", _json({"mcpServers": {
        "@21st-dev/magic": {"command": "npx", "args": ["-y", "@21st-dev/magic@latest"]},
        "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]}}})),
    ("claude-secret-in-args", AgentClient.CLAUDE_CODE, ".claude.json", _json({"mcpServers": {
        "brave": {"command": "npx", "args": ["-y", "brave-mcp", "--api-key", "BSAsentinel0123456789"]},
        "maps": {"type": "http", "url": "https://maps.example.com/mcp?key=AIsentinel0123456789"},
        "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]}}})),
]
TEXT = {case[0]: case[3] for case in CASES}


@pytest.mark.parametrize(("client", "file", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_import_then_apply_changes_no_byte(runner: Runner, tmp_path: Path, client: AgentClient, file: str,
                                           text: str) -> None:
    root = tmp_path / "home"
    (root / file).parent.mkdir(parents=True)
    (root / file).write_text(text, encoding="utf-8")
    warnings: list[str] = []
    document = import_spec(client, TargetScope.USER, str(root), "mine", warnings.append)
    before = tree(root)
    result = runner(agent_config(document["spec"]))
    assert result.outcome in (Outcome.NOOP, Outcome.SUCCEEDED), result.error
    assert tree(root) == before, (warnings, (root / file).read_text())


def test_what_the_canonical_model_cannot_hold_is_left_in_the_file_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "home"
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "settings.json").write_text(TEXT["claude-dont-ask"])
    warnings: list[str] = []
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(root), "mine", warnings.append)
    assert document["spec"]["permissions"] == {"allow": ["Bash(git status)"], "deny": ["Read(./.env)"]}
    assert any("dontAsk" in w and "not imported" in w for w in warnings), warnings
    assert any("Bash(git checkout .)*" in w and "stays in the file" in w for w in warnings), warnings
    (root / ".cursor").mkdir()
    (root / ".cursor" / "mcp.json").write_text(TEXT["cursor-scoped-name"])
    document = import_spec(AgentClient.CURSOR, TargetScope.USER, str(root), "mine", warnings.append)
    assert list(document["spec"]["mcpServers"]) == ["fetch"]
    assert any("@21st-dev/magic" in w and "stays in the file" in w for w in warnings), warnings


def test_an_empty_or_reference_only_value_is_not_taken_for_a_secret(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / ".claude.json").write_text(TEXT["claude-empty-and-dollar"])
    warnings: list[str] = []
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(root), "mine", warnings.append)
    servers = document["spec"]["mcpServers"]
    assert servers["c7"]["headers"] == {"API_KEY": ""}
    assert servers["gh"]["headers"] == {"Authorization": "Bearer $GH_TOKEN"}
    assert not [w for w in warnings if "secret" in w], warnings


def test_a_number_in_env_is_text_in_the_spec_and_stays_a_number_in_its_file(tmp_path: Path) -> None:
    root = tmp_path / "home"
    (root / ".cursor").mkdir(parents=True)
    (root / ".cursor" / "mcp.json").write_text(TEXT["cursor-number-env"])
    document = import_spec(AgentClient.CURSOR, TargetScope.USER, str(root), "mine", lambda _: None)
    assert document["spec"]["mcpServers"]["figma"]["env"] == {"PORT": "3334", "DEBUG": "true"}
    assert document["spec"]["targets"][0]["overrides"] == {"mcpServers.figma.env.PORT": 3334,
                                                           "mcpServers.figma.env.DEBUG": True}


def test_a_literal_that_only_looks_like_a_reference_is_noted_where_the_client_does_not_expand_it() -> None:
    from reconciler.drivers.agents.clients import adapter_for
    from reconciler.drivers.agents.entries import Place

    body = {"mcpServers": {"gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
                           "api": {"url": "https://example.test/mcp",
                                   "headers": {"Authorization": "Bearer ${API_TOKEN}"}}},
            "targets": [{"client": "cursor", "scope": "user"}, {"client": "claude-code", "scope": "user"},
                        {"client": "codex", "scope": "user"}]}
    spec = agent_config(body).spec
    notes = {}
    for target in spec.targets:
        place = Place.of(target, "team")
        rendering = adapter_for(target.client).render(spec.for_target(target), place)
        notes[target.client.value] = [n.detail for n in rendering.notes
                                      if "GITHUB_TOKEN" in n.field or "Authorization" in n.field]
    assert any("does not read it as a variable reference" in d for d in notes["cursor"]), notes
    assert notes["claude-code"] == []  # Claude expands ${VAR}: nothing to say
    # Codex's env and http_headers are literal maps: both are said
    assert len([d for d in notes["codex"] if "does not read it as a variable reference" in d]) == 2, notes


def test_a_crlf_instruction_file_round_trips_and_gets_its_block_in_crlf(runner: Runner,
                                                                         tmp_path: Path) -> None:
    """Windows editors write CRLF; the spec printed by `import` is YAML, which reads line
    breaks as LF: the text is the same rule, and apply neither repeats it nor mixes endings."""
    from ruamel.yaml import YAML

    from reconciler.drivers.agents.importing import to_yaml

    root = tmp_path / "home"
    (root / ".claude").mkdir(parents=True)
    memory = root / ".claude" / "CLAUDE.md"
    memory.write_bytes(b"# Project\r\n\r\nUse tabs.\r\n\r\n## Tests\r\n\r\nRun them.\r\n")
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(root), "mine", lambda _: None)
    printed = YAML(typ="safe").load(to_yaml(document))  # what `apply` of the printed spec reads
    before = memory.read_bytes()
    assert runner(agent_config(printed["spec"])).outcome is Outcome.NOOP
    assert memory.read_bytes() == before
    body = {**printed["spec"], "rules": [*printed["spec"]["rules"], {"name": "style", "content": "Short.\n"}]}
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    after = memory.read_bytes()
    assert after.startswith(before) and b"Short." in after
    assert after.count(b"\n") == after.count(b"\r\n"), after  # no bare LF


def test_an_agent_requested_cursor_rule_is_left_in_its_file(runner: Runner, tmp_path: Path) -> None:
    """`alwaysApply: false` without globs: Cursor offers the rule when its description fits.
    Imported as an always-on rule it came back as `alwaysApply: true`, another meaning."""
    project = tmp_path / "project"
    rules = project / ".cursor" / "rules"
    rules.mkdir(parents=True)
    text = ("---\ndescription: Read the spec before editing code\nglobs:\nalwaysApply: false\n---\n\n"
            "Read it.\n")
    (rules / "spec-first.mdc").write_text(text)
    warnings: list[str] = []
    document = import_spec(AgentClient.CURSOR, TargetScope.PROJECT, str(project), "mine", warnings.append)
    assert not document["spec"].get("rules")
    assert any("spec-first.mdc" in w and "stays in the file" in w for w in warnings), warnings
    runner(agent_config(document["spec"]))
    assert (rules / "spec-first.mdc").read_text() == text


@pytest.mark.parametrize(("client", "folder"), [(AgentClient.CLAUDE_CODE, ".claude/rules"),
                                                (AgentClient.QWEN_CODE, ".qwen/rules")])
def test_a_rules_file_without_paths_is_not_copied_into_the_instruction_file(
        runner: Runner, tmp_path: Path, client: AgentClient, folder: str) -> None:
    project = tmp_path / "project"
    (project / folder).mkdir(parents=True)
    (project / folder / "commits.md").write_text("# Commits\n\nNever force push.\n")
    (project / folder / "sql.md").write_text('---\npaths: ["db/**"]\n---\n\nReversible migrations.\n')
    warnings: list[str] = []
    document = import_spec(client, TargetScope.PROJECT, str(project), "mine", warnings.append)
    assert [r["name"] for r in document["spec"]["rules"]] == ["sql"]
    assert any("commits.md" in w and "stays in the file" in w for w in warnings), warnings
    before = tree(project)
    runner(agent_config(document["spec"]))
    assert tree(project) == before


@pytest.mark.parametrize(("client", "file", "text"), [
    (AgentClient.CLAUDE_CODE, ".claude/rules/py.md",
     "---\ndescription: Plain text, unquoted\npaths: [\"src/**/*.py\", \"tests/**\"]\n---\n\nUse types.\n"),
    (AgentClient.QWEN_CODE, ".qwen/rules/py.md",
     "---\npaths:\n- src/**/*.py\ndescription: 'Python'\n---\nUse types.\n"),
    (AgentClient.CURSOR, ".cursor/rules/py.mdc",
     "---\nalwaysApply: false\ndescription: Python style \nglobs: [\"src/**/*.py\", \"tests/**\"]\n---\n\n"
     "Use types.\n\n"),
    (AgentClient.CURSOR, ".cursor/rules/web.mdc",
     "---\ndescription: Web\nglobs:\n  - \"web/**\"\n  - \"*.css\"\nalwaysApply: false\n---\nTabs.\n"),
], ids=["claude-flow-list", "qwen-block-list", "cursor-flow-list", "cursor-block-list"])
def test_a_scoped_rule_file_keeps_its_own_front_matter_spelling(runner: Runner, tmp_path: Path,
                                                                client: AgentClient, file: str,
                                                                text: str) -> None:
    """Quotes, flow or block lists, key order, a trailing space, blank lines: the same rule."""
    project = tmp_path / "project"
    (project / file).parent.mkdir(parents=True)
    (project / file).write_text(text)
    document = import_spec(client, TargetScope.PROJECT, str(project), "mine", lambda _: None)
    assert [r.get("paths") for r in document["spec"]["rules"]] != [None]
    result = runner(agent_config(document["spec"]))
    assert result.outcome is Outcome.NOOP, result.outcome
    assert (project / file).read_text() == text
    changed = {**document["spec"], "rules": [{**document["spec"]["rules"][0], "content": "Other.\n"}]}
    assert runner(agent_config(changed)).outcome is Outcome.SUCCEEDED  # a real change is written
    assert "Other." in (project / file).read_text()


@pytest.mark.parametrize("configured", ["AGENTS.md", ["AGENTS.md", "GEMINI.md"]])
def test_gemini_rules_go_to_the_file_its_context_file_name_names(runner: Runner, tmp_path: Path,
                                                                 configured: Any) -> None:
    """`context.fileName` tells Gemini CLI which instruction file to load (AGENTS.md, shared
    with other clients, is common): import reads the rules from it and says so in the target's
    overrides, so that apply writes there, not into a GEMINI.md that Gemini would not load."""
    root = tmp_path / "home"
    (root / ".gemini").mkdir(parents=True)
    (root / ".gemini" / "settings.json").write_text(_json({"context": {"fileName": configured}}))
    (root / ".gemini" / "AGENTS.md").write_text("# Team rules\n\nAsk before deleting files.\n")
    document = import_spec(AgentClient.GEMINI_CLI, TargetScope.USER, str(root), "mine", lambda _: None)
    assert document["spec"]["targets"][0]["overrides"] == {"context.fileName": configured}
    assert "Ask before deleting files." in document["spec"]["rules"][0]["content"]
    before = tree(root)
    assert runner(agent_config(document["spec"])).outcome is Outcome.NOOP
    assert tree(root) == before
    rules = [*document["spec"]["rules"], {"name": "style", "content": "Short.\n"}]
    assert runner(agent_config({**document["spec"], "rules": rules})).outcome is Outcome.SUCCEEDED
    assert "Short." in (root / ".gemini" / "AGENTS.md").read_text()
    assert not (root / ".gemini" / "GEMINI.md").exists()


def test_a_project_claude_dir_instruction_file_is_named_not_silently_skipped(runner: Runner,
                                                                             tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "CLAUDE.md").write_text("# Build\n\nmake check before pushing.\n")
    warnings: list[str] = []
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.PROJECT, str(project), "mine",
                           warnings.append)
    assert any(w.startswith(".claude/CLAUDE.md:") and "stays in the file" in w for w in warnings), warnings
    before = tree(project)
    runner(agent_config(document["spec"]))
    assert tree(project) == before


def test_a_tool_rule_of_a_server_whose_name_holds_two_underscores_names_that_server() -> None:
    """`mcp__a__b__x2` with a declared server `a__b` is its tool `x2` in every client, not a
    tool `b__x2` of a server `a` nobody declared (a deny that would deny nothing)."""
    from reconciler.drivers.agents.planning import render_spec

    body = {"mcpServers": {"a__b": {"command": "x"}}, "permissions": {"deny": ["mcp__a__b__x2"]},
            "targets": [{"client": "gemini-cli", "scope": "user", "root": "/nowhere"},
                        {"client": "cursor", "scope": "user", "root": "/nowhere"},
                        {"client": "codex", "scope": "user", "root": "/nowhere"}]}
    entries = render_spec(agent_config(body)).entries
    texts = " ".join(f"{e.key} {e.value!r}" for e in entries)
    assert 'mcpName = "a__b"\\ntoolName = "x2"' in texts
    assert "Mcp(a__b:x2)" in texts and "Mcp(a:b__x2)" not in texts
    assert "disabled_tools" in texts and "x2" in texts


def test_a_server_holding_a_literal_secret_in_args_or_url_is_left_in_the_file(tmp_path: Path) -> None:
    """A spec never holds a secret value (it goes to git): such a server is not imported, the
    warning names where the secret is without showing it, and apply leaves the entry alone."""
    root = tmp_path / "home"
    root.mkdir()
    (root / ".claude.json").write_text(TEXT["claude-secret-in-args"])
    warnings: list[str] = []
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(root), "mine", warnings.append)
    assert list(document["spec"]["mcpServers"]) == ["fetch"]
    assert "sentinel" not in json.dumps(document) + "".join(warnings)
    assert any("mcpServers.brave: args[3] holds a literal secret" in w for w in warnings), warnings
    assert any("mcpServers.maps: url holds a literal secret" in w for w in warnings), warnings


@pytest.mark.parametrize("toml", [
    '[mcp_servers.stripe]\ncommand = "npx"\nenv = { STRIPE_SECRET_KEY = "sk_live_sentinel0123456789" }\n',
    '[mcp_servers.stripe]\ncommand = "npx"\n\n'
    '[mcp_servers.stripe.env]\nSTRIPE_SECRET_KEY = "sk_live_sentinel0123456789"\n',
    '[mcp_servers.docs]\nurl = "https://docs.example.com/mcp"\n'
    'http_headers = { Authorization = "Bearer sentinel0123456789" }\n',
])
def test_a_codex_literal_secret_never_reaches_the_spec_through_its_overrides(tmp_path: Path,
                                                                             toml: str) -> None:
    """Codex passes env through by name (`env_vars`), so a literal `env` table is a field the
    spec would not render: it was carried over whole as a target override, secret and all."""
    root = tmp_path / "home"
    (root / ".codex").mkdir(parents=True)
    (root / ".codex" / "config.toml").write_text(toml)
    warnings: list[str] = []
    document = import_spec(AgentClient.CODEX, TargetScope.USER, str(root), "mine", warnings.append)
    assert "sentinel" not in json.dumps(document) + "".join(warnings), document
    agent_config(document["spec"])  # the imported spec is valid
