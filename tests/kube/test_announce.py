"""What the operator tells Kubernetes (Events) about one run: a reverted hand edit included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from reconciler.models import Mode, ObjectRef
from reconciler.operator.handlers import Operator
from reconciler.structs.plans import Change, Counts, Plan
from reconciler.structs.runs import Outcome, RunResult, Trigger

REF = ObjectRef("AgentConfig", "ns1", "team")
KEY = "~/.claude.json#/mcpServers/github"
T0 = datetime(2026, 12, 7, tzinfo=UTC)


def result(plan: Plan, outcome: Outcome = Outcome.SUCCEEDED) -> RunResult:
    return RunResult("r1", REF, Trigger.SCHEDULE, Mode.FULL, False, outcome, Counts(updated=1), T0, T0,
                     plan=plan)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []
    for kind in ("info", "warn"):
        monkeypatch.setattr(kopf, kind, lambda body, *, reason, message, kind=kind:
                            posted.append((kind, reason, message)))
    return posted


def test_a_reverted_hand_edit_is_a_drift_detected_warning(events: list[Any]) -> None:
    plan = Plan(target=REF, changes=(Change.create(KEY, {"command": "npx"}),), drift=(KEY,))
    Operator._announce({}, result(plan))
    drift = [e for e in events if e[1] == "DriftDetected"]
    assert drift and drift[0][0] == "warn" and "reverted to the spec" in drift[0][2] and KEY in drift[0][2]


def test_a_clean_run_posts_no_drift_event(events: list[Any]) -> None:
    Operator._announce({}, result(Plan(target=REF, changes=(Change.create(KEY, {}),))))
    assert [e[1] for e in events] == ["RunSucceeded"]
