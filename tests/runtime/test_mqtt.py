"""MqttBridge against the real Mosquitto on 127.0.0.1:1883, with a real aiomqtt client.

Every test uses its own topic prefix and clears the retained messages it left behind.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.errors import ReconcilerError
from reconciler.models import Mode, ObjectRef
from reconciler.runtime.mqtt import Command, CommandResult, MqttBridge, Rejection, parse_command

from . import TcpProxy

HOST, PORT = "127.0.0.1", 1883
ROLES = {"admin-secret-token": "admin", "viewer-secret-token": "viewer"}
ADMIN = "admin-secret-token"


def token_check(token: str | None) -> str | None:
    return ROLES.get(token or "")


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"reconciler-test-{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(clear_retained(name))


async def clear_retained(prefix: str) -> None:
    async with aiomqtt.Client(HOST, PORT) as client:
        await client.subscribe(f"{prefix}/#")
        topics: set[str] = set()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async for message in client.messages:
                    topics.add(message.topic.value)
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)


class Listener:
    """The other end of the wire: watches `{prefix}/status/#` and sends commands."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.received: list[tuple[str, bytes]] = []
        self._client = aiomqtt.Client(HOST, PORT)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.prefix}/status/#", qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for message in self._client.messages:
            assert isinstance(message.payload, bytes)
            self.received.append((message.topic.value, message.payload))

    async def send(self, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self._client.publish(f"{self.prefix}/command", payload, qos=1)

    async def expect(self, topic: str, where: Callable[[dict[str, Any]], bool] = lambda _: True,
                     timeout: float = 5.0) -> dict[str, Any]:
        """The first message on `{prefix}/{topic}` matching `where` (already received or to come)."""
        full = f"{self.prefix}/{topic}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for got_topic, payload in self.received:
                if got_topic == full and payload and where(body := json.loads(payload)):
                    return body
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching message on {full}; received {self.received}")

    def raw(self) -> bytes:
        return b"\n".join(payload for _, payload in self.received)


async def retained(topic: str) -> tuple[dict[str, Any], bool]:
    """What a new subscriber gets on `topic` right away, and whether it came retained."""
    async with aiomqtt.Client(HOST, PORT) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(2.0):
            message = await anext(aiter(client.messages))
        assert isinstance(message.payload, bytes)
        return json.loads(message.payload), message.retain


class Recorder:
    """An `on_command` that records what it was asked and answers ok."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def __call__(self, command: Command) -> CommandResult:
        self.commands.append(command)
        return CommandResult(ok=True, message="run started", run_id="run-1", outcome="succeeded")


def finished(name: str = "team-roles", type_: str = EventType.RUN_SUCCEEDED) -> Event:
    return Event(type_, ObjectRef("RbacMapping", "default", name), run_id="run-42", reason="Succeeded",
                 message="succeeded: 2 created", data={"outcome": "succeeded", "created": 2, "updated": 0,
                                                       "deleted": 0, "unchanged": 5, "invalid": 0,
                                                       "durationSeconds": 1.25, "revision": "abc123",
                                                       "trigger": "schedule"})


def bridge_for(prefix: str, **kwargs: Any) -> MqttBridge:
    kwargs.setdefault("on_command", Recorder())
    kwargs.setdefault("token_check", token_check)
    return MqttBridge(kwargs.pop("bus", EventBus()), host=HOST, port=kwargs.pop("port", PORT), prefix=prefix,
                      **kwargs)


# --- commands ---------------------------------------------------------------------------------


def test_a_valid_command_reaches_on_command_and_is_answered_accepted(prefix: str) -> None:
    recorder = Recorder()

    async def scenario() -> dict[str, Any]:
        bridge = bridge_for(prefix, on_command=recorder)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            await listener.send({"action": "run", "target": "RbacMapping/team-a/roles", "token": ADMIN,
                                 "requestId": "r-1", "mode": "incremental", "evenIfSuspended": True})
            answer = await listener.expect("status/commands")
            await bridge.stop()
            assert ADMIN.encode() not in listener.raw()
        return answer

    answer = asyncio.run(scenario())
    assert answer == {"requestId": "r-1", "accepted": True, "action": "run",
                      "target": "RbacMapping/team-a/roles",
                      "result": {"ok": True, "message": "run started", "runId": "run-1",
                                 "outcome": "succeeded"}}
    assert recorder.commands == [Command(action="run", target=ObjectRef("RbacMapping", "team-a", "roles"),
                                         request_id="r-1", mode=Mode.INCREMENTAL, even_if_suspended=True,
                                         role="admin")]


def command(**body: Any) -> bytes:
    return json.dumps({"action": "run", "target": "RbacMapping/x", "token": ADMIN, "requestId": "r-2",
                       **body}).encode()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed JSON"),
    (command(action="explode"), "unknown action 'explode'"),
    (command(target="RbacMapping/a/b/c"), "bad target"),
    (command(token="wrong"), "unauthorised"),
    (command(token=None), "unauthorised"),
    (command(token="viewer-secret-token"), "forbidden: role 'viewer'"),
], ids=["malformed-json", "unknown-action", "bad-target", "bad-token", "no-token", "viewer-token"])
def test_a_bad_command_is_rejected_with_a_reason_and_never_runs(
    prefix: str, payload: bytes, reason: str,
) -> None:
    recorder = Recorder()

    async def scenario() -> dict[str, Any]:
        bridge = bridge_for(prefix, on_command=recorder)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            await listener.send(payload)
            answer = await listener.expect("status/commands")
            await bridge.stop()
            assert b"secret-token" not in listener.raw()
        return answer

    answer = asyncio.run(scenario())
    assert answer["accepted"] is False
    assert answer["reason"].startswith(reason)
    assert answer["requestId"] == (None if reason == "malformed JSON" else "r-2")
    assert recorder.commands == []


def test_the_command_answer_is_not_retained(prefix: str) -> None:
    async def scenario() -> None:
        bridge = bridge_for(prefix)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            await listener.send({"action": "suspend", "target": "RbacMapping/x", "token": ADMIN})
            await listener.expect("status/commands")
            async with aiomqtt.Client(HOST, PORT) as late:
                await late.subscribe(f"{prefix}/status/commands", qos=1)
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await anext(aiter(late.messages))
            await bridge.stop()

    asyncio.run(scenario())


def test_a_failing_on_command_is_answered_as_accepted_but_not_ok(prefix: str) -> None:
    async def refuse(command: Command) -> CommandResult:
        raise ReconcilerError(f"{command.target.short} is suspended")

    async def scenario() -> dict[str, Any]:
        bridge = bridge_for(prefix, on_command=refuse)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            await listener.send(json.loads(command(requestId="r")))
            answer = await listener.expect("status/commands")
            await bridge.stop()
        return answer

    answer = asyncio.run(scenario())
    assert answer["accepted"] is True
    assert answer["result"] == {"ok": False, "message": "RbacMapping/x is suspended", "runId": None,
                                "outcome": None}


def test_parse_command_refuses_everything_without_a_token_check() -> None:
    body = json.dumps({"action": "resume", "target": "RbacMapping/x", "token": ADMIN}).encode()
    assert parse_command(body, token_check=None) == Rejection(
        None, "commands are disabled: no token check is configured")


def test_parse_command_checks_the_run_options() -> None:
    def parse(**body: Any) -> Command | Rejection:
        return parse_command(json.dumps({"target": "RbacMapping/x", "token": ADMIN, **body}).encode(),
                             token_check=token_check)

    assert parse(action="run", mode="sideways") == Rejection(None, "mode must be 'full' or 'incremental'")
    assert parse(action="run", evenIfSuspended="yes") == Rejection(
        None, "evenIfSuspended must be true or false")
    assert parse(action="suspend", mode="full") == Rejection(
        None, "mode and evenIfSuspended apply to action run only")
    assert parse(action="run", requestId=7) == Rejection(None, "requestId must be a string")
    assert parse(action="resume", target="RbacMapping/+/#") == Rejection(
        None, "bad target: expected KIND/NAME or KIND/NAMESPACE/NAME")
    assert parse(action="run") == Command("run", ObjectRef("RbacMapping", "default", "x"))


# --- status out -------------------------------------------------------------------------------


def test_a_finished_run_publishes_the_retained_status_of_its_object(prefix: str) -> None:
    async def scenario() -> tuple[dict[str, Any], bool]:
        bus = EventBus()
        bridge = bridge_for(prefix, bus=bus)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            bus.publish(Event(EventType.RUN_STARTED, ObjectRef("RbacMapping", "default", "team-roles")))
            bus.publish(finished())
            await listener.expect("status/RbacMapping/default/team-roles")
            await bridge.stop()
        return await retained(f"{prefix}/status/RbacMapping/default/team-roles")

    body, was_retained = asyncio.run(scenario())
    assert was_retained
    assert body == {"kind": "RbacMapping", "namespace": "default", "name": "team-roles",
                    "event": "RunSucceeded", "outcome": "succeeded", "runId": "run-42", "at": body["at"],
                    "reason": "Succeeded", "message": "succeeded: 2 created",
                    "counts": {"created": 2, "updated": 0, "deleted": 0, "unchanged": 5, "invalid": 0},
                    "durationSeconds": 1.25, "revision": "abc123", "trigger": "schedule"}


def test_the_daemon_is_up_retained_with_heartbeats_and_down_after_a_clean_stop(prefix: str) -> None:
    async def scenario() -> None:
        bridge = bridge_for(prefix, heartbeat_interval=0.2)
        async with Listener(prefix) as listener:
            await bridge.start()
            first = await listener.expect("status/daemon", lambda b: b["status"] == "up")
            await listener.expect("status/daemon", lambda b: b["status"] == "up" and b["at"] != first["at"])
            body, was_retained = await retained(f"{prefix}/status/daemon")
            assert (body["status"], was_retained) == ("up", True)
            assert body["since"] == first["since"]

            await bridge.stop()
            down = await listener.expect("status/daemon", lambda b: b["status"] == "down")
            assert "at" in down  # published by the bridge itself, not the broker's Last Will
        body, was_retained = await retained(f"{prefix}/status/daemon")
        assert (body["status"], was_retained) == ("down", True)

    asyncio.run(scenario())


def test_the_broker_announces_down_when_the_daemon_dies_without_disconnecting(prefix: str) -> None:
    program = textwrap.dedent(f"""
        import asyncio
        from reconciler.engine.events import EventBus
        from reconciler.runtime.mqtt import CommandResult, MqttBridge

        async def on_command(command):
            return CommandResult(ok=True)

        async def main():
            await MqttBridge(EventBus(), prefix={prefix!r}, on_command=on_command).start()
            await asyncio.Event().wait()

        asyncio.run(main())
    """)

    async def scenario() -> dict[str, Any]:
        async with Listener(prefix) as listener:
            daemon = subprocess.Popen([sys.executable, "-c", program], cwd=Path(__file__).parents[2])
            try:
                await listener.expect("status/daemon", lambda b: b["status"] == "up", timeout=15)
            finally:
                daemon.kill()  # SIGKILL: no DISCONNECT, no last words of its own
                daemon.wait()
            return await listener.expect("status/daemon", lambda b: b["status"] == "down")

    assert asyncio.run(scenario()) == {"status": "down"}


def test_the_bridge_reconnects_and_publishes_what_happened_meanwhile(prefix: str) -> None:
    recorder = Recorder()

    async def scenario() -> None:
        proxy = TcpProxy(HOST, PORT)
        await proxy.start()
        bus = EventBus()
        bridge = bridge_for(prefix, bus=bus, port=proxy.port, on_command=recorder, reconnect_max=0.3)
        async with Listener(prefix) as listener:
            await bridge.start()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")

            await proxy.cut()
            will = await listener.expect("status/daemon", lambda b: b["status"] == "down")
            assert will == {"status": "down"}  # the broker's Last Will: the link died
            bus.publish(finished("while-away", EventType.RUN_FAILED))  # never blocks, never raises
            await asyncio.sleep(0.5)  # a few refused reconnection attempts

            listener.received.clear()
            await proxy.restore()
            await listener.expect("status/daemon", lambda b: b["status"] == "up")
            status = await listener.expect("status/RbacMapping/default/while-away")
            assert status["event"] == "RunFailed"
            await listener.send({"action": "resume", "target": "RbacMapping/x", "token": ADMIN,
                                 "requestId": "after"})
            assert (await listener.expect("status/commands"))["accepted"] is True
            await bridge.stop()
        await proxy.close()

    asyncio.run(scenario())
    assert [c.request_id for c in recorder.commands] == ["after"]


def test_stop_returns_when_the_broker_was_never_reachable() -> None:
    async def scenario() -> None:
        bridge = MqttBridge(EventBus(), host=HOST, port=1884, prefix="reconciler-test-nowhere",
                            on_command=Recorder(), token_check=token_check)
        await bridge.start()
        await asyncio.sleep(0.2)
        assert not bridge.connected.is_set()
        async with asyncio.timeout(2):
            await bridge.stop()

    asyncio.run(scenario())
