"""The in-process event bus: every run announces itself to whoever listens.

The orchestrator publishes an `Event` when a run starts, when it is still going past a
duration threshold, and when it ends (succeeded, no-op, planned, aborted by a guard, failed,
cancelled). Subscribers are plain callables (the store
writer, the CLI, later the Redis and MQTT publishers and the SSE stream); a subscriber
that raises is logged and dropped from that delivery, never allowed to fail the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel

from reconciler.models import ObjectRef

log = structlog.get_logger("reconciler.events")


class EventType:
    RUN_STARTED = "RunStarted"
    RUN_SUCCEEDED = "RunSucceeded"
    RUN_NOOP = "RunNoop"
    RUN_PLANNED = "RunPlanned"
    RUN_FAILED = "RunFailed"
    RUN_CANCELLED = "RunCancelled"
    RUN_STILL_RUNNING = "RunStillRunning"  # past a duration threshold (slow, long), still going
    GUARD_TRIPPED = "GuardTripped"
    DRIFT_DETECTED = "DriftDetected"
    SYNC_DECISION = "SyncDecision"  # two-way sync: a hand edit accepted, overwritten or proposed
    PROPOSAL_DECIDED = "ProposalDecided"  # a person accepted or rejected a proposal


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    target: ObjectRef
    run_id: str | None = None
    reason: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def warning(self) -> bool:
        return self.type in (EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.GUARD_TRIPPED,
                             EventType.DRIFT_DETECTED, EventType.RUN_STILL_RUNNING)


def failure_streak(streak: int, event: Event) -> int:
    """A target's failed runs in a row after `event`, `streak` before it: the one count the
    metric (`reconciler_consecutive_failures`) and the alert rule both keep. A failed real run
    adds one, a real run that ended well (succeeded, no-op) resets it. A dry run (a plan, failed
    or not) writes nothing, so it says nothing about the target: it neither adds nor resets;
    neither does a tripped guard (nothing written, alerted on its own) or a cancelled run."""
    if event.data.get("dryRun") or event.type == EventType.RUN_PLANNED:
        return streak
    if event.type == EventType.RUN_FAILED:
        return streak + 1
    if event.type in (EventType.RUN_SUCCEEDED, EventType.RUN_NOOP):
        return 0
    return streak


class EventMessage(BaseModel):
    """An event on the wire: the one format of the API's SSE and WebSocket streams, the
    Redis stream and MQTT (camelCase; `at` in ISO 8601 with its offset)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, alias_generator=to_camel)

    type: str
    kind: str
    namespace: str
    name: str
    run_id: str | None = None
    reason: str = ""
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    at: datetime

    @field_serializer("at")
    def _iso(self, at: datetime) -> str:
        return at.isoformat()  # "+00:00", as every earlier consumer of these streams saw it

    @classmethod
    def of(cls, event: Event) -> EventMessage:
        t = event.target
        return cls(type=event.type, kind=t.kind, namespace=t.namespace, name=t.name, run_id=event.run_id,
                   reason=event.reason, message=event.message, data=dict(event.data), at=event.at)

    def wire(self) -> dict[str, Any]:
        """As JSON: the API's and MQTT's shape."""
        return self.model_dump(mode="json", by_alias=True)

    def flat(self) -> dict[str, str]:
        """As flat strings (a Redis stream entry): `data` as JSON, a missing run id empty."""
        out = {k: ("" if v is None else v) for k, v in self.wire().items() if k != "data"}
        out["data"] = json.dumps(self.data, default=str, ensure_ascii=False, sort_keys=True)
        return {k: str(v) for k, v in out.items()}


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed", subscriber=repr(subscriber))

    @contextlib.asynccontextmanager
    async def stream(self, maxsize: int = 1000) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving every event published while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)

        def put(event: Event) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

        unsubscribe = self.subscribe(put)
        try:
            yield queue
        finally:
            unsubscribe()
