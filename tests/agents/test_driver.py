"""The AgentConfig driver's apply: a person's save landing while a run writes fails the run as a
conflict instead of being overwritten (see `driver.write_all`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config
from reconciler.structs.runs import Outcome


def spec(root: Path, args: list[str]) -> dict[str, Any]:
    return {"mcpServers": {"github": {"command": "npx", "args": args}},
            "targets": [{"client": "claude-code", "scope": "project", "root": str(root)},
                        {"client": "qwen-code", "scope": "project", "root": str(root)}]}


def test_a_file_saved_after_the_apply_checked_it_is_not_overwritten(tmp_path: Path, runner: Runner,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The run read both files and checked them; then (while its snapshots are stored) a
    person saves Qwen's file. The run must not replace that save: it fails as a conflict,
    puts back what it already wrote, and the next run sees the edit."""
    root = tmp_path / "proj"
    assert runner(agent_config(spec(root, ["-y", "gh"]))).outcome is Outcome.SUCCEEDED
    claude, qwen = root / ".mcp.json", root / ".qwen/settings.json"
    claude_before = claude.read_text()
    saved = json.loads(qwen.read_text())
    saved["mcpServers"]["github"]["args"] = ["-y", "gh", "--by-hand"]
    saved_text = json.dumps(saved, indent=2) + "\n"
    store_snapshots = runner.store.save_snapshots

    def save_meanwhile(*args: Any, **kwargs: Any) -> Any:
        qwen.write_text(saved_text)
        return store_snapshots(*args, **kwargs)

    monkeypatch.setattr(runner.store, "save_snapshots", save_meanwhile)
    result = runner(agent_config(spec(root, ["-y", "gh", "--new"])))
    assert result.outcome is Outcome.FAILED, result
    assert "changed after it was read" in (result.error or "")
    assert qwen.read_text() == saved_text
    assert claude.read_text() == claude_before
