"""What a running daemon says about itself: its process, its publishers, its spec source.

A daemon can be up and still failing its users: events piling up for a Redis that is
gone, an MQTT broker that refuses connections, alerts that never reach the chat, or a
new commit whose specs do not load while the last good set keeps being applied. Each of
these is a component that reports its own `ComponentHealth` (ok or not, why, and for
publishers the backlog and the drops); `DaemonHealth` gathers them into one report read
by `/healthz`, `/readyz`, `GET /api/v1/status`, the Prometheus metrics and the MQTT
health payload, so that every view tells the same story.

A degraded component does not make the daemon unready: reconciling goes on without
Redis or MQTT, and with the last good specs. Readiness is lost only while the daemon is
stopping (or when the store or the scheduler fail, which the API checks itself). The
process figures (CPU and memory) are read from the operating system at each report,
without a dependency: CPU time from `time.process_time`, the resident set from
`/proc/self/statm` (the peak from `getrusage` where /proc is absent).
"""

from __future__ import annotations

import os
import re
import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One publisher's state: `pending` events not yet delivered, `dropped` ones given up on."""

    name: str
    ok: bool
    reason: str = ""
    pending: int = 0
    dropped: int = 0
    delivered: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "reason": self.reason or None, "pending": self.pending,
                "dropped": self.dropped, "delivered": self.delivered}


class Reporting(Protocol):
    """A publisher that can say how it is doing (Redis stream, MQTT bridge, alert webhook)."""

    def health(self) -> ComponentHealth: ...


_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def without_userinfo(text: str) -> str:
    """`https://user:token@host/x` → `https://***@host/x`: errors may quote a URL."""
    return _USERINFO.sub("***@", text)


@dataclass(slots=True)
class SpecSourceHealth:
    """The last revision whose specs loaded, and the newest one that did not (with why)."""

    source: str = ""
    revision: str | None = None
    loaded_at: datetime | None = None
    failed_revision: str | None = None
    error: str | None = None
    failed_at: datetime | None = None

    def loaded(self, revision: str | None) -> None:
        self.revision, self.loaded_at = revision, datetime.now(UTC)
        self.failed_revision = self.error = self.failed_at = None

    def failed(self, revision: str | None, error: str) -> None:
        """`revision` None: the source itself could not be read (a fetch failed)."""
        self.failed_revision, self.error = revision, without_userinfo(error)
        self.failed_at = datetime.now(UTC)

    def reachable(self) -> None:
        """The source answered again; a load error stays until a revision loads."""
        if self.error is not None and self.failed_revision is None:
            self.error = self.failed_at = None

    def as_json(self) -> dict[str, Any]:
        return {"source": without_userinfo(self.source), "revision": self.revision,
                "loadedAt": _iso(self.loaded_at), "failedRevision": self.failed_revision,
                "error": self.error, "failedAt": _iso(self.failed_at)}


class ProcessSampler:
    """CPU use (percent of one core, averaged since the previous sample at least a second
    earlier, so that frequent readers do not shrink the window to noise) and memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = (self._started, time.process_time())
        self._percent = 0.0

    def sample(self) -> dict[str, Any]:
        now, cpu = time.monotonic(), time.process_time()
        with self._lock:
            then, cpu_then = self._last
            if now - then >= 1.0:
                self._percent = round(100.0 * (cpu - cpu_then) / (now - then), 1)
                self._last = (now, cpu)
            percent = self._percent
        return {"pid": os.getpid(), "cpuSeconds": round(cpu, 3), "cpuPercent": percent,
                "memoryBytes": _resident_bytes(), "peakMemoryBytes": _peak_bytes(),
                "threads": threading.active_count(), "uptimeSeconds": round(now - self._started, 1)}


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_bytes()


def _peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


@dataclass(slots=True)
class DaemonHealth:
    source: SpecSourceHealth = field(default_factory=SpecSourceHealth)
    publishers: list[Reporting] = field(default_factory=list)
    process: ProcessSampler = field(default_factory=ProcessSampler)
    stopping: bool = False

    def components(self) -> list[ComponentHealth]:
        out = []
        for publisher in list(self.publishers):
            try:
                out.append(publisher.health())
            except Exception as exc:  # a report must never fail because one part cannot say
                out.append(ComponentHealth(type(publisher).__name__, False, f"health unknown: {exc}"))
        return out

    def degraded(self, components: list[ComponentHealth] | None = None) -> list[dict[str, Any]]:
        """What is wrong, one entry per component: `component`, `reason` (and `revision`)."""
        out: list[dict[str, Any]] = []
        if self.source.error is not None:
            out.append({"component": "specs", "reason": self.source.error,
                        "revision": self.source.failed_revision})
        for c in self.components() if components is None else components:
            if not c.ok:
                out.append({"component": c.name, "reason": c.reason})
        return out

    def report(self) -> dict[str, Any]:
        """The whole story: `status` is ok, degraded or stopping."""
        components = self.components()
        degraded = self.degraded(components)
        status = "stopping" if self.stopping else "degraded" if degraded else "ok"
        return {"status": status, "degraded": degraded, "specs": self.source.as_json(),
                "publishers": [c.as_json() for c in components], "process": self.process.sample()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
