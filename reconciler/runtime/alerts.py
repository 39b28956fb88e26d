"""Alerts to a chat webhook (Slack-compatible) when runs of a target go wrong.

Most runs need nobody's attention; a few do, and people should hear about those without
watching a dashboard. `AlertRules` follows the bus and keeps a little state per target to
decide, with three rules:

- **consecutive failures**: the N-th failed run (`RunFailed`) in a row of one target
  alerts once; a run that ends well (succeeded, no-op, planned) resets the streak and
  re-arms the rule. A tripped guard neither extends nor resets the streak.
- **guard tripped**: a guard stopped a run before anything was written (`GuardTripped`).
- **long run**: a finished run whose `durationSeconds` exceeds the threshold.

An alert is POSTed as `{"text": ..., "blocks": [...]}`, which Slack, Mattermost, Rocket.Chat
and most chat tools accept on an incoming-webhook URL. The bus callback only evaluates the
rules and queues the alert; a background task sends it with httpx and retries a few times
with back-off (on network errors, 429 and 5xx; a 4xx other than 429 is final). Nothing here
raises into the bus, and the webhook URL, which carries its own credential, is never
logged. `health()` reports whether the last alert was delivered, the queue and the drops.
Not done here: de-duplicating alerts across restarts, or a "recovered" message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
import structlog

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.models import ObjectRef
from reconciler.runtime.health import ComponentHealth

log = structlog.get_logger("reconciler.alerts")

Rule = Literal["consecutive-failures", "guard-tripped", "long-run"]
RUN_ENDED_WELL = frozenset({EventType.RUN_SUCCEEDED, EventType.RUN_NOOP, EventType.RUN_PLANNED})
RUN_FINISHED = RUN_ENDED_WELL | {EventType.RUN_FAILED, EventType.GUARD_TRIPPED, EventType.RUN_CANCELLED}
_DETAIL_LIMIT = 2000  # Slack cuts a section's text at 3000 characters


@dataclass(frozen=True, slots=True)
class Alert:
    rule: Rule
    target: ObjectRef
    title: str
    detail: str
    run_id: str | None
    at: datetime

    def payload(self) -> dict[str, Any]:
        """The webhook body: `text` for notifications and old clients, `blocks` for layout."""
        detail = self.detail if len(self.detail) <= _DETAIL_LIMIT else self.detail[:_DETAIL_LIMIT] + "…"
        context = f"rule {self.rule} · {self.at.isoformat()}"
        if self.run_id:
            context = f"run `{self.run_id}` · " + context
        section = f"*{_escape(self.title)}*" + (f"\n{_escape(detail)}" if detail else "")
        return {
            "text": f"{self.title}: {detail}" if detail else self.title,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": section}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]},
            ],
        }


def _escape(text: str) -> str:
    """Slack's mrkdwn reserves &, < and > (links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AlertRules:
    """Evaluates the alert rules on the bus's events and POSTs alerts to a webhook."""

    def __init__(
        self,
        bus: EventBus,
        *,
        webhook_url: str,
        consecutive_failures: int = 3,
        long_run_seconds: float | None = None,
        on_guard: bool = True,
        client: httpx.AsyncClient | None = None,
        retries: int = 3,
        retry_delay: float = 1.0,
        timeout: float = 10.0,
        max_queue: int = 100,
        close_timeout: float = 10.0,
    ) -> None:
        if consecutive_failures < 1 or retries < 0:
            raise ValueError("consecutive_failures must be at least 1 and retries at least 0")
        self.bus = bus
        self._webhook_url = webhook_url  # a credential: kept out of repr and logs
        self.consecutive_failures = consecutive_failures
        self.long_run_seconds = long_run_seconds
        self.on_guard = on_guard
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.close_timeout = close_timeout
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._error: str | None = None  # why the last alert was not delivered
        self._client = client
        self._owns_client = client is None
        self._streaks: dict[ObjectRef, int] = {}
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def health(self) -> ComponentHealth:
        reason = "" if self._error is None else (
            f"alert webhook: last alert not delivered ({self._error}); {self.failed} failed, "
            f"{self.dropped} dropped")
        return ComponentHealth("alerts", self._error is None, reason, pending=self._queue.qsize(),
                               dropped=self.dropped + self.failed, delivered=self.sent)

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the alert rules are already started")
        self._loop = asyncio.get_running_loop()
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        self._unsubscribe = self.bus.subscribe(self._accept)
        self._task = asyncio.create_task(self._deliver(), name="alerts")

    async def close(self) -> None:
        """Stop following the bus; send what is queued (giving up after `close_timeout`)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=self.close_timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # --- the rules ---------------------------------------------------------------------------

    def evaluate(self, event: Event) -> list[Alert]:
        """The alerts one event raises; updates the failure streak of its target."""
        alerts: list[Alert] = []
        target = event.target

        def alert(rule: Rule, title: str, detail: str) -> None:
            alerts.append(Alert(rule, target, title, detail, event.run_id, event.at))

        if event.type == EventType.RUN_FAILED:
            streak = self._streaks.get(target, 0) + 1
            self._streaks[target] = streak
            if streak == self.consecutive_failures:
                alert("consecutive-failures", f"{target.short} failed {streak} runs in a row", event.message)
        elif event.type in RUN_ENDED_WELL:
            self._streaks.pop(target, None)
        elif event.type == EventType.GUARD_TRIPPED and self.on_guard:
            alert("guard-tripped", f"{target.short}: a guard stopped the run", event.message)

        duration = event.data.get("durationSeconds")
        if (self.long_run_seconds is not None and event.type in RUN_FINISHED
                and isinstance(duration, int | float) and duration > self.long_run_seconds):
            alert("long-run", f"{target.short}: a run took {duration:g} s "
                              f"(more than {self.long_run_seconds:g} s)",
                  f"outcome {event.data.get('outcome', event.type)}")
        return alerts

    # --- the bus side: never blocks, never raises ---------------------------------------------

    def _accept(self, event: Event) -> None:
        alerts = self.evaluate(event)
        if alerts and self._loop is not None:
            # The bus may be called from a worker thread; an asyncio.Queue is not thread-safe.
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() was skipped
                self._loop.call_soon_threadsafe(self._enqueue, alerts)

    def _enqueue(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            try:
                self._queue.put_nowait(alert)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("alert dropped: the queue is full", rule=alert.rule, target=alert.target.short)

    # --- the webhook side ---------------------------------------------------------------------

    async def _deliver(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._send(alert)
            finally:
                self._queue.task_done()

    async def _send(self, alert: Alert) -> None:
        assert self._client is not None
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
            try:
                response = await self._client.post(self._webhook_url, json=alert.payload())
            except httpx.HTTPError as exc:
                # The exception's text may quote the URL: only its class is logged.
                error = type(exc).__name__
                continue
            if response.is_success:
                self.sent += 1
                self._error = None
                log.info("alert sent", rule=alert.rule, target=alert.target.short)
                return
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the webhook refuses this payload: retrying will not help
        self.failed += 1
        self._error = f"{error} after {attempt + 1} attempt(s)"
        log.warning("alert not delivered", rule=alert.rule, target=alert.target.short, error=error,
                    attempts=attempt + 1)
