"""An MQTT bridge: commands in, object status and daemon health out.

MQTT suits the places a reconciler ends up in (a NAS, a lab, a home server) where other
things already speak it: dashboards, Node-RED, Home Assistant. The bridge keeps one
connection to a broker and uses three kinds of topics under a prefix (`reconciler`):

- `{prefix}/command` (subscribed, QoS 1): a JSON command, `run`, `suspend` or `resume`
  of a target, carrying an API token. Only a token whose role is `admin` may command.
  Every command gets one answer on `{prefix}/status/commands` (not retained):
  `{"requestId", "accepted": false, "reason"}` or `{"requestId", "accepted": true,
  "result"}`. The token is never echoed, logged or kept.
- `{prefix}/status/{kind}/{namespace}/{name}` (retained): the last finished run of each
  object, from the bus, so that a subscriber sees the current state at once.
- `{prefix}/status/daemon` (retained): `up` when connected, refreshed by a heartbeat, and
  `down` on a clean stop; the broker publishes the Last Will `{"status": "down"}` when
  the connection dies without a goodbye (a crash, a kill, a network cut). With a `health`
  provider (the daemon's), each `up` also carries its report: `ready`, `degraded`
  components and the `process` (pid, CPU, memory).

The bus callback never waits: it records the newest status per object and wakes the
publisher, so statuses produced while the broker is away are published (newest only)
after the reconnection, which happens with exponential back-off. Parsing and
authorising a command is a pure function (`parse_command`); what a command does is the
caller's `on_command`, typically the runtime's controller. Commands are handled one task
each, so a long run does not hold up the next command. Not handled here: TLS, MQTT v5
features, de-duplicating a command delivered twice (QoS 1 is at least once; use
`requestId`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiomqtt
import structlog

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.errors import ReconcilerError
from reconciler.models import Mode, ObjectRef
from reconciler.runtime.health import ComponentHealth

log = structlog.get_logger("reconciler.mqtt")

Action = Literal["run", "suspend", "resume"]
ACTIONS: tuple[Action, ...] = ("run", "suspend", "resume")
COMMANDING_ROLE = "admin"
RUN_FINISHED = frozenset({EventType.RUN_SUCCEEDED, EventType.RUN_NOOP, EventType.RUN_PLANNED,
                          EventType.RUN_FAILED, EventType.GUARD_TRIPPED, EventType.RUN_CANCELLED})
_COUNTS = ("created", "updated", "deleted", "unchanged", "invalid")
# Target parts become topic levels and lookups: no wildcards, no separators, no surprises.
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")

TokenCheck = Callable[[str | None], str | None]
"""A token (or None) → the caller's role, or None when the token is not valid."""


@dataclass(frozen=True, slots=True)
class Command:
    """An authorised command from MQTT; `role` is the caller's (the token is not kept)."""

    action: Action
    target: ObjectRef
    request_id: str | None = None
    mode: Mode | None = None
    even_if_suspended: bool = False
    role: str = COMMANDING_ROLE


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What `on_command` reports back; published as the answer's `result`."""

    ok: bool
    message: str = ""
    run_id: str | None = None
    outcome: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "runId": self.run_id, "outcome": self.outcome}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A command refused before anything ran, with the reason told to the sender."""

    request_id: str | None
    reason: str


CommandHandler = Callable[[Command], Awaitable[CommandResult]]


def parse_command(payload: bytes, *, token_check: TokenCheck | None) -> Command | Rejection:
    """Validate and authorise one command payload. Authorisation comes before the details,
    so that a sender without a valid token learns nothing about targets."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"{exc.msg} at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        return Rejection(None, f"malformed JSON ({detail})")
    if not isinstance(body, dict):
        return Rejection(None, "a command must be a JSON object")
    request_id = body.get("requestId")
    if request_id is not None and not isinstance(request_id, str):
        return Rejection(None, "requestId must be a string")

    def reject(reason: str) -> Rejection:
        return Rejection(request_id, reason)

    if token_check is None:
        return reject("commands are disabled: no token check is configured")
    token = body.get("token")
    role = token_check(token) if isinstance(token, str) and token else None
    if role is None:
        return reject("unauthorised: a valid token is required")
    if role != COMMANDING_ROLE:
        return reject(f"forbidden: role {role!r} may not send commands (only {COMMANDING_ROLE!r})")

    action = body.get("action")
    if action not in ACTIONS:
        return reject(f"unknown action {str(action)[:40]!r}: expected run, suspend or resume")
    target = _parse_target(body.get("target"))
    if target is None:
        return reject("bad target: expected KIND/NAME or KIND/NAMESPACE/NAME")
    mode, even_if_suspended = body.get("mode"), body.get("evenIfSuspended", False)
    if action != "run" and ("mode" in body or "evenIfSuspended" in body):
        return reject("mode and evenIfSuspended apply to action run only")
    if mode is not None and mode not in (Mode.FULL.value, Mode.INCREMENTAL.value):
        return reject("mode must be 'full' or 'incremental'")
    if not isinstance(even_if_suspended, bool):
        return reject("evenIfSuspended must be true or false")
    return Command(action=action, target=target, request_id=request_id,
                   mode=Mode(mode) if mode is not None else None,
                   even_if_suspended=even_if_suspended, role=role)


