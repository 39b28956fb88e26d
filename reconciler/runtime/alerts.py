"""Alerts to a chat webhook (Slack-compatible) when runs of a target go wrong.

Most runs need nobody's attention; a few do, and people should hear about those without
watching a dashboard. `AlertRules` follows the bus and keeps a little state per target to
decide. Every alert has a severity, after the AED design's alert plan: `critical` (to the
channel at once), `warning` (at once, or held for the daily summary when one is set) and
`info` (the daily summary itself). The rules:

- **consecutive failures** (critical): the N-th failed real run (`RunFailed`) in a row of
  one target alerts once; a real run that ends well (succeeded, no-op) resets the streak and
  re-arms the rule. A dry run (a plan, failed or not) and a tripped guard neither extend nor
  reset it: the streak is `events.failure_streak`, the one the metric
  `reconciler_consecutive_failures` keeps.
- **guard tripped** (critical): a guard stopped a run before anything was written
  (`GuardTripped`): possible data corruption (every coordinate NULL, a mass delete), for a
  person to review.
- **long run** (critical) and **slow run** (warning): a run still going, or finished,
  after `long_run_seconds` (default 1 h) or `slow_run_seconds` (45 min). A running run is
  reported when it passes the threshold (the orchestrator's `RunStillRunning`, see
  engine/overruns.py, which also logs it), not only once it ends; once per run.
- **rows rejected** (warning): a run that ended well but left rows out because they
  failed validation ("50 of 1000 rows rejected").
- **recovered** (warning): a run that ended well after failed ones (a retry worked).
- **daily summary** (info): at `summary_at` (a time of day in `summary_time_zone`), one
  message with each target's runs since the last summary (by outcome, rows by status, the
  longest run) and the warnings held for it.

An alert is POSTed as `{"text": ..., "blocks": [...]}`, which Slack, Mattermost, Rocket.Chat
and most chat tools accept on an incoming-webhook URL; the severity leads the text
(`[critical] ...`). The bus callback only hands the event to the event loop; rules are
evaluated and alerts queued there, and a background task sends them with httpx and
retries a few times with back-off (on network errors, 429 and 5xx; a 4xx other than 429 is
final). Nothing here raises into the bus, and the webhook URL, which carries its own
credential, is never logged. `health()` reports whether the last alert was delivered, the
queue and the drops. Not done here: de-duplicating alerts across restarts (a restart
forgets streaks, held warnings and the day's figures).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import structlog

from reconciler.engine.events import Event, EventBus, EventType, failure_streak
from reconciler.models import ObjectRef
from reconciler.runtime.health import ComponentHealth

log = structlog.get_logger("reconciler.alerts")

Rule = Literal["consecutive-failures", "guard-tripped", "long-run", "slow-run", "rows-rejected",
               "recovered", "daily-summary"]
Severity = Literal["critical", "warning", "info"]
SEVERITY: dict[Rule, Severity] = {
    "consecutive-failures": "critical", "guard-tripped": "critical", "long-run": "critical",
    "slow-run": "warning", "rows-rejected": "warning", "recovered": "warning", "daily-summary": "info",
}
RUN_ENDED_WELL = frozenset({EventType.RUN_SUCCEEDED, EventType.RUN_NOOP, EventType.RUN_PLANNED})
RUN_FINISHED = RUN_ENDED_WELL | {EventType.RUN_FAILED, EventType.GUARD_TRIPPED, EventType.RUN_CANCELLED}
_DETAIL_LIMIT = 2000  # Slack cuts a section's text at 3000 characters


@dataclass(frozen=True, slots=True)
class Alert:
    rule: Rule
    target: ObjectRef | None  # None: the daily summary, about every target
    title: str
    detail: str
    run_id: str | None
    at: datetime

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.rule]

    def payload(self) -> dict[str, Any]:
        """The webhook body: `text` for notifications and old clients, `blocks` for layout."""
        detail = self.detail if len(self.detail) <= _DETAIL_LIMIT else self.detail[:_DETAIL_LIMIT] + "…"
        context = f"severity {self.severity} · rule {self.rule} · {self.at.isoformat()}"
        if self.run_id:
            context = f"run `{self.run_id}` · " + context
        title = f"[{self.severity}] {self.title}"
        section = f"*{_escape(title)}*" + (f"\n{_escape(detail)}" if detail else "")
        return {
            "text": f"{title}: {detail}" if detail else title,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": section}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]},
            ],
        }


def _escape(text: str) -> str:
    """Slack's mrkdwn reserves &, < and > (links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(slots=True)
