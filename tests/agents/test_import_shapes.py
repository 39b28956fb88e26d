"""`reconciler import agents` on native files holding values of the wrong shape.

Apply refuses such a file with its line and column and writes nothing (`ShapeError`); the
importer reads the same files and must refuse them the same way, not crash with a
traceback (`"x": "oops"` as a server, `"mcpServers": []`) and not guess silently
(`"args": "a b"` read as the list `['a', ' ', 'b']`, a deny rule given as one string read
character by character). Each case is a file as a person could leave it, for each client
whose file it is; the error names the file, the line, the key path and what was expected.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.drivers.agents.documents import ShapeError
from reconciler.drivers.agents.importing import import_spec
from reconciler.errors import ReconcilerError
from reconciler.models.agents import AgentClient, AgentConfig, TargetScope

CLAUDE, QWEN, GEMINI = ".claude.json", ".qwen/settings.json", ".gemini/settings.json"
CURSOR, ROVO, CODEX = ".cursor/mcp.json", ".rovodev/mcp.json", ".codex/config.toml"
JSON_MCP = {AgentClient.CLAUDE_CODE: CLAUDE, AgentClient.QWEN_CODE: QWEN, AgentClient.GEMINI_CLI: GEMINI,
            AgentClient.CURSOR: CURSOR, AgentClient.ROVO_DEV: ROVO}

# (what is wrong, file text, line of the offending key, key path, what was expected)
JSON_CASES = [
    ("a server that is a string",
     '{\n  "mcpServers": {\n    "ok": {"command": "x"},\n    "bad": "oops"\n  }\n}\n',
     4, "/mcpServers/bad", "an object"),
    ("mcpServers a list", '{\n  "ui": {"theme": "dark"},\n  "mcpServers": []\n}\n', 3, "/mcpServers",
     "an object"),
    ("args a string",
     '{\n  "mcpServers": {\n    "gh": {\n      "command": "npx",\n      "args": "-y server"\n'
     '    }\n  }\n}\n', 5, "/mcpServers/gh/args", "a list of strings"),
    ("env a list", '{\n  "mcpServers": {\n    "gh": {\n      "command": "npx",\n      "env": ["A=1"]\n'
     '    }\n  }\n}\n', 5, "/mcpServers/gh/env", "an object"),
    ("command a number", '{\n  "mcpServers": {\n    "gh": {\n      "command": 7\n    }\n  }\n}\n',
     4, "/mcpServers/gh/command", "a string"),
    ("headers a string", '{\n  "mcpServers": {\n    "web": {\n      "url": "https://x.example/mcp",\n'
     '      "headers": "Authorization: Bearer abc"\n    }\n  }\n}\n',
     5, "/mcpServers/web/headers", "an object"),
]


def _home(tmp_path: Path, files: dict[str, str]) -> Path:
    home = tmp_path / "home"
    for relative, text in files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return home


def _refusal(client: AgentClient, home: Path) -> ShapeError:
    with pytest.raises(ShapeError) as caught:
        import_spec(client, TargetScope.USER, str(home), "mine", lambda _: None)
    return caught.value


@pytest.mark.parametrize("client", list(JSON_MCP), ids=lambda c: c.value)
@pytest.mark.parametrize(("case", "text", "line", "path", "expected"), JSON_CASES,
                         ids=[c[0] for c in JSON_CASES])
def test_import_refuses_a_json_server_of_the_wrong_shape(tmp_path: Path, client: AgentClient, case: str,
                                                        text: str, line: int, path: str,
                                                        expected: str) -> None:
    home = _home(tmp_path, {JSON_MCP[client]: text})
    error = _refusal(client, home)
    assert (error.source, error.line, error.path) == (JSON_MCP[client], line, path), case
    assert error.reason.startswith(f"expected {expected}"), error.reason


PERMISSION_CASES = [
    (AgentClient.CLAUDE_CODE, ".claude/settings.json",
     '{\n  "permissions": {\n    "allow": ["Read"],\n    "deny": "Bash(rm -rf *)"\n  }\n}\n', 4,
     "/permissions/deny"),
    (AgentClient.CLAUDE_CODE, ".claude/settings.json",
     '{\n  "permissions": {\n    "deny": ["Bash(sudo:*)", 42]\n  }\n}\n', 3, "/permissions/deny"),
    (AgentClient.CLAUDE_CODE, ".claude/settings.json", '{\n  "permissions": ["Read"]\n}\n', 2,
     "/permissions"),
    (AgentClient.QWEN_CODE, QWEN, '{\n  "permissions": {\n    "ask": "Bash(git push *)"\n  }\n}\n', 3,
     "/permissions/ask"),
    (AgentClient.CURSOR, ".cursor/cli-config.json",
     '{\n  "version": 1,\n  "permissions": {\n    "deny": "Shell(rm)"\n  }\n}\n', 4, "/permissions/deny"),
]


@pytest.mark.parametrize(("client", "file", "text", "line", "path"), PERMISSION_CASES,
                         ids=[f"{c[0].value}-{c[4]}-{i}" for i, c in enumerate(PERMISSION_CASES)])
def test_import_refuses_a_permission_list_of_the_wrong_shape(tmp_path: Path, client: AgentClient, file: str,
                                                            text: str, line: int, path: str) -> None:
    error = _refusal(client, _home(tmp_path, {file: text}))
    assert (error.source, error.line, error.path) == (file, line, path)
    assert "a list of strings" in error.reason or "an object" in error.reason, error.reason


def test_import_refuses_a_codex_server_of_the_wrong_shape(tmp_path: Path) -> None:
    text = ('model = "o3"\n\n[mcp_servers.ok]\ncommand = "npx"\n\n[mcp_servers.gh]\ncommand = "npx"\n'
            'args = "-y server"\n')
    error = _refusal(AgentClient.CODEX, _home(tmp_path, {CODEX: text}))
    assert (error.source, error.line, error.path) == (CODEX, 8, "/mcp_servers/gh/args")
    error = _refusal(AgentClient.CODEX, _home(tmp_path / "b", {CODEX: 'mcp_servers = "oops"\n'}))
    assert (error.source, error.line, error.path) == (CODEX, 1, "/mcp_servers")


def test_import_still_reads_well_formed_servers_next_to_nulls(tmp_path: Path) -> None:
    """A JSON null where a list or an object may stand is read as absent, as the clients do."""
    text = ('{\n  "mcpServers": {\n    "gh": {"command": "npx", "args": null, "env": null},\n'
            '    "web": {"url": "https://x.example/mcp", "headers": null}\n  }\n}\n')
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(_home(tmp_path, {CLAUDE: text})),
                           "mine", lambda _: None)
    assert document["spec"]["mcpServers"] == {"gh": {"command": "npx"}, "web": {"url": "https://x.example/mcp"}}


def test_the_cli_import_says_where_and_exits_1_without_a_traceback(tmp_path: Path) -> None:
    home = _home(tmp_path, {CLAUDE: JSON_CASES[0][1]})
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", "import", "agents", "--client",
                           "claude-code", "--scope", "user", "--root", str(home)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{CLAUDE}:4:" in done.stderr and "/mcpServers/bad" in done.stderr, done.stderr
    assert done.stdout == ""


# --- fuzzing: any JSON a person could leave is imported or refused, never a traceback ---------

_KEYS = ["mcpServers", "command", "args", "env", "url", "httpUrl", "headers", "type", "transport", "cwd",
         "includeTools", "excludeTools", "permissions", "allow", "ask", "deny", "defaultMode", "tools",
         "approvalMode", "general", "defaultApprovalMode", "Authorization", "my server", "grüße", ""]
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["", "npx", "${TOKEN}", "Bearer ${GH}", "$HOME", "https://x.example/mcp",
                                     "Bash(rm -rf *)", "mcp__gh__get", "sse", "http", "default", "yolo"]))
_JSON = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)), max_leaves=25)
_FILES = {AgentClient.CLAUDE_CODE: [CLAUDE, ".claude/settings.json"], AgentClient.QWEN_CODE: [QWEN],
          AgentClient.GEMINI_CLI: [GEMINI], AgentClient.CURSOR: [CURSOR, ".cursor/cli-config.json"],
          AgentClient.ROVO_DEV: [ROVO]}




def _top(base: dict[str, Any], servers: dict[str, Any] | None) -> dict[str, Any]:
    return base if servers is None else {**base, "mcpServers": servers}


_TOP = st.builds(_top, st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=4),
                 st.none() | st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=3))
_CASES = st.sampled_from(list(_FILES)).flatmap(
    lambda client: st.tuples(st.just(client), st.fixed_dictionaries({file: _TOP for file in _FILES[client]})))


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=_CASES)
def test_any_json_is_imported_or_refused_with_a_location(tmp_path_factory: pytest.TempPathFactory,
                                                         case: tuple[AgentClient, dict[str, Any]]) -> None:
    client, tops = case
    files = {file: json.dumps(top, indent=2, ensure_ascii=False) + "\n" for file, top in tops.items()}
    home = _home(tmp_path_factory.mktemp("home"), files)
    try:
        document = import_spec(client, TargetScope.USER, str(home), "mine", lambda _: None)
    except ShapeError as exc:
        assert exc.source in files and exc.line is not None, exc
        return
    except ReconcilerError as exc:  # a file the client would not read either (strict JSON, ...)
        assert any(file in str(exc) for file in files), exc
        return
    with contextlib.suppress(ValueError):  # the CLI refuses an invalid result in one line
        AgentConfig.model_validate(document)


@pytest.mark.parametrize(("value", "said"), [(True, "true"), (False, "false"), (None, "null"), (7, "7")])
def test_a_refusal_spells_values_as_the_files_do(value: Any, said: str) -> None:
    from reconciler.drivers.agents.documents import JsonDocument, refuse_shape

    doc = JsonDocument('{"general": {"vimMode": x}}'.replace("x", json.dumps(value)), QWEN)
    assert refuse_shape(doc, QWEN, ("general", "vimMode"), "an object", value).reason.endswith(
        f"got the value {said}")


@pytest.mark.parametrize(("client", "file"), [(AgentClient.QWEN_CODE, QWEN),
                                              (AgentClient.GEMINI_CLI, GEMINI)])
def test_import_refuses_legacy_flat_settings_as_apply_does(tmp_path: Path, client: AgentClient,
                                                           file: str) -> None:
    """The flat format (`autoAccept`, `contextFileName` at the top) is migrated by the client
    on its next start: an import of it would describe a file that is about to change."""
    home = _home(tmp_path, {file: '{\n  "mcpServers": {},\n  "autoAccept": true\n}\n'})
    error = _refusal(client, home)
    assert (error.source, error.line, error.path) == (file, 3, "/autoAccept")
    assert "nested settings format" in error.reason
