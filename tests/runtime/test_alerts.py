"""AlertRules against a real HTTP server on loopback standing in for a chat webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.models import ObjectRef
from reconciler.runtime.alerts import AlertRules, next_summary

from . import WEBHOOK_PATH, Webhook

CLOSED_PORT_URL = f"http://127.0.0.1:6391{WEBHOOK_PATH}"  # nothing listens there


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def ref(name: str = "team-roles") -> ObjectRef:
    return ObjectRef("RbacMapping", "default", name)


def run_event(type_: str, name: str = "team-roles", *, duration: float = 1.0, message: str = "") -> Event:
    outcome = {EventType.RUN_FAILED: "failed", EventType.GUARD_TRIPPED: "aborted"}.get(type_, "succeeded")
    return Event(type_, ref(name), run_id=f"run-{name}", reason=outcome.capitalize(),
                 message=message or outcome, data={"outcome": outcome, "durationSeconds": duration})


def deliver(events: Sequence[Event], *, url: str, **rules: Any) -> AlertRules:
    """Start the rules, publish `events` on a bus, close (which sends what is queued)."""

    async def scenario() -> AlertRules:
        bus = EventBus()
        alerts = AlertRules(bus, webhook_url=url, retry_delay=0.01, **rules)
        await alerts.start()
        for event in events:
            bus.publish(event)
        await alerts.close()
        return alerts

    return asyncio.run(scenario())


def test_three_consecutive_failures_post_one_alert(webhook: Webhook) -> None:
    failed = run_event(EventType.RUN_FAILED, message="connection refused by db:5432")
    alerts = deliver([failed] * 4, url=webhook.url)
    assert alerts.sent == 1
    assert webhook.texts() == [
        "[critical] RbacMapping/team-roles failed 3 runs in a row: connection refused by db:5432"]
    blocks = webhook.bodies[0]["blocks"]
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": (
        "*[critical] RbacMapping/team-roles failed 3 runs in a row*\nconnection refused by db:5432")}}
    assert blocks[1]["type"] == "context"
    assert blocks[1]["elements"][0]["text"].startswith(
        "run `run-team-roles` · severity critical · rule consecutive-failures · ")


def test_a_run_that_ends_well_resets_the_failure_streak(webhook: Webhook) -> None:
    failed, ok = run_event(EventType.RUN_FAILED), run_event(EventType.RUN_NOOP)
    deliver([failed, failed, ok, failed, failed], url=webhook.url)
    assert webhook.texts() == ["[warning] RbacMapping/team-roles recovered after 2 failed run(s): succeeded"]


def test_failures_are_counted_per_target(webhook: Webhook) -> None:
    a, b = run_event(EventType.RUN_FAILED, "a"), run_event(EventType.RUN_FAILED, "b")
    deliver([a, b, a, b, a], url=webhook.url)
    assert webhook.texts() == ["[critical] RbacMapping/a failed 3 runs in a row: failed"]


def test_the_failure_rule_is_rearmed_after_a_success(webhook: Webhook) -> None:
    failed, ok = run_event(EventType.RUN_FAILED), run_event(EventType.RUN_SUCCEEDED)
    deliver([failed, failed, ok, failed, failed], url=webhook.url, consecutive_failures=2)
    assert [t.split("]")[0] for t in webhook.texts()] == ["[critical", "[warning", "[critical"]


def test_a_tripped_guard_posts_an_alert(webhook: Webhook) -> None:
    guard = run_event(EventType.GUARD_TRIPPED, message="MaxDeletes: 40 deletions, at most 10 allowed")
    deliver([guard], url=webhook.url)
    assert webhook.texts() == [
        "[critical] RbacMapping/team-roles: possible data corruption, a guard stopped the run (nothing was "
        "written; review before the next run): MaxDeletes: 40 deletions, at most 10 allowed"]


def test_a_tripped_guard_is_quiet_when_on_guard_is_off(webhook: Webhook) -> None:
    deliver([run_event(EventType.GUARD_TRIPPED)], url=webhook.url, on_guard=False)
    assert webhook.bodies == []


def test_a_run_longer_than_the_threshold_posts_an_alert(webhook: Webhook) -> None:
    events = [run_event(EventType.RUN_SUCCEEDED, duration=30.0),
              run_event(EventType.RUN_SUCCEEDED, duration=75.5), Event(EventType.RUN_STARTED, ref())]
    deliver(events, url=webhook.url, long_run_seconds=60)
    assert webhook.texts() == [
        "[critical] RbacMapping/team-roles: a run took 75.5 s (more than 60 s): outcome succeeded"]


def test_mrkdwn_control_characters_are_escaped_in_blocks(webhook: Webhook) -> None:
    deliver([run_event(EventType.GUARD_TRIPPED, message="<!channel> & co")], url=webhook.url)
    assert webhook.bodies[0]["blocks"][0]["text"]["text"].endswith("\n&lt;!channel&gt; &amp; co")


def test_a_failing_webhook_is_retried_until_it_accepts() -> None:
    hook = Webhook(statuses=[500, 429])
    hook.thread.start()
    try:
        alerts = deliver([run_event(EventType.GUARD_TRIPPED)], url=hook.url)
    finally:
        hook.server.shutdown()
        hook.server.server_close()
    assert (hook.hits, len(hook.bodies), alerts.sent, alerts.failed) == (3, 1, 1, 0)


def test_a_webhook_refusing_the_payload_is_not_retried() -> None:
    hook = Webhook(statuses=[404])
    hook.thread.start()
    try:
        alerts = deliver([run_event(EventType.GUARD_TRIPPED)], url=hook.url)
    finally:
        hook.server.shutdown()
        hook.server.server_close()
    assert (hook.hits, alerts.sent, alerts.failed) == (1, 0, 1)


def test_an_unreachable_webhook_never_raises_and_its_url_is_never_logged() -> None:
    with capture_logs() as logs:
        alerts = deliver([run_event(EventType.GUARD_TRIPPED)], url=CLOSED_PORT_URL, retries=2)
    assert (alerts.sent, alerts.failed) == (0, 1)
    assert next(e for e in logs if e["event"] == "alert not delivered")["attempts"] == 3
    assert not [e for e in logs if e["event"] == "event subscriber failed"]
    assert "not-a-real-credential" not in repr(logs)
    assert "not-a-real-credential" not in repr(alerts)


# --- issue 17, item 7: the AED design's alert plan -------------------------------------------


def finished(type_: str, *, outcome: str, run_id: str = "r1", trigger: str = "manual", **data: Any) -> Event:
    return Event(type_, ref(), run_id=run_id, message=f"{outcome}: …",
                 data={"outcome": outcome, "durationSeconds": 1.0, "trigger": trigger, **data})


def test_partially_rejected_rows_send_a_warning(webhook: Webhook) -> None:
    # 50 of 1,000 rows failed validation; the run succeeded with the other 950.
    run = finished(EventType.RUN_SUCCEEDED, outcome="succeeded", created=900, updated=30, unchanged=20,
                   invalid=50)
    deliver([run], url=webhook.url)
    assert webhook.texts() == [
        "[warning] RbacMapping/team-roles: 50 of 1000 rows rejected by validation: the other rows were "
        "written; see `reconciler history --run r1`"]


def test_no_rejected_rows_no_warning_and_dry_runs_are_quiet(webhook: Webhook) -> None:
    clean = finished(EventType.RUN_SUCCEEDED, outcome="succeeded", created=10, invalid=0)
    dry = finished(EventType.RUN_SUCCEEDED, outcome="succeeded", created=10, invalid=5, dryRun=True)
    deliver([clean, dry], url=webhook.url)
    assert webhook.bodies == []


def test_every_alert_carries_its_severity(webhook: Webhook) -> None:
    events = [run_event(EventType.RUN_FAILED)] * 3 + [
        run_event(EventType.GUARD_TRIPPED), run_event(EventType.RUN_SUCCEEDED, duration=4000.0)]
    deliver(events, url=webhook.url)
    severities = [b["blocks"][1]["elements"][0]["text"].split("severity ")[1].split(" ")[0]
                  for b in webhook.bodies]
    # 3 failures; the guard; the success that recovered from them and took more than an hour
    assert severities == ["critical", "critical", "warning", "critical"]
    assert all(t.startswith(f"[{s}] ") for t, s in zip(webhook.texts(), severities, strict=True))


def test_finished_runs_over_45_minutes_warn_and_over_an_hour_are_critical(webhook: Webhook) -> None:
    deliver([finished(EventType.RUN_SUCCEEDED, outcome="succeeded", run_id="a", durationSeconds=2800.0),
             finished(EventType.RUN_SUCCEEDED, outcome="succeeded", run_id="b", durationSeconds=3700.0),
             finished(EventType.RUN_SUCCEEDED, outcome="succeeded", run_id="c", durationSeconds=1800.0)],
            url=webhook.url)
    assert webhook.texts() == [
        "[warning] RbacMapping/team-roles: a run took 2800 s (more than 2700 s): outcome succeeded",
        "[critical] RbacMapping/team-roles: a run took 3700 s (more than 3600 s): outcome succeeded"]


def still_running(threshold: str, seconds: float, run_id: str = "long") -> Event:
    """What the orchestrator publishes when a run passes a duration threshold (engine/overruns.py)."""
    return Event(EventType.RUN_STILL_RUNNING, ref(), run_id=run_id, reason="SlowRun",
                 message=f"run still going after {seconds:g} s",
                 data={"threshold": threshold, "seconds": seconds})


def test_a_run_still_going_is_reported_when_it_passes_each_threshold(webhook: Webhook) -> None:
    deliver([Event(EventType.RUN_STARTED, ref(), run_id="long"), still_running("slow", 0.05),
             still_running("long", 0.2),
             # It ends: already reported, so no third alert about its duration.
             finished(EventType.RUN_SUCCEEDED, outcome="succeeded", run_id="long", durationSeconds=0.3)],
            url=webhook.url, slow_run_seconds=0.05, long_run_seconds=0.2)
    assert webhook.texts() == [
        "[warning] RbacMapping/team-roles: a run has been going for more than 0.05 s: still running",
        "[critical] RbacMapping/team-roles: a run has been going for more than 0.2 s: still running"]


def test_a_run_still_going_is_not_reported_when_its_rule_is_off(webhook: Webhook) -> None:
    deliver([still_running("slow", 2700.0)], url=webhook.url, slow_run_seconds=0)
    assert webhook.bodies == []


def test_a_scheduled_run_that_recovers_after_retries_says_so(webhook: Webhook) -> None:
    failed = finished(EventType.RUN_FAILED, outcome="failed", trigger="schedule")
    ok = finished(EventType.RUN_SUCCEEDED, outcome="succeeded", trigger="schedule")
    deliver([failed, failed, ok], url=webhook.url)
    assert webhook.texts() == [
        "[warning] RbacMapping/team-roles recovered after 2 failed run(s) (retries): succeeded: …"]


def test_the_daily_summary_holds_the_warnings_and_counts_the_runs(webhook: Webhook) -> None:
    async def scenario() -> AlertRules:
        bus = EventBus()
        alerts = AlertRules(bus, webhook_url=webhook.url, retry_delay=0.01, summary_at=time(9, 0),
                            summary_time_zone="Asia/Seoul")
        await alerts.start()
        bus.publish(finished(EventType.RUN_SUCCEEDED, outcome="succeeded", created=950, invalid=50))
        bus.publish(finished(EventType.RUN_FAILED, outcome="failed", run_id="r2"))
        bus.publish(finished(EventType.GUARD_TRIPPED, outcome="aborted", run_id="r3"))
        bus.publish(finished(EventType.RUN_NOOP, outcome="noop", run_id="r4", unchanged=1000,
                             durationSeconds=2800.0))
        await asyncio.sleep(0)  # the bus hands events to the loop
        alerts.send_summary()
        await alerts.close()
        return alerts

    scenario_alerts = asyncio.run(scenario())
    texts = webhook.texts()
    # The guard is critical: at once. The rejects, the recovery and the slow run are warnings:
    # held for the summary, which lists them.
    assert texts[0].startswith("[critical] RbacMapping/team-roles: possible data corruption")
    assert len(texts) == 2 and scenario_alerts.sent == 2
    summary = texts[1]
    assert summary.startswith("[info] daily summary: 2 of 4 run(s) ended well, 3 warning(s): ")
    assert ("RbacMapping/team-roles: 4 run(s) (1 aborted, 1 failed, 1 noop, 1 succeeded); "
            "rows: 950 created, 50 invalid; longest 2800 s") in summary
    assert "• RbacMapping/team-roles: 50 of 1000 rows rejected by validation" in summary
    assert "• RbacMapping/team-roles recovered after 1 failed run(s)" in summary
    assert "• RbacMapping/team-roles: a run took 2800 s (more than 2700 s)" in summary


def test_the_next_summary_is_the_next_time_of_day_in_its_zone() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    # 2026-03-01 23:30 UTC is 08:30 on 2 March in Seoul: the summary is at 09:00 that day.
    assert next_summary(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), time(9, 0), seoul) == \
        datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    # Exactly at 09:00 Seoul: the next one is tomorrow's.
    assert next_summary(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), time(9, 0), seoul) == \
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


# --- dry runs and the failure streak: the rule counts what the metric counts ----------------


def streak_of(events: Sequence[Event]) -> float | None:
    """`reconciler_consecutive_failures` after `events`, as the daemon's metrics count it."""
    from reconciler.api.metrics import Metrics

    metrics = Metrics()
    for event in events:
        metrics.observe(event)
    labels = {"kind": "RbacMapping", "namespace": "default", "name": "team-roles"}
    return metrics.registry.get_sample_value("reconciler_consecutive_failures", labels)


def test_a_failed_dry_run_does_not_extend_the_failure_streak(webhook: Webhook) -> None:
    failed = finished(EventType.RUN_FAILED, outcome="failed")
    dry_failed = finished(EventType.RUN_FAILED, outcome="failed", run_id="dry", dryRun=True)
    events = [failed, failed, dry_failed]
    deliver(events, url=webhook.url)
    assert streak_of(events) == 2
    assert webhook.bodies == []  # two real runs failed, not three


def test_a_successful_dry_run_does_not_reset_the_failure_streak(webhook: Webhook) -> None:
    failed = finished(EventType.RUN_FAILED, outcome="failed")
    planned = finished(EventType.RUN_PLANNED, outcome="planned", run_id="dry", dryRun=True)
    events = [failed, failed, planned, failed]
    deliver(events, url=webhook.url)
    assert streak_of(events) == 3
    assert webhook.texts() == ["[critical] RbacMapping/team-roles failed 3 runs in a row: failed: …"]
