"""Condition helpers follow the Kubernetes and Flux conventions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.engine import conditions as c
from reconciler.models import ConditionStatus, Mode, ObjectRef
from reconciler.structs.plans import Counts
from reconciler.structs.runs import Outcome, RunResult, Trigger

T0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def result(outcome: Outcome, error: str | None = None) -> RunResult:
    return RunResult("r1", ObjectRef("AgentConfig", "default", "x"), Trigger.SCHEDULE, Mode.FULL,
                     False, outcome, Counts(created=1), T0, T0 + timedelta(seconds=2), error=error)


def test_a_started_run_is_reconciling_with_ready_unknown() -> None:
    out = c.mark_reconciling((), "reconciling", generation=3, now=T0)
    assert c.get(out, c.RECONCILING).status is ConditionStatus.TRUE
    ready = c.get(out, c.READY)
    assert ready.status is ConditionStatus.UNKNOWN and ready.observed_generation == 3


def test_success_removes_reconciling_and_sets_ready_true() -> None:
    out = c.from_result(c.mark_reconciling((), "x", now=T0), result(Outcome.SUCCEEDED), generation=3)
    assert c.get(out, c.RECONCILING) is None
    ready = c.get(out, c.READY)
    assert ready.status is ConditionStatus.TRUE and ready.reason == "ReconciliationSucceeded"
    assert "1 created" in ready.message


def test_a_guard_abort_is_stalled_until_a_success() -> None:
    aborted = c.from_result((), result(Outcome.ABORTED, "guard maxDeletes aborted the run"))
    assert c.get(aborted, c.READY).reason == "GuardAborted"
    assert c.get(aborted, c.STALLED).status is ConditionStatus.TRUE
    healed = c.from_result(aborted, result(Outcome.SUCCEEDED))
    assert c.get(healed, c.STALLED) is None


def test_transition_time_changes_only_with_the_status() -> None:
    first = c.set_condition((), c.READY, ConditionStatus.TRUE, "Ok", now=T0)
    same = c.set_condition(first, c.READY, ConditionStatus.TRUE, "StillOk", now=T0 + timedelta(hours=1))
    assert c.get(same, c.READY).last_transition_time == T0
    flipped = c.set_condition(same, c.READY, ConditionStatus.FALSE, "Broke", now=T0 + timedelta(hours=2))
    assert c.get(flipped, c.READY).last_transition_time == T0 + timedelta(hours=2)


def test_ready_is_listed_first() -> None:
    out = c.set_condition((), c.DRIFTED, ConditionStatus.TRUE, "HandEdit", now=T0)
    out = c.set_condition(out, c.READY, ConditionStatus.TRUE, "Ok", now=T0)
    assert [x.type for x in out] == ["Ready", "Drifted"]
