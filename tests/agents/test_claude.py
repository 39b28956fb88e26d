"""Claude Code through the real engine: ownership, drift, policies, rollback, import."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config, assert_same_spec, own_rule, tree
from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.entries import Place
from reconciler.engine import conditions
from reconciler.engine.rendering import render
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.structs.runs import Outcome, Trigger

CLAUDE_JSON = """{
  "numStartups": 42,
  "projects": {
    "/home/me/app": {"allowedTools": [], "history": [{"display": "fix it"}]}
  },
  "mcpServers": {
    "personal": {"type": "stdio", "command": "my-server"}
  },
  "oauthAccount": {"emailAddress": "me@example.com"}
}
"""
SETTINGS = """{
  "env": {"FOO": "bar"},
  "hooks": {
    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit"}]}]
  },
  "statusLine": {"type": "command", "command": "~/bin/status"},
  "permissions": {"additionalDirectories": ["../docs"]}
}
"""
LOCAL = '{"permissions": {"allow": ["Bash(make *)"]}}\n'
MEMORY = "# My notes\n\nAlways answer in English.\n"


def spec(home: Path, **extra: Any) -> dict[str, Any]:
    return {
        "mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "MODE": "ro"},
                       "disabledTools": ["delete_repository"]},
            "docs": {"url": "https://docs.example.com/mcp", "bearerToken": {"env": "DOCS_TOKEN"}},
            "metrics": {"url": "https://m.example.com/sse", "transport": "sse"},
        },
        "rules": [
            {"name": "style", "description": "House style", "content": "# Style\n- typed\n"},
            {"name": "sql", "paths": ["migrations/**/*.sql"], "content": "Never edit a migration.\n"},
        ],
        "permissions": {"allow": ["Read", "Bash(npm run test *)"], "ask": ["Bash(git push *)"],
                        "deny": ["Read(./.env)"], "defaultMode": "default"},
        "targets": [{"client": "claude-code", "scope": "user", "root": str(home)}],
        **extra,
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(CLAUDE_JSON)
    (home / ".claude" / "settings.json").write_text(SETTINGS)
    (home / ".claude" / "settings.local.json").write_text(LOCAL)
    (home / ".claude" / "CLAUDE.md").write_text(MEMORY)
    os.chmod(home / ".claude.json", 0o600)
    return home


def test_apply_owns_keys_and_keeps_everything_else(runner: Runner, home: Path) -> None:
    result = runner(agent_config(spec(home)))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    state = json.loads((home / ".claude.json").read_text())
    assert state["numStartups"] == 42 and state["oauthAccount"] == {"emailAddress": "me@example.com"}
    assert state["projects"] == json.loads(CLAUDE_JSON)["projects"]
    servers = state["mcpServers"]
    assert servers["personal"] == {"type": "stdio", "command": "my-server"}
    assert servers["github"]["env"] == {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "MODE": "ro"}
    assert servers["docs"] == {"type": "http", "url": "https://docs.example.com/mcp",
                               "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}
    assert servers["metrics"]["type"] == "sse"
    text = (home / ".claude.json").read_text()
    # Foreign members are byte-identical: the original text up to the owned servers is a prefix.
    assert text.startswith(CLAUDE_JSON[: CLAUDE_JSON.index('"personal"')])
    assert '  "oauthAccount": {"emailAddress": "me@example.com"}\n}\n' in text
    assert os.stat(home / ".claude.json").st_mode & 0o777 == 0o600

    settings = (home / ".claude" / "settings.json").read_text()
    for line in SETTINGS.splitlines()[:5]:
        assert line in settings
    perms = json.loads(settings)["permissions"]
    assert perms["additionalDirectories"] == ["../docs"]
    assert perms["deny"] == ["Read(./.env)", "mcp__github__delete_repository"]
    assert perms["defaultMode"] == "default"
    assert (home / ".claude" / "settings.local.json").read_text() == LOCAL

    memory = (home / ".claude" / "CLAUDE.md").read_text()
    assert memory.startswith(MEMORY) and "<!-- reconciler:begin team -->" in memory
    assert "## style" in memory and "Never edit" not in memory
    rule = (home / ".claude" / "rules" / "sql.md").read_text()
    assert rule.startswith('---\npaths:\n  - "migrations/**/*.sql"\n---\n')


def test_second_apply_is_a_noop_and_byte_identical(runner: Runner, home: Path, tmp_path: Path) -> None:
    obj = agent_config(spec(home))
    assert runner(obj).outcome is Outcome.SUCCEEDED
    before = tree(home)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP and second.counts.unchanged == len(runner.store.inventory(obj.ref))
    assert tree(home) == before


def test_hand_edit_is_drift_and_override_reimposes_the_spec(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home))
    runner(obj)
    path = home / ".claude.json"
    path.write_text(path.read_text().replace('"MODE": "ro"', '"MODE": "rw"'))
    planned = runner(obj, dry_run=True)
    key = f"{home}/.claude.json#/mcpServers/github"
    assert planned.drift == (key,)
    assert planned.plan is not None and planned.plan.details["states"][key] == "drift"
    assert "-        \"MODE\": \"rw\"" in planned.plan.presentation.diff_of_files()[f"{home}/.claude.json"]
    # A dry run reports the drift but moves no condition (only real reconciliations do).
    assert conditions.get(conditions.from_result((), planned), conditions.DRIFTED) is None
    applied = runner(obj)
    assert applied.outcome is Outcome.SUCCEEDED and applied.drift == ()
    assert '"MODE": "ro"' in path.read_text()
    # The revert is never silent: recorded on the run, and Drifted (reason Reverted).
    assert applied.reverted == (key,)
    assert runner.store.runs(obj.ref, limit=1)[0].drift == [key]
    reverted = conditions.get(conditions.from_result((), applied), conditions.DRIFTED)
    assert reverted is not None and reverted.reason == "Reverted"


def test_ignore_leaves_the_hand_edit_and_reports_nothing(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home, conflictPolicy={"default": "Ignore"}))
    runner(obj)
    path = home / ".claude.json"
    path.write_text(path.read_text().replace('"MODE": "ro"', '"MODE": "rw"'))
    result = runner(obj)
    assert result.outcome is Outcome.NOOP and result.drift == ()
    assert '"MODE": "rw"' in path.read_text()


def test_merge_keeps_fields_others_added_inside_an_owned_entry(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home, conflictPolicy={"clients": {"claude-code": "Merge"}}))
    runner(obj)
    path = home / ".claude.json"
    data = json.loads(path.read_text())
    data["mcpServers"]["github"]["timeout"] = 30000
    path.write_text(json.dumps(data, indent=2))
    assert runner(obj).outcome is Outcome.NOOP
    assert json.loads(path.read_text())["mcpServers"]["github"]["timeout"] == 30000
    strict = agent_config(spec(home))
    assert runner(strict).outcome is Outcome.SUCCEEDED  # Override removes the foreign field
    assert "timeout" not in json.loads(path.read_text())["mcpServers"]["github"]


def test_adopt_holds_the_edit_and_proposes_a_patch(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home, conflictPolicy={"paths": [{"path": "/permissions/allow",
                                                             "policy": "Adopt"}]}))
    runner(obj)
    settings = home / ".claude" / "settings.json"
    settings.write_text(settings.read_text().replace('"Read",', '"Read",\n      "Bash(make *)",'))
    result = runner(obj)
    key = f"{home}/.claude/settings.json#/permissions/allow"
    assert result.outcome is Outcome.NOOP and result.drift == (key,)
    assert "Bash(make *)" in settings.read_text()
    assert result.plan is not None
    proposal = result.plan.details["adopt"][key]
    assert proposal["canonical"] == "permissions.allow"
    assert proposal["file"] == ["Read", "Bash(make *)", "Bash(npm run test *)"]
    assert proposal["proposed"] == ["Read", "Bash(make *)", "Bash(npm run test *)"]
    assert any("policy Adopt" in w for w in result.plan.warnings)
    cond = conditions.from_result((), result)
    drifted = conditions.get(cond, conditions.DRIFTED)
    assert drifted is not None and drifted.status.value == "True"
    assert runner.store.runs(obj.ref, limit=1)[0].drift == [key]
    # The person accepts: the spec takes the change, and the drift is gone.
    accepted = spec(home, conflictPolicy={"paths": [{"path": "/permissions/allow", "policy": "Adopt"}]})
    accepted["permissions"]["allow"] = ["Read", "Bash(make *)", "Bash(npm run test *)"]
    after = runner(agent_config(accepted))
    assert after.outcome is Outcome.NOOP and after.drift == ()


def test_if_not_present_creates_once_and_never_updates(runner: Runner, home: Path) -> None:
    first = spec(home, conflictPolicy={"default": "IfNotPresent"})
    runner(agent_config(first))
    changed = spec(home, conflictPolicy={"default": "IfNotPresent"})
    changed["mcpServers"]["github"]["args"] = ["--other"]
    result = runner(agent_config(changed))
    assert result.outcome is Outcome.NOOP
    assert json.loads((home / ".claude.json").read_text())["mcpServers"]["github"]["args"][0] == "-y"


def test_removed_server_is_pruned_and_foreign_ones_stay(runner: Runner, home: Path) -> None:
    runner(agent_config(spec(home)))
    smaller = spec(home)
    del smaller["mcpServers"]["docs"]
    result = runner(agent_config(smaller))
    assert result.counts.deleted == 1
    servers = json.loads((home / ".claude.json").read_text())["mcpServers"]
    assert "docs" not in servers and "personal" in servers
    assert f"{home}/.claude.json#/mcpServers/docs" not in runner.store.inventory(result.target)


def test_rollback_restores_the_bytes_of_a_past_run(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home))
    first = runner(obj)
    after_first = tree(home)
    changed = spec(home)
    changed["mcpServers"]["github"]["args"] = ["-y", "gh@2"]
    changed["rules"] = changed["rules"][:1]
    assert runner(agent_config(changed)).outcome is Outcome.SUCCEEDED
    assert tree(home) != after_first
    plan = runner(agent_config(changed), rollback_to=first.run_id, dry_run=True)
    assert plan.outcome is Outcome.PLANNED and plan.plan is not None and plan.plan.has_changes
    back = runner(agent_config(changed), rollback_to=first.run_id, trigger=Trigger.ROLLBACK)
    assert back.outcome is Outcome.SUCCEEDED, back.error
    assert tree(home) == after_first
    assert runner.store.runs(obj.ref, limit=1)[0].trigger == "rollback"
    # The spec still says gh@2: the next plan is a spec change, not drift.
    again = runner(agent_config(changed), dry_run=True)
    assert again.drift == () and again.plan is not None and again.plan.has_changes


def test_unparsable_file_is_refused_and_nothing_is_written(runner: Runner, home: Path,
                                                           tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".mcp.json").write_text('{\n  "mcpServers": {\n    "x": {"command": "y",}\n  \n')
    body = spec(home)
    body["targets"].append({"client": "claude-code", "scope": "project", "root": str(project)})
    before = tree(tmp_path)
    result = runner(agent_config(body))
    assert result.outcome is Outcome.FAILED
    # Claude reads .mcp.json as strict JSON: refused at the trailing comma
    assert result.error is not None and f"{project}/.mcp.json:3:25" in result.error
    assert "nothing was written" in result.error
    assert tree(tmp_path) == before


def test_strict_refuses_fields_the_client_cannot_express(runner: Runner, home: Path) -> None:
    body = spec(home, strict=True)
    body["mcpServers"]["github"]["cwd"] = "/srv"
    before = tree(home)
    result = runner(agent_config(body))
    assert result.outcome is Outcome.FAILED and "mcpServers.github.cwd" in (result.error or "")
    assert tree(home) == before
    loose = runner(agent_config(spec(home) | {"mcpServers": body["mcpServers"]}))
    assert loose.outcome is Outcome.SUCCEEDED
    assert any("mcpServers.github.cwd dropped" in w for w in loose.plan.warnings)  # type: ignore[union-attr]


def test_secret_values_never_leave_the_environment(runner: Runner, home: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = "sentinel-7c1e9a-do-not-leak"
    monkeypatch.setenv("GITHUB_TOKEN", sentinel)
    monkeypatch.setenv("DOCS_TOKEN", sentinel)
    obj = agent_config(spec(home))
    results = [runner(obj, dry_run=True), runner(obj)]
    for result in results:
        assert result.plan is not None
        for fmt in ("text", "markdown", "json"):
            assert sentinel not in render([result.plan], fmt)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), path


def test_import_reads_the_rendered_files_back_into_the_spec(runner: Runner, home: Path) -> None:
    body = spec(home)
    del body["mcpServers"]["metrics"]
    runner(agent_config(body))
    warnings: list[str] = []
    place = Place(AgentClient.CLAUDE_CODE, TargetScope.USER, str(home), "team")
    found = adapter_for("claude-code").read(Reader(home), place, warnings.append)
    found["mcpServers"].pop("personal")
    # The user's own text of CLAUDE.md, outside the reconciler's block, comes along whole.
    assert own_rule(found, "claude") == {"name": "claude", "content": MEMORY}
    assert_same_spec(found, body)


def test_adopted_server_edit_is_proposed_in_canonical_form(runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home, conflictPolicy={"default": "Adopt"}))
    runner(obj)
    path = home / ".claude.json"
    path.write_text(path.read_text().replace('"MODE": "ro"', '"MODE": "rw"'))
    result = runner(obj, dry_run=True)
    assert result.plan is not None
    proposal = result.plan.details["adopt"][f"{home}/.claude.json#/mcpServers/github"]
    assert proposal["canonical"] == "mcpServers.github"
    assert proposal["proposed"]["env"] == {"GITHUB_TOKEN": {"env": "GITHUB_TOKEN"}, "MODE": "rw"}
    text = render([result.plan], "text")
    assert "? proposed spec patch for" in text and "spec.mcpServers.github" in text
