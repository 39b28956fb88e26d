"""Run metrics (issue 17, item 7): real runs through the orchestrator feed `Metrics` by the bus.

Labels name the object (`kind`, `namespace`, `name`); errors are counted by failure class
(`engine.classifying`), not by outcome; the state gauges the alert rules read follow the
runs. The driver is the test key-value driver, scripted to raise a given error or to report
rejected items.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kvstore_driver import KeyValueStore, KeyValueStoreDriver
from prometheus_client import generate_latest

from reconciler.api.metrics import Metrics
from reconciler.engine.classifying import classify
from reconciler.engine.drivers import DriverRegistry, RunContext
from reconciler.engine.events import EventBus
from reconciler.engine.orchestrator import Orchestrator
from reconciler.errors import DriverError, GuardAborted, SourceError
from reconciler.store import Store
from reconciler.structs.plans import Plan
from reconciler.structs.runs import Trigger


class Scripted(KeyValueStoreDriver):
    """Raises the next error of `ERRORS` (None: works); reports `REJECTED` items as invalid."""

    ERRORS: ClassVar[list[BaseException | None]] = []
    REJECTED: ClassVar[int] = 0

    async def observe(self, spec: KeyValueStore, ctx: RunContext) -> dict[str, str]:
        error = Scripted.ERRORS.pop(0) if Scripted.ERRORS else None
        if error is not None:
            raise error
        return await super().observe(spec, ctx)

    def diff(self, spec: KeyValueStore, actual: dict[str, str], ctx: RunContext) -> Plan:
        plan = super().diff(spec, actual, ctx)
        return dataclasses.replace(plan, invalid=Scripted.REJECTED)


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    registry = DriverRegistry()
    registry.register("KeyValueStore", Scripted)
    bus = EventBus()
    metrics = Metrics()
    bus.subscribe(metrics.observe)
    orch = Orchestrator(store=store, drivers=registry, bus=bus)
    obj = KeyValueStore.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "KeyValueStore", "metadata": {"name": "aed"},
        "spec": {"file": str(tmp_path / "kv.json"), "data": {"a": "1", "b": "2"}}})
    Scripted.ERRORS, Scripted.REJECTED = [], 0

    def run(**kwargs: Any) -> Any:
        return asyncio.run(orch.run(obj, trigger=kwargs.pop("trigger", Trigger.SCHEDULE), **kwargs))

    yield run, metrics
    store.close()


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"kind": "KeyValueStore", "namespace": "default",
                                                    "name": "aed", **labels})


def test_errors_are_counted_by_failure_class_per_object(setup: Any) -> None:
    run, metrics = setup
    Scripted.ERRORS = [SourceError("HTTP 503", code="HTTP 503", retryable=True),
                       SourceError("code 30", code="30"), DriverError("bad row"),
                       GuardAborted("forbidAllNullColumns", "latitude NULL in every row")]
    for _ in range(4):
        run()
    assert value(metrics, "reconciler_errors_total", type="source_unavailable") == 1
    assert value(metrics, "reconciler_errors_total", type="auth") == 1
    assert value(metrics, "reconciler_errors_total", type="driver") == 1
    assert value(metrics, "reconciler_errors_total", type="guard:forbidAllNullColumns") == 1
    assert value(metrics, "reconciler_errors_total", type="failed") is None
    assert value(metrics, "reconciler_errors_total", type="aborted") is None


def test_state_gauges_follow_failures_guards_and_recovery(setup: Any) -> None:
    run, metrics = setup
    Scripted.ERRORS = [DriverError("down"), DriverError("down"), DriverError("down"),
                       GuardAborted("maxDeletes", "too many")]
    for _ in range(4):
        run()
    assert value(metrics, "reconciler_consecutive_failures") == 3  # the guard neither adds nor resets
    assert value(metrics, "reconciler_guard_tripped", guard="maxDeletes") == 1
    assert value(metrics, "reconciler_last_success_timestamp_seconds") is None
    assert value(metrics, "reconciler_recoveries_total") == 0
    Scripted.REJECTED = 50
    run()
    assert value(metrics, "reconciler_consecutive_failures") == 0
    assert value(metrics, "reconciler_guard_tripped", guard="maxDeletes") == 0
    assert value(metrics, "reconciler_recoveries_total") == 1
    assert (value(metrics, "reconciler_last_success_timestamp_seconds") or 0) > 0
    assert value(metrics, "reconciler_last_run_records", status="created") == 2
    assert value(metrics, "reconciler_last_run_records", status="invalid") == 50
    assert value(metrics, "reconciler_records_total", status="invalid") == 50
    assert value(metrics, "reconciler_run_duration_seconds_count") == 5
    assert value(metrics, "reconciler_runs_total", outcome="failed") == 3
    assert value(metrics, "reconciler_runs_total", outcome="cancelled") == 0  # created at 0
    assert value(metrics, "reconciler_run_started_timestamp_seconds") is None  # nothing runs now


def test_dry_runs_count_as_runs_but_not_as_records_or_durations(setup: Any) -> None:
    run, metrics = setup
    run(dry_run=True, trigger=Trigger.MANUAL)
    assert value(metrics, "reconciler_runs_total", outcome="planned") == 1
    assert value(metrics, "reconciler_records_total", status="created") is None
    assert value(metrics, "reconciler_run_duration_seconds_count") is None
    text = generate_latest(metrics.registry).decode()
    assert 'reconciler_run_duration_seconds_bucket{kind="KeyValueStore",le="2700.0"' not in text


def test_failure_classes_of_real_driver_errors() -> None:
    import sqlalchemy.exc

    from reconciler.drivers.aed.fetching import HttpStatusError, TransportError
    from reconciler.drivers.aed.parsing import ApiError, QuotaExceeded
    from reconciler.drivers.aed.validating import ValidationFailed

    assert classify(HttpStatusError(502, request="page 3")) == "source_unavailable"
    assert classify(TransportError("timed out", request="page 3")) == "source_unavailable"
    assert classify(HttpStatusError(401, request="page 1")) == "auth"
    assert classify(ApiError("30", "SERVICE KEY IS NOT REGISTERED ERROR.")) == "auth"
    assert classify(ApiError("99")) == "source_unavailable"
    assert classify(ApiError("10")) == "source_error"
    assert classify(QuotaExceeded("22")) == "quota"
    assert classify(ValidationFailed("duplicate keys")) == "validation"
    assert classify(GuardAborted("allowEmpty", "no rows")) == "guard:allowEmpty"
    assert classify(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone"))) == "database"
    assert classify(KeyError("x")) == "unexpected"
    assert json.dumps(classify(DriverError("x"))) == '"driver"'


# --- logs: the design's levels -------------------------------------------------------------


def test_log_levels_follow_the_design(setup: Any) -> None:
    from structlog.testing import capture_logs

    run, _ = setup
    Scripted.ERRORS = [SourceError("HTTP 503", code="HTTP 503", retryable=True)]
    with capture_logs() as failed:
        run()
    [end] = [e for e in failed if e["event"] == "run finished"]
    assert (end["log_level"], end["failure"]) == ("error", "source_unavailable")  # was warning
    Scripted.REJECTED = 50
    with capture_logs() as ok:
        run()
    [rejected] = [e for e in ok if e["event"] == "rows rejected by validation"]
    assert (rejected["log_level"], rejected["rejected"], rejected["valid"]) == ("warning", 50, 2)
    planned = sorted(e["key"] for e in ok if e["event"] == "item planned")
    assert planned == ["a", "b"] and {e["log_level"] for e in ok if e["event"] == "item planned"} == {"debug"}


def test_a_restarted_daemon_resumes_last_success_and_the_failure_streak(tmp_path: Path) -> None:
    """A daemon that restarts while an object fails must still expose when it last
    succeeded (the alert on its age reads it) and the failures in a row since."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    registry = DriverRegistry()
    registry.register("KeyValueStore", Scripted)
    orch = Orchestrator(store=store, drivers=registry, bus=EventBus())
    obj = KeyValueStore.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "KeyValueStore", "metadata": {"name": "aed"},
        "spec": {"file": str(tmp_path / "kv.json"), "data": {"a": "1"}}})
    Scripted.ERRORS, Scripted.REJECTED = [None, DriverError("down"), DriverError("down")], 0
    try:
        results = [asyncio.run(orch.run(obj, trigger=Trigger.SCHEDULE)) for _ in range(3)]
        asyncio.run(orch.run(obj, trigger=Trigger.MANUAL, dry_run=True))
        restarted = Metrics()
        restarted.resume({ref: store.runs(ref, dry_run=False) for ref in store.latest_runs()})
    finally:
        store.close()
    success = results[0].finished_at
    assert value(restarted, "reconciler_last_success_timestamp_seconds") == success.timestamp()
    assert value(restarted, "reconciler_consecutive_failures") == 2
