"""AlertRules against a real HTTP server on loopback standing in for a chat webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.models import ObjectRef
from reconciler.runtime.alerts import AlertRules

WEBHOOK_PATH = "/services/T000/B000/not-a-real-credential"
CLOSED_PORT_URL = f"http://127.0.0.1:6391{WEBHOOK_PATH}"  # nothing listens there


class Webhook:
    """A loopback HTTP server recording every POSTed JSON body; answers `statuses`, then 200."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.hits = 0
        answers = list(statuses)
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                webhook.hits += 1
                status = answers.pop(0) if answers else 200
                if status == 200:
                    webhook.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]


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
    assert webhook.texts() == ["RbacMapping/team-roles failed 3 runs in a row: connection refused by db:5432"]
    blocks = webhook.bodies[0]["blocks"]
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": (
        "*RbacMapping/team-roles failed 3 runs in a row*\nconnection refused by db:5432")}}
    assert blocks[1]["type"] == "context"
    assert blocks[1]["elements"][0]["text"].startswith("run `run-team-roles` · rule consecutive-failures · ")


def test_a_run_that_ends_well_resets_the_failure_streak(webhook: Webhook) -> None:
    failed, ok = run_event(EventType.RUN_FAILED), run_event(EventType.RUN_NOOP)
    deliver([failed, failed, ok, failed, failed], url=webhook.url)
    assert webhook.bodies == []


def test_failures_are_counted_per_target(webhook: Webhook) -> None:
    a, b = run_event(EventType.RUN_FAILED, "a"), run_event(EventType.RUN_FAILED, "b")
    deliver([a, b, a, b, a], url=webhook.url)
    assert webhook.texts() == ["RbacMapping/a failed 3 runs in a row: failed"]


def test_the_failure_rule_is_rearmed_after_a_success(webhook: Webhook) -> None:
    failed, ok = run_event(EventType.RUN_FAILED), run_event(EventType.RUN_SUCCEEDED)
    deliver([failed, failed, ok, failed, failed], url=webhook.url, consecutive_failures=2)
    assert len(webhook.bodies) == 2


def test_a_tripped_guard_posts_an_alert(webhook: Webhook) -> None:
    guard = run_event(EventType.GUARD_TRIPPED, message="MaxDeletes: 40 deletions, at most 10 allowed")
    deliver([guard], url=webhook.url)
    assert webhook.texts() == [
        "RbacMapping/team-roles: a guard stopped the run: MaxDeletes: 40 deletions, at most 10 allowed"]


def test_a_tripped_guard_is_quiet_when_on_guard_is_off(webhook: Webhook) -> None:
    deliver([run_event(EventType.GUARD_TRIPPED)], url=webhook.url, on_guard=False)
    assert webhook.bodies == []


def test_a_run_longer_than_the_threshold_posts_an_alert(webhook: Webhook) -> None:
    events = [run_event(EventType.RUN_SUCCEEDED, duration=30.0),
              run_event(EventType.RUN_SUCCEEDED, duration=75.5), Event(EventType.RUN_STARTED, ref())]
    deliver(events, url=webhook.url, long_run_seconds=60)
    assert webhook.texts() == [
        "RbacMapping/team-roles: a run took 75.5 s (more than 60 s): outcome succeeded"]


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