class _Day:
    """One target's runs since the last daily summary."""

    outcomes: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    longest: float = 0.0

    def line(self, target: ObjectRef) -> str:
        runs = sum(self.outcomes.values())
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items()))
        rows = ", ".join(f"{n} {s}" for s, n in self.rows.items() if n)
        return (f"{target.short}: {runs} run(s) ({outcomes}); rows: {rows or 'none changed'}; "
                f"longest {self.longest:g} s")


def next_summary(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first `at` o'clock in `zone` strictly after `now` (an aware datetime)."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    while candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


class AlertRules:
    """Evaluates the alert rules on the bus's events and POSTs alerts to a webhook."""

    def __init__(
        self,
        bus: EventBus,
        *,
        webhook_url: str,
        consecutive_failures: int = 3,
        long_run_seconds: float | None = 3600.0,
        slow_run_seconds: float | None = 2700.0,
        on_guard: bool = True,
        summary_at: time | None = None,
        summary_time_zone: str = "UTC",
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
        self.long_run_seconds = long_run_seconds or None
        self.slow_run_seconds = slow_run_seconds or None
        self.on_guard = on_guard
        self.summary_at = summary_at
        self.summary_zone = ZoneInfo(summary_time_zone)  # ZoneInfoNotFoundError names a bad zone
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
        self._day: dict[ObjectRef, _Day] = {}
        self._held: list[Alert] = []  # warnings kept for the daily summary
        self._reported: dict[str, set[Rule]] = {}  # run id -> duration rules already sent
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self._summary_task: asyncio.Task[None] | None = None
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
        if self.summary_at is not None:
            self._summary_task = asyncio.create_task(self._summaries(), name="alerts-summary")

    async def close(self) -> None:
        """Stop following the bus; send what is queued (giving up after `close_timeout`)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await asyncio.sleep(0)  # events handed over just before are evaluated first
        if self._summary_task is not None:
            self._summary_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._summary_task
            self._summary_task = None
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
        """The alerts one event raises; updates the failure streak and the day of its target."""
        alerts: list[Alert] = []
        target = event.target
        data = event.data

        def alert(rule: Rule, title: str, detail: str) -> None:
            alerts.append(Alert(rule, target, title, detail, event.run_id, event.at))

        before = self._streaks.pop(target, 0)
        streak = failure_streak(before, event)
        if streak:
            self._streaks[target] = streak
        if streak > before and streak == self.consecutive_failures:
            alert("consecutive-failures", f"{target.short} failed {streak} runs in a row", event.message)
        elif before and not streak:
            how = " (retries)" if data.get("trigger") == "schedule" else ""
            alert("recovered", f"{target.short} recovered after {before} failed run(s){how}", event.message)
        elif event.type == EventType.GUARD_TRIPPED and self.on_guard:
            alert("guard-tripped", f"{target.short}: possible data corruption, a guard stopped the run "
                                   "(nothing was written; review before the next run)", event.message)
        elif event.type == EventType.RUN_STILL_RUNNING:
            rule: Rule = "long-run" if data.get("threshold") == "long" else "slow-run"
            sent = self._reported.setdefault(event.run_id or "", set())
            # Once per run and rule; after the critical one the warning adds nothing.
            if rule in dict(self._duration_rules()) and not sent & {rule, "long-run"}:
                sent.add(rule)
                seconds = float(data.get("seconds") or 0)
                alert(rule, f"{target.short}: a run has been going for more than {seconds:g} s",
                      "still running")

        invalid = data.get("invalid") or 0
        if (event.type in (EventType.RUN_SUCCEEDED, EventType.RUN_NOOP) and not data.get("dryRun")
                and isinstance(invalid, int) and invalid > 0):
            total = invalid + sum(int(data.get(k) or 0) for k in ("created", "updated", "unchanged"))
            alert("rows-rejected", f"{target.short}: {invalid} of {total} rows rejected by validation",
                  f"the other rows were written; see `reconciler history --run {event.run_id}`")

        duration = data.get("durationSeconds")
        if event.type in RUN_FINISHED and isinstance(duration, int | float):
            reported = self._reported.pop(event.run_id or "", set())
            for rule, limit in self._duration_rules():
                if duration > limit and rule not in reported:
                    alert(rule, f"{target.short}: a run took {duration:g} s (more than {limit:g} s)",
                          f"outcome {data.get('outcome', event.type)}")
                    break  # the most severe threshold passed is enough
            if event.type != EventType.RUN_PLANNED and not data.get("dryRun"):
                self._count(target, data, duration)
        return alerts

    def _duration_rules(self) -> list[tuple[Rule, float]]:
        rules: list[tuple[Rule, float]] = []
        if self.long_run_seconds is not None:
            rules.append(("long-run", self.long_run_seconds))
        if self.slow_run_seconds is not None:
            rules.append(("slow-run", self.slow_run_seconds))
        return rules

    def _count(self, target: ObjectRef, data: dict[str, Any], duration: float) -> None:
        day = self._day.setdefault(target, _Day())
        outcome = str(data.get("outcome", "unknown"))
        day.outcomes[outcome] = day.outcomes.get(outcome, 0) + 1
        if outcome in ("succeeded", "noop"):
            for status in ("created", "updated", "deleted", "invalid"):
                day.rows[status] = day.rows.get(status, 0) + int(data.get(status) or 0)
        day.longest = max(day.longest, float(duration))

    def summary(self, now: datetime | None = None) -> Alert:
        """The daily summary of the runs and held warnings since the last one; starts a new day."""
        now = now or datetime.now(UTC)
        lines = [day.line(t) for t, day in sorted(self._day.items(), key=lambda i: i[0].short)]
        failing = [t.short for t, n in self._streaks.items() if n]
        if failing:
            lines.append(f"still failing: {', '.join(sorted(failing))}")
        if self._held:
            lines.append(f"{len(self._held)} warning(s):")
            lines.extend(f"• {a.title}" for a in self._held)
        runs = sum(sum(d.outcomes.values()) for d in self._day.values())
        ok = sum(d.outcomes.get("succeeded", 0) + d.outcomes.get("noop", 0) for d in self._day.values())
        title = f"daily summary: {ok} of {runs} run(s) ended well, {len(self._held)} warning(s)"
        self._day.clear()
        self._held.clear()
        return Alert("daily-summary", None, title, "\n".join(lines) or "no runs", None, now)

    def send_summary(self) -> None:
        """Queue the daily summary now (the summary task does this at `summary_at`)."""
        self._enqueue([self.summary()])

    # --- the bus side: never blocks, never raises ---------------------------------------------

    def _accept(self, event: Event) -> None:
        if self._loop is not None:
            # The bus may be called from a worker thread; the rules' state and the queue are
            # the loop's.
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() was skipped
                self._loop.call_soon_threadsafe(self._handle, event)

    def _handle(self, event: Event) -> None:
        self._enqueue(self.evaluate(event))

    def _enqueue(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            if alert.severity == "warning" and self.summary_at is not None:
                self._held.append(alert)  # for the daily summary
                continue
            try:
                self._queue.put_nowait(alert)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("alert dropped: the queue is full", rule=alert.rule,
                            target=alert.target.short if alert.target else "-")

    async def _summaries(self) -> None:
        assert self.summary_at is not None
        while True:
            now = datetime.now(UTC)
            await asyncio.sleep((next_summary(now, self.summary_at, self.summary_zone) - now).total_seconds())
            self.send_summary()

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
                log.info("alert sent", rule=alert.rule, severity=alert.severity,
                         target=alert.target.short if alert.target else "-")
                return
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the webhook refuses this payload: retrying will not help
        self.failed += 1
        self._error = f"{error} after {attempt + 1} attempt(s)"
        log.warning("alert not delivered", rule=alert.rule,
                    target=alert.target.short if alert.target else "-", error=error, attempts=attempt + 1)