def _parse_target(text: Any) -> ObjectRef | None:
    if not isinstance(text, str):
        return None
    try:
        ref = ObjectRef.parse(text)
    except ValueError:
        return None
    ok = _KIND.fullmatch(ref.kind) and _NAMESPACE.fullmatch(ref.namespace) and _NAME.fullmatch(ref.name)
    return ref if ok else None


def object_status(event: Event) -> dict[str, Any]:
    """The retained status of an object after a finished run."""
    data = event.data
    return {
        "kind": event.target.kind,
        "namespace": event.target.namespace,
        "name": event.target.name,
        "event": event.type,
        "outcome": data.get("outcome"),
        "runId": event.run_id,
        "at": event.at.isoformat(),
        "reason": event.reason,
        "message": event.message,
        "counts": {k: data[k] for k in _COUNTS if k in data},
        "durationSeconds": data.get("durationSeconds"),
        "revision": data.get("revision"),
        "trigger": data.get("trigger"),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, default=str, ensure_ascii=False).encode()


class MqttBridge:
    """Commands from `{prefix}/command`, status to `{prefix}/status/...`; see the module doc."""

    def __init__(
        self,
        bus: EventBus,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "reconciler",
        on_command: CommandHandler,
        token_check: TokenCheck | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        keepalive: int = 30,
        heartbeat_interval: float = 30.0,
        reconnect_max: float = 30.0,
        stop_timeout: float = 5.0,
        health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.endswith("/"):
            raise ValueError(f"an MQTT topic prefix without wildcards or trailing '/', got {prefix!r}")
        self.bus = bus
        self.host, self.port, self.prefix = host, port, prefix
        self.on_command = on_command
        self.token_check = token_check
        self.username, self.password, self.client_id = username, password, client_id
        self.keepalive = keepalive
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_max = reconnect_max
        self.stop_timeout = stop_timeout
        self.health_report = health
        self.answers_dropped = 0
        self._error: str | None = "not connected yet"
        self.command_topic = f"{prefix}/command"
        self.answer_topic = f"{prefix}/status/commands"
        self.daemon_topic = f"{prefix}/status/daemon"
        self.connected = asyncio.Event()
        self._statuses: dict[str, bytes] = {}  # topic → newest payload, not yet published
        self._statuses_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._started_at = _now()

    def health(self) -> ComponentHealth:
        ok = self.connected.is_set()
        reason = "" if ok else (f"MQTT broker {self.host}:{self.port} unreachable ({self._error}); "
                                f"{len(self._statuses)} status(es) waiting")
        return ComponentHealth("mqtt", ok, reason, pending=len(self._statuses),
                               dropped=self.answers_dropped)

    def object_topic(self, ref: ObjectRef) -> str:
        return f"{self.prefix}/status/{ref.kind}/{ref.namespace}/{ref.name}"

    async def start(self) -> None:
        """Start connecting (in the background: a broker that is away does not stop the daemon)."""
        if self._task is not None:
            raise RuntimeError("the MQTT bridge is already started")
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.bus.subscribe(self._accept)
        self._task = asyncio.create_task(self._connect_loop(), name=f"mqtt:{self.prefix}")

    async def stop(self) -> None:
        """Publish pending statuses and `down`, then disconnect cleanly (no Last Will)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.stop_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        for task in list(self._commands):
            task.cancel()
        await asyncio.gather(*self._commands, return_exceptions=True)

    # --- the bus side: never blocks, never raises --------------------------------------------

    def _accept(self, event: Event) -> None:
        if event.type not in RUN_FINISHED:
            return
        self._statuses[self.object_topic(event.target)] = _dumps(object_status(event))
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: stop() was skipped
                self._loop.call_soon_threadsafe(self._statuses_ready.set)

    # --- the connection ------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        delay = 0.0
        while not self._stopping.is_set():
            will = aiomqtt.Will(self.daemon_topic, _dumps({"status": "down"}), qos=1, retain=True)
            client = aiomqtt.Client(self.host, self.port, username=self.username, password=self.password,
                                    identifier=self.client_id, will=will, keepalive=self.keepalive,
                                    timeout=10)
            try:
                async with client:
                    self._client = client
                    self._error = None
                    self.connected.set()
                    delay = 0.0
                    log.info("MQTT connected", host=self.host, port=self.port, prefix=self.prefix)
                    await self._session(client)
                    return
            except aiomqtt.MqttError as exc:
                self._error = str(exc) or type(exc).__name__
                delay = min(self.reconnect_max, max(0.5, delay * 2))
                log.warning("MQTT connection lost or refused; reconnecting", host=self.host, port=self.port,
                            error=str(exc), retry_in=delay)
            finally:
                self._client = None
                self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: serve until it breaks (MqttError) or stop() is called."""
        # Subscribe before announcing `up`: `up` promises that commands are heard.
        await client.subscribe(self.command_topic, qos=1)
        await self._publish_health(client, "up")
        workers = [asyncio.create_task(self._receive(client)),
                   asyncio.create_task(self._publish_statuses(client)),
                   asyncio.create_task(self._heartbeat(client))]
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait([*workers, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # a worker ends only by failing: re-raise (MqttError → reconnect)
            await self._flush_statuses(client)
            await self._publish_health(client, "down")
        finally:
            for task in (*workers, stopping):
                task.cancel()
            await asyncio.gather(*workers, stopping, return_exceptions=True)

    async def _publish_health(self, client: aiomqtt.Client, status: str) -> None:
        body: dict[str, Any] = {"status": status, "at": _now()}
        if status == "up":
            body["since"] = self._started_at
            if self.health_report is not None:
                body.update(self.health_report())
        await client.publish(self.daemon_topic, _dumps(body), qos=1, retain=True)

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._publish_health(client, "up")

    async def _publish_statuses(self, client: aiomqtt.Client) -> None:
        # Flush first: statuses may have piled up while the broker was away.
        while True:
            self._statuses_ready.clear()
            await self._flush_statuses(client)
            await self._statuses_ready.wait()

    async def _flush_statuses(self, client: aiomqtt.Client) -> None:
        while self._statuses:
            topic = next(iter(self._statuses))
            payload = self._statuses.pop(topic)
            try:
                await client.publish(topic, payload, qos=1, retain=True)
            except aiomqtt.MqttError:
                self._statuses.setdefault(topic, payload)  # unless a newer one arrived meanwhile
                raise

    # --- commands ------------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
            parsed = parse_command(bytes(raw), token_check=self.token_check)
            if isinstance(parsed, Rejection):
                log.warning("MQTT command rejected", request_id=parsed.request_id, reason=parsed.reason)
                await self._answer({"requestId": parsed.request_id, "accepted": False,
                                    "reason": parsed.reason})
                continue
            task = asyncio.create_task(self._execute(parsed))
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)

    async def _execute(self, command: Command) -> None:
        log.info("MQTT command", action=command.action, target=command.target.short,
                 request_id=command.request_id, role=command.role)
        try:
            result = await self.on_command(command)
        except ReconcilerError as exc:
            result = CommandResult(ok=False, message=str(exc))
        except Exception:  # an accepted command always gets an answer; the details go to the log
            log.exception("MQTT command failed", action=command.action, target=command.target.short)
            result = CommandResult(ok=False, message="internal error (see the daemon's log)")
        await self._answer({"requestId": command.request_id, "accepted": True, "action": command.action,
                            "target": command.target.short, "result": result.as_json()})

    async def _answer(self, body: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            self.answers_dropped += 1
            log.warning("MQTT command answer dropped: not connected", request_id=body.get("requestId"))
            return
        try:
            await client.publish(self.answer_topic, _dumps(body), qos=1, retain=False)
        except aiomqtt.MqttError as exc:
            self.answers_dropped += 1
            log.warning("MQTT command answer dropped", request_id=body.get("requestId"), error=str(exc))
