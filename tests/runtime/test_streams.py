"""StreamPublisher against the real Redis on 127.0.0.1:6379 (one stream per test, deleted after)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from structlog.testing import capture_logs

from reconciler.engine.events import Event, EventBus, EventType
from reconciler.models import ObjectRef
from reconciler.runtime.streams import StreamPublisher

from . import TcpProxy

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:6390/0"  # nothing listens there: Redis is "down"


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"reconciler-test:{uuid.uuid4().hex}"
    yield name
    with redis.Redis.from_url(REDIS_URL) as client:
        client.delete(name)


def entries(stream: str) -> list[dict[str, str]]:
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        return [fields for _id, fields in client.xrange(stream)]


def event(i: int, type_: str = EventType.RUN_SUCCEEDED) -> Event:
    return Event(type_, ObjectRef("RbacMapping", "team-a", f"m{i}"), run_id=f"run{i}", reason="Succeeded",
                 message=f"run {i}", data={"i": i, "created": 1})


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_entries_appear_in_order_with_the_event_fields(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream, batch_size=2, flush_interval=0.05)
        await publisher.start()
        for i in range(5):
            bus.publish(event(i))
        await publisher.close()
        assert (publisher.published, publisher.pending, publisher.dropped) == (5, 0, 0)

    asyncio.run(scenario())
    got = entries(stream)
    assert [e["name"] for e in got] == [f"m{i}" for i in range(5)]
    first = got[0]
    assert {k: v for k, v in first.items() if k not in ("at", "data")} == {
        "type": "RunSucceeded", "kind": "RbacMapping", "namespace": "team-a", "name": "m0",
        "runId": "run0", "reason": "Succeeded", "message": "run 0"}
    assert json.loads(first["data"]) == {"i": 0, "created": 1}
    assert first["at"].endswith("+00:00")


def test_a_full_batch_is_written_without_waiting_for_the_interval(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream, batch_size=10, flush_interval=60)
        await publisher.start()
        for i in range(25):
            bus.publish(event(i))
        await eventually(lambda: publisher.published == 20)
        assert len(entries(stream)) == 20  # two full batches; the last 5 wait for the interval
        await publisher.close()
        assert len(entries(stream)) == 25

    asyncio.run(scenario())


def test_a_partial_batch_is_written_after_the_flush_interval(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream, batch_size=100, flush_interval=0.2)
        await publisher.start()
        for i in range(3):
            bus.publish(event(i))
        await eventually(lambda: len(entries(stream)) == 3, timeout=2.0)
        assert publisher.pending == 0
        await publisher.close()

    asyncio.run(scenario())


def test_close_writes_everything_still_buffered(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream, batch_size=1000, flush_interval=60)
        await publisher.start()
        for i in range(250):
            bus.publish(event(i))
        assert publisher.pending == 250
        await publisher.close()
        assert publisher.published == 250

    asyncio.run(scenario())
    assert [e["name"] for e in entries(stream)] == [f"m{i}" for i in range(250)]


def test_events_after_close_are_not_taken(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream)
        await publisher.start()
        await publisher.close()
        bus.publish(event(1))
        assert publisher.pending == 0

    asyncio.run(scenario())
    assert entries(stream) == []


def test_the_stream_is_capped_near_maxlen(stream: str) -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=REDIS_URL, stream=stream, batch_size=100, maxlen=10)
        await publisher.start()
        for i in range(1000):
            bus.publish(event(i))
        await publisher.close()

    asyncio.run(scenario())
    got = entries(stream)
    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default), never the newest.
    assert 10 <= len(got) <= 200
    assert got[-1]["name"] == "m999"


def test_publishing_never_blocks_or_fails_while_redis_is_down() -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=CLOSED_PORT_URL, stream="unused", batch_size=5,
                                    flush_interval=0.01, close_timeout=0.3)
        await publisher.start()
        with capture_logs() as logs:
            for i in range(50):
                bus.publish(event(i))
            # publish() only queued: nothing was sent or awaited on the caller's path.
            assert (publisher.published, publisher.pending) == (0, 50)
            await asyncio.sleep(0.3)  # several failed flush attempts
        assert not [e for e in logs if e["event"] == "event subscriber failed"]
        assert any(e["event"].startswith("Redis stream unreachable") for e in logs)
        assert (publisher.published, publisher.pending, publisher.dropped) == (0, 50, 0)
        await publisher.close()  # gives up after close_timeout, does not raise

    asyncio.run(scenario())


def test_the_backlog_keeps_the_newest_events_and_counts_the_dropped_ones() -> None:
    async def scenario() -> None:
        bus = EventBus()
        publisher = StreamPublisher(bus, url=CLOSED_PORT_URL, stream="unused", batch_size=5,
                                    flush_interval=0.01, max_backlog=20, close_timeout=0.3)
        await publisher.start()
        with capture_logs() as logs:
            for i in range(50):
                bus.publish(event(i))
            await asyncio.sleep(0.3)
        assert publisher.dropped == 30
        assert publisher.pending == 20
        assert [e.target.name for e in publisher._buffer] == [f"m{i}" for i in range(30, 50)]
        drops = [e for e in logs if e["event"].startswith("Redis stream backlog full")]
        assert sum(e["dropped"] for e in drops) == 30
        await publisher.close()

    asyncio.run(scenario())


def test_the_backlog_is_delivered_in_order_when_redis_comes_back(stream: str) -> None:
    async def scenario() -> None:
        proxy = TcpProxy("127.0.0.1", 6379)
        await proxy.start()
        bus = EventBus()
        publisher = StreamPublisher(bus, url=f"redis://127.0.0.1:{proxy.port}/0", stream=stream,
                                    batch_size=10, flush_interval=0.02, retry_max=0.2)
        await publisher.start()
        bus.publish(event(0))
        await eventually(lambda: publisher.published == 1)

        await proxy.cut()  # Redis goes away, with a connection open
        for i in range(1, 31):
            bus.publish(event(i))
        await asyncio.sleep(0.5)
        assert publisher.published == 1
        assert publisher.pending == 30

        await proxy.restore()  # ...and comes back on the same address
        await eventually(lambda: publisher.published == 31)
        await publisher.close()
        await proxy.close()

    asyncio.run(scenario())
    assert [e["name"] for e in entries(stream)] == [f"m{i}" for i in range(31)]
