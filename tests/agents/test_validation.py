"""Client CLI validation through the real `reconciler apply`: stub client CLIs on PATH.

The stubs stand in for `claude mcp list` / `codex mcp list`: they read the file the real
client would load (under HOME, which the reconciler sets to the target's root), log each
call, and reject a file holding their marker with a message on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MARKER = "REJECT-ME"
SENTINEL = "sentinel-7c1d-not-for-clients"

STUB = """#!/bin/sh
echo "$0 $* home=$HOME cwd=$(pwd) leak=${{LEAKED:-none}}" >> {log}
if grep -q {marker} "$HOME/{file}" 2>/dev/null; then
  echo "Invalid MCP configuration in $HOME/{file}: unknown server option {marker}" >&2
  exit 3
fi
echo "ok"
"""


def spec(home: Path, *, marker: bool, claude_validate: object = None) -> str:
    claude: dict[str, object] = {"client": "claude-code", "scope": "user", "root": str(home)}
    if claude_validate is not None:
        claude["validate"] = claude_validate
    body = {
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": "team"},
        "spec": {
            "mcpServers": {"docs": {"command": "docs-mcp", "args": [MARKER] if marker else ["--ok"]}},
            "targets": [claude, {"client": "codex", "scope": "user", "root": str(home)}],
        },
    }
    return json.dumps(body)


@pytest.fixture
def env(tmp_path: Path):
    home, stubs, specs = tmp_path / "home", tmp_path / "stubs", tmp_path / "specs"
    for folder in (home, stubs, specs):
        folder.mkdir()
    # Claude rejects the marker; Codex accepts everything (it rejects only a marker never written).
    stubbed = (("claude", ".claude.json", MARKER), ("codex", ".codex/config.toml", "NEVER-1b"))
    for name, file, marker in stubbed:
        stub = stubs / name
        stub.write_text(STUB.format(log=tmp_path / f"{name}.log", marker=marker, file=file))
        stub.chmod(0o755)
    (home / ".claude.json").write_text('{\n  "numStartups": 3\n}\n')
    environ = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state"),
               "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "LEAKED": SENTINEL}
    environ.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        use = environ if path is None else {**environ, "PATH": path}
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=use,
                              capture_output=True, text=True, timeout=120)

    return home, specs, tmp_path, run


def calls(tmp_path: Path, name: str) -> list[str]:
    log = tmp_path / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


def test_failing_check_rolls_back_its_client_holds_it_and_the_others_stay_written(env) -> None:
    home, specs, tmp_path, run = env
    original = (home / ".claude.json").read_bytes()
    (specs / "team.yaml").write_text(spec(home, marker=True))

    first = run("apply", str(specs))
    assert first.returncode == 1, first.stdout + first.stderr
    out = first.stdout + first.stderr
    assert "validation failed for claude-code/user/" in out
    assert "unknown server option REJECT-ME" in out  # the CLI's own message
    assert (home / ".claude.json").read_bytes() == original  # rolled back
    assert MARKER in (home / ".codex" / "config.toml").read_text()  # the other client stays written
    [claude_call] = calls(tmp_path, "claude")
    assert claude_call.endswith(f"mcp list home={home} cwd={home} leak=none")  # isolated env
    assert len(calls(tmp_path, "codex")) == 1

    # Held: the next run leaves Claude's files alone and does not run its check again.
    second = run("apply", str(specs))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "is not synced since its check failed" in second.stdout + second.stderr
    assert (home / ".claude.json").read_bytes() == original
    assert len(calls(tmp_path, "claude")) == 1
    shown = run("clients", str(specs), "-o", "json")
    assert shown.returncode == 0, shown.stderr
    claude = next(c for c in json.loads(shown.stdout) if c["client"] == "claude-code")
    assert claude["validation"]["state"] == "failed" and claude["validation"]["held"] is True
    assert "REJECT-ME" in claude["validation"]["message"]

    # A spec change releases it: the fixed spec is written and accepted.
    (specs / "team.yaml").write_text(spec(home, marker=False))
    third = run("apply", str(specs))
    assert third.returncode == 0, third.stdout + third.stderr
    assert "docs-mcp" in (home / ".claude.json").read_text()
    assert json.loads((home / ".claude.json").read_text())["numStartups"] == 3
    assert len(calls(tmp_path, "claude")) == 2
    shown = run("clients", str(specs), "-o", "json")
    claude = next(c for c in json.loads(shown.stdout) if c["client"] == "claude-code")
    assert claude["validation"]["state"] == "passed" and claude["validation"]["held"] is False


def test_a_hand_edit_of_a_held_clients_file_releases_it(env) -> None:
    home, specs, tmp_path, run = env
    (specs / "team.yaml").write_text(spec(home, marker=True))
    assert run("apply", str(specs)).returncode == 1
    (home / ".claude.json").write_text('{\n  "numStartups": 4\n}\n')
    again = run("apply", str(specs))
    assert again.returncode == 1  # tried again (its files changed), rejected again
    assert len(calls(tmp_path, "claude")) == 2
    assert json.loads((home / ".claude.json").read_text()) == {"numStartups": 4}


def test_absent_cli_is_skipped_and_reported(env) -> None:
    home, specs, tmp_path, run = env
    (specs / "team.yaml").write_text(spec(home, marker=True))
    bare = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if "stubs" not in p)
    planned = run("plan", str(specs), path=bare)
    assert "validation: claude-code/user/" in planned.stdout and "claude is not on PATH" in planned.stdout
    applied = run("apply", str(specs), path=bare)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert MARKER in (home / ".claude.json").read_text()  # nothing to check it: written
    assert calls(tmp_path, "claude") == []


def test_validate_false_and_a_custom_command_with_a_timeout(env) -> None:
    home, specs, tmp_path, run = env
    (specs / "team.yaml").write_text(spec(home, marker=True, claude_validate=False))
    assert run("apply", str(specs)).returncode == 0
    assert calls(tmp_path, "claude") == [] and MARKER in (home / ".claude.json").read_text()

    slow = tmp_path / "stubs" / "slowcheck"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    (specs / "team.yaml").write_text(spec(home, marker=False, claude_validate={"command": ["slowcheck"],
                                                                              "timeout": "1s"}))
    result = run("apply", str(specs))
    assert result.returncode == 1
    assert "`slowcheck` did not finish within 1s" in result.stdout + result.stderr
    assert MARKER in (home / ".claude.json").read_text()  # rolled back to the previous run's file


def test_validate_setting_is_checked() -> None:
    from reconciler.models.agents import AgentTarget

    with pytest.raises(ValueError, match="validate"):
        AgentTarget.model_validate({"client": "codex", "validate": {"command": []}})
    with pytest.raises(ValueError, match="validate"):
        AgentTarget.model_validate({"client": "codex", "validate": True})
