"""Prometheus metrics of a running reconciler, fed by the event bus.

Runs by kind, name and outcome; run duration; errors by type; the last success per object;
the drift gauge; records (created/updated/deleted/unchanged/invalid) by status; scheduler
lag. With the daemon's health (`watch`): each publisher's state, backlog and drops, whether
the newest specs failed to load, and the process's CPU and memory. One registry per app,
so tests can build several.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.engine.events import Event, EventType
from reconciler.runtime.health import DaemonHealth

_FINISHED = {EventType.RUN_SUCCEEDED, EventType.RUN_NOOP, EventType.RUN_PLANNED, EventType.RUN_FAILED,
             EventType.GUARD_TRIPPED, EventType.RUN_CANCELLED}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("kind", "namespace", "name")
        self.runs = Counter("reconciler_runs_total", "Runs by object and outcome", (*labels, "outcome"),
                            registry=self.registry)
        self.duration = Histogram("reconciler_run_duration_seconds", "Run duration", ("kind",),
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                  registry=self.registry)
        self.records = Counter("reconciler_records_total", "Items by what the run did with them",
                               ("kind", "status"), registry=self.registry)
        self.errors = Counter("reconciler_errors_total", "Failed runs by error type", ("kind", "type"),
                              registry=self.registry)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "When the object last reconciled successfully", labels,
                                  registry=self.registry)
        self.drift = Gauge("reconciler_drifted_keys", "Keys changed outside the reconciler", labels,
                           registry=self.registry)
        self.scheduler_lag = Gauge("reconciler_scheduler_lag_seconds",
                                   "How late the last scheduled run started", registry=self.registry)

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
        if event.type not in _FINISHED:
            return
        outcome = str(event.data.get("outcome", event.type))
        self.runs.labels(*labels, outcome).inc()
        if "durationSeconds" in event.data:
            self.duration.labels(t.kind).observe(float(event.data["durationSeconds"]))
        for status in ("created", "updated", "deleted", "unchanged", "invalid"):
            if event.data.get(status):
                self.records.labels(t.kind, status).inc(int(event.data[status]))
        if outcome in ("succeeded", "noop"):
            self.last_success.labels(*labels).set(event.at.timestamp())
            self.drift.labels(*labels).set(0)
        elif outcome in ("failed", "aborted"):
            self.errors.labels(t.kind, str(event.data.get("errorType") or outcome)).inc()


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
