"""Prometheus metrics of a running reconciler, fed by the event bus.

Every run metric is labelled with the object (`kind`, `namespace`, `name`), so that one
binding's runs can be told from another's, the way the AED design's `edgen_sync_*` metrics
are meant to be read:

- counters: runs by outcome, records by status (what the run did with each item:
  created, updated, deleted, unchanged, invalid), errors by failure class (`type`:
  `source_unavailable`, `auth`, `validation`, `guard:maxDeletes`, `database`, ... see
  `engine.classifying`), runs that ended well after failed ones (`recoveries`);
- a histogram of run durations, with buckets up to two hours (45 min and 1 h included);
- gauges of each object's state, which alert rules read without counter arithmetic: the
  last success, the failures in a row since, when the run in progress started, the last
  run's duration and records, which guard stopped the last run (1 until a run ends well),
  and the drift.

Dry runs (pull-request plans, `--dry-run`) count in `runs_total` and `errors_total` only:
they write nothing, so they say nothing about records, durations or a target's streak.
With the daemon's health (`watch`): each publisher's state, backlog and drops, whether
the newest specs failed to load, and the process's CPU and memory. One registry per app,
so tests can build several.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.engine.events import Event, EventType, failure_streak
from reconciler.models.common import ObjectRef
from reconciler.runtime.health import DaemonHealth
from reconciler.structs.records import RunRecord

_FINISHED = {EventType.RUN_SUCCEEDED, EventType.RUN_NOOP, EventType.RUN_PLANNED, EventType.RUN_FAILED,
             EventType.GUARD_TRIPPED, EventType.RUN_CANCELLED}
OUTCOMES = ("succeeded", "noop", "planned", "aborted", "failed", "cancelled")
STATUSES = ("created", "updated", "deleted", "unchanged", "invalid")
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 2700, 3600, 7200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("kind", "namespace", "name")
        r = self.registry
        self.runs = Counter("reconciler_runs_total", "Runs by object and outcome", (*labels, "outcome"),
                            registry=r)
        self.duration = Histogram("reconciler_run_duration_seconds", "Run duration per object (dry runs "
                                  "excluded)", labels, buckets=DURATION_BUCKETS, registry=r)
        self.records = Counter("reconciler_records_total", "Items by what the run did with them "
                               "(created, updated, deleted, unchanged, invalid)", (*labels, "status"),
                               registry=r)
        self.errors = Counter("reconciler_errors_total", "Runs that did not end well, by failure class",
                              (*labels, "type"), registry=r)
        self.recoveries = Counter("reconciler_recoveries_total", "Runs that ended well after one or more "
                                  "failed runs of the same object (recovered, e.g. by retries)", labels,
                                  registry=r)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "When the object last reconciled successfully", labels, registry=r)
        self.consecutive_failures = Gauge("reconciler_consecutive_failures",
                                          "Failed runs in a row since the last run that ended well "
                                          "(a dry run or a tripped guard neither adds nor resets)", labels,
                                          registry=r)
        self.run_started = Gauge("reconciler_run_started_timestamp_seconds",
                                 "When the run in progress started (absent when none runs)", labels,
                                 registry=r)
        self.last_duration = Gauge("reconciler_last_run_duration_seconds", "Duration of the last run",
                                   labels, registry=r)
        self.last_records = Gauge("reconciler_last_run_records", "Items of the last run by status",
                                  (*labels, "status"), registry=r)
        self.guard_tripped = Gauge("reconciler_guard_tripped", "1 while the last run was stopped by this "
                                   "guard (possible data corruption; until a run ends well)",
                                   (*labels, "guard"), registry=r)
        self.drift = Gauge("reconciler_drifted_keys", "Keys changed outside the reconciler", labels,
                           registry=r)
        self.scheduler_lag = Gauge("reconciler_scheduler_lag_seconds",
                                   "How late the last scheduled run started", registry=r)
        self._streaks: dict[tuple[str, str, str], int] = {}  # also: objects seen
        self._guards: dict[tuple[str, str, str], str] = {}

    def resume(self, history: Mapping[ObjectRef, Sequence[RunRecord]]) -> None:
        """Start from the store's history (each object's real runs, newest first), so that a
        restarted daemon still exposes every object's last success and its failures since:
        an object that keeps failing from the restart on would otherwise have no
        `last_success` series, and the alert on its age could never fire."""
        for ref, runs in history.items():
            labels = (ref.kind, ref.namespace, ref.name)
            self._first_seen(labels)
            streak = 0
            for run in runs:
                if run.dry_run:
                    continue
                if run.outcome in ("succeeded", "noop"):
                    when = run.finished_at or run.started_at
                    self.last_success.labels(*labels).set(when.timestamp())
                    break
                if run.outcome == "failed":
                    streak += 1
            self._streaks[labels] = streak
            self.consecutive_failures.labels(*labels).set(streak)

    def watch(self, health: DaemonHealth) -> None:
        """Expose the daemon's health, read at each scrape."""
        self.registry.register(_HealthCollector(health))
        ProcessCollector(registry=self.registry)

    def observe(self, event: Event) -> None:
        t = event.target
        labels = (t.kind, t.namespace, t.name)
        if event.type == EventType.DRIFT_DETECTED:
            self.drift.labels(*labels).set(len(event.data.get("keys", [])))
            return
        if event.type == EventType.RUN_STARTED:
            self._first_seen(labels)
            self.run_started.labels(*labels).set(event.at.timestamp())
            return
        if event.type not in _FINISHED:
            return
        self._first_seen(labels)
        outcome = str(event.data.get("outcome", event.type))
        self.runs.labels(*labels, outcome).inc()
        if outcome not in ("succeeded", "noop", "planned"):
            self.errors.labels(*labels, str(event.data.get("failure") or event.data.get("errorType")
                                            or outcome)).inc()
        self._not_running(labels)
        before = self._streaks[labels]
        self._streaks[labels] = streak = failure_streak(before, event)
        self.consecutive_failures.labels(*labels).set(streak)
        if event.data.get("dryRun") or outcome == "planned":
            return
        if "durationSeconds" in event.data:
            seconds = float(event.data["durationSeconds"])
            self.duration.labels(*labels).observe(seconds)
            self.last_duration.labels(*labels).set(seconds)
        if outcome in ("succeeded", "noop"):
            for status in STATUSES:
                count = int(event.data.get(status) or 0)
                self.records.labels(*labels, status).inc(count)
                self.last_records.labels(*labels, status).set(count)
            if before > 0:
                self.recoveries.labels(*labels).inc()
            self.last_success.labels(*labels).set(event.at.timestamp())
            self.drift.labels(*labels).set(0)
            self._clear_guard(labels)
        elif outcome == "aborted":
            failure = str(event.data.get("failure") or "")
            guard = failure.removeprefix("guard:") if failure.startswith("guard:") else "unknown"
            self._clear_guard(labels)
            self.guard_tripped.labels(*labels, guard).set(1)
            self._guards[labels] = guard

    def _first_seen(self, labels: tuple[str, str, str]) -> None:
        """Create an object's counters at 0, so that `increase()` sees its first failure."""
        if labels not in self._streaks:
            self._streaks[labels] = 0
            for outcome in OUTCOMES:
                self.runs.labels(*labels, outcome)
            self.recoveries.labels(*labels)
            self.consecutive_failures.labels(*labels).set(0)

    def _not_running(self, labels: tuple[str, str, str]) -> None:
        with contextlib.suppress(KeyError):
            self.run_started.remove(*labels)

    def _clear_guard(self, labels: tuple[str, str, str]) -> None:
        guard = self._guards.get(labels)
        if guard:
            self.guard_tripped.labels(*labels, guard).set(0)
            self._guards[labels] = ""


class _HealthCollector(Collector):
    def __init__(self, health: DaemonHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("reconciler_publisher_up", "1 when the publisher's last delivery worked",
                               labels=["publisher"])
        pending = GaugeMetricFamily("reconciler_publisher_pending",
                                    "Events or messages waiting to be delivered", labels=["publisher"])
        dropped = CounterMetricFamily("reconciler_publisher_dropped",
                                      "Events or messages given up on", labels=["publisher"])
        for c in self.health.components():
            up.add_metric([c.name], 1.0 if c.ok else 0.0)
            pending.add_metric([c.name], float(c.pending))
            dropped.add_metric([c.name], float(c.dropped))
        failed = GaugeMetricFamily("reconciler_specs_load_failed",
                                   "1 when the newest revision of the specs did not load (the last good "
                                   "set is kept)", value=1.0 if self.health.source.error is not None else 0.0)
        yield from (up, pending, dropped, failed)
