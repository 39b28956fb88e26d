"""Shared spec types: durations, cron, time zones, thresholds, references, SyncJob."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from reconciler.models import ObjectRef, SyncJob
from reconciler.models.common import Duration, Threshold, format_duration, threshold_limit
from reconciler.schedule.timing import next_run_time

DURATION = TypeAdapter(Duration)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800)]
)
def test_durations_parse_go_style(text: str, seconds: float) -> None:
    assert DURATION.validate_python(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5", "soon", "-1s", "0s", 5])
def test_bad_durations_are_refused(bad) -> None:
    with pytest.raises(ValidationError, match="expected"):
        DURATION.validate_python(bad)


def test_durations_render_back_in_short_form() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(milliseconds=250)) == "250ms"


def test_thresholds_are_counts_or_percentages() -> None:
    adapter = TypeAdapter(Threshold)
    assert adapter.validate_python(5) == 5 and adapter.validate_python("10%") == "10%"
    assert threshold_limit("10%", 500) == 50 and threshold_limit(7, 500) == 7
    with pytest.raises(ValidationError, match="percentage"):
        adapter.validate_python("ten")


def test_object_refs_parse_with_and_without_namespace() -> None:
    assert ObjectRef.parse("AgentConfig/x") == ObjectRef("AgentConfig", "default", "x")
    assert ObjectRef.parse("AgentConfig/ns/x").short == "AgentConfig/ns/x"
    with pytest.raises(ValueError, match="KIND/NAME"):
        ObjectRef.parse("just-a-name")


def job(**spec) -> SyncJob:
    return SyncJob.model_validate(
        {
            "apiVersion": "reconciler.dev/v1alpha1",
            "kind": "SyncJob",
            "metadata": {"name": "j"},
            "spec": {"targetRef": {"kind": "AedSourceBinding", "name": "aed"}, **spec},
        }
    )


def test_a_syncjob_needs_exactly_one_of_schedule_and_interval() -> None:
    with pytest.raises(ValidationError, match="exactly one of schedule"):
        job()
    with pytest.raises(ValidationError, match="exactly one of schedule"):
        job(schedule="@daily", interval="1h")


def test_syncjob_defaults_follow_cronjob() -> None:
    spec = job(schedule="0 4 * * *").spec
    assert (spec.time_zone, spec.suspend, spec.mode, spec.concurrency_policy, spec.history_limit) == (
        "UTC",
        False,
        "full",
        "Forbid",
        10,
    )


def test_cron_is_evaluated_in_the_job_time_zone() -> None:
    spec = job(schedule="0 4 * * *", timeZone="Asia/Seoul").spec
    after = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 21:00 in Seoul
    assert next_run_time(spec, after=after) == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


def test_an_interval_is_due_one_interval_after_the_last_run() -> None:
    spec = job(interval="15m").spec
    last = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert next_run_time(spec, after=last + timedelta(minutes=1), last_run=last) == last + timedelta(
        minutes=15
    )
