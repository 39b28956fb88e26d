"""Events out of a running process: Redis Streams, the MQTT bridge and the webhook alerts.

The daemon (`reconciler serve`) and the operator (`reconciler operator`) publish the same
events from the same settings (`RECONCILER_REDIS_URL`, `RECONCILER_MQTT_HOST`,
`RECONCILER_ALERT_WEBHOOK_URL` and their companions): each publisher subscribes to the
runtime's event bus, reports to the process's health (`/readyz`, the status API, the
metrics) and leaves a closer that flushes it on shutdown. An MQTT `run`, `suspend` or
`resume` command acts through the controller, as the HTTP API does; in the operator, whose
objects are Kubernetes resources, the controller knows none of them and answers "not found".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import time
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.runtime.control import Controller
from reconciler.runtime.health import DaemonHealth
from reconciler.settings import Settings
from reconciler.structs.runs import Trigger

Closer = Callable[[], Awaitable[object]]


async def start_publishers(settings: Settings, controller: Controller, *, health: DaemonHealth,
                           role_of: Callable[[str | None], str | None]) -> list[Closer]:
    """Start every configured publisher; return their closers, in start order."""
    s, bus = settings, controller.runtime.bus
    closers: list[Closer] = []
    if s.redis_url:
        from reconciler.runtime.streams import StreamPublisher

        publisher = StreamPublisher(bus, url=s.redis_url, stream=s.redis_stream,
                                    batch_size=s.redis_batch_size,
                                    flush_interval=s.redis_flush_interval_seconds,
                                    max_backlog=s.redis_max_backlog, maxlen=s.redis_stream_maxlen)
        await publisher.start()
        health.publishers.append(publisher)
        closers.append(publisher.close)
    if s.mqtt_host:
        from reconciler.runtime.mqtt import Command, CommandResult, MqttBridge

        async def on_command(cmd: Command) -> CommandResult:
            if cmd.action == "run":
                # A kept task, so that a shutdown's grace covers it like any other run.
                result = await asyncio.shield(controller.spawn(controller.run_now(
                    cmd.target, trigger=Trigger.MQTT, mode=cmd.mode,
                    even_if_suspended=cmd.even_if_suspended, actor=f"mqtt:{cmd.role}", source="mqtt")))
                return CommandResult(result.outcome.ok, result.error or str(result.outcome),
                                     result.run_id, str(result.outcome))
            controller.set_suspended(cmd.target, cmd.action == "suspend", actor=f"mqtt:{cmd.role}",
                                     source="mqtt")
            return CommandResult(True, f"{cmd.target.short} {cmd.action}ed")

        def mqtt_health() -> dict[str, Any]:
            """What the MQTT `up` message carries besides `status`: readiness, what is
            degraded, and the process (pid, CPU, memory), as the manager design asks."""
            return {"ready": not health.stopping, "degraded": health.degraded(),
                    "process": health.process.sample()}

        bridge = MqttBridge(bus, host=s.mqtt_host, port=s.mqtt_port, prefix=s.mqtt_prefix,
                            on_command=on_command, token_check=role_of,
                            heartbeat_interval=s.mqtt_heartbeat_seconds, health=mqtt_health)
        await bridge.start()
        health.publishers.append(bridge)
        closers.append(bridge.stop)
    if s.alert_webhook_url:
        from reconciler.runtime.alerts import AlertRules

        summary_at = time.fromisoformat(s.alert_summary_at) if s.alert_summary_at else None
        try:
            alerts = AlertRules(bus, webhook_url=s.alert_webhook_url,
                                consecutive_failures=s.alert_consecutive_failures,
                                long_run_seconds=s.alert_long_run_seconds,
                                slow_run_seconds=s.alert_slow_run_seconds, on_guard=s.alert_on_guard,
                                summary_at=summary_at, summary_time_zone=s.alert_summary_time_zone)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ReconcilerError(f"RECONCILER_ALERT_SUMMARY_TIME_ZONE or _ALERT_CONSECUTIVE_FAILURES: "
                                  f"expected an IANA zone and a count of at least 1 ({exc})") from None
        await alerts.start()
        health.publishers.append(alerts)
        closers.append(alerts.close)
    return closers
