"""History retention and AgentConfig rollback: every run still in history stays a rollback
point; a pruned run is refused as one with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.conftest import Runner, agent_config, tree
from reconciler.store.pruning import RetentionPolicy, prune_history
from reconciler.structs.runs import Outcome, Trigger


def _spec(root: Path, args: list[str]) -> dict[str, Any]:
    return {"mcpServers": {"github": {"command": "npx", "args": args}},
            "targets": [{"client": "claude-code", "scope": "project", "root": str(root)}]}


def test_rollback_to_a_run_kept_by_retention_restores_it_and_a_pruned_run_is_refused(
        runner: Runner, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    first = runner(agent_config(_spec(root, ["v1"])))
    second = runner(agent_config(_spec(root, ["v2"])))
    after_second = tree(root)
    for _ in range(3):  # no-op runs push the changed runs down the history
        assert runner(agent_config(_spec(root, ["v2"]))).outcome is Outcome.NOOP
    third = runner(agent_config(_spec(root, ["v3"])))
    assert third.outcome is Outcome.SUCCEEDED and tree(root) != after_second

    report = prune_history(runner.store, policy=RetentionPolicy(keep=5), now=datetime.now(UTC))

    assert report.runs == 1
    assert {r.id for r in runner.store.runs(first.target)} >= {second.run_id, third.run_id}
    back = runner(agent_config(_spec(root, ["v3"])), rollback_to=second.run_id, trigger=Trigger.ROLLBACK)
    assert back.outcome is Outcome.SUCCEEDED, back.error
    assert tree(root) == after_second
    refused = runner(agent_config(_spec(root, ["v3"])), rollback_to=first.run_id, trigger=Trigger.ROLLBACK)
    assert refused.outcome is Outcome.FAILED
    assert refused.error is not None and f"no run {first.run_id}" in refused.error
    assert tree(root) == after_second
