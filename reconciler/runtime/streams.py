"""Events out to a Redis Stream, for dashboards and consumers in other processes.

Every event on the bus becomes one entry of a Redis Stream (`XADD name MAXLEN ~ N * ...`),
so that any number of readers can follow the daemon with `XREAD`/`XREADGROUP` from where
they left off. The stream is capped approximately at `maxlen` entries.

The model is a bounded buffer between two worlds. The bus callback runs inside a run and
must never wait or fail, so it only appends the event to an in-memory deque. A background
task drains the deque in batches of up to `batch_size` (one pipelined round trip each),
every `flush_interval` seconds or as soon as a batch is full. When Redis is unreachable the
batch goes back to the front of the buffer and the task retries with exponential back-off;
the buffer holds at most `max_backlog` events (plus the one batch in flight), and when it
overflows the oldest are dropped, counted in `dropped` and reported once per flush
attempt. `close()` flushes what is buffered before returning (within a timeout).
`health()` says whether the last write went through (and if not, why), with the backlog
(`pending`) and the drops, for the daemon's `/readyz` and metrics.

Delivery is at least once: if the connection breaks while a pipeline is executing, the
whole batch is sent again and a few entries may appear twice. Entries carry the event's
run id and time, which is enough for a reader to tell. What this module does not do: read
the stream, create consumer groups, or persist the backlog across a restart of the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import cast

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from reconciler.engine.events import Event, EventBus, EventMessage
from reconciler.runtime.health import ComponentHealth, without_userinfo

log = structlog.get_logger("reconciler.streams")

def stream_fields(event: Event) -> dict[str, str]:
    """The fields of one stream entry: the events' one wire format, flat strings, `data` as JSON."""
    return EventMessage.of(event).flat()


class StreamPublisher:
    """Publishes the bus's events to a Redis Stream, in batches, without ever blocking a run."""

    def __init__(
        self,
        bus: EventBus,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        stream: str = "reconciler:events",
        batch_size: int = 100,
        flush_interval: float = 0.5,
        max_backlog: int = 10_000,
        maxlen: int = 100_000,
        retry_max: float = 5.0,
        close_timeout: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_backlog < 1:
            raise ValueError("batch_size and max_backlog must be at least 1")
        self.bus = bus
        self.url = url
        self.stream = stream
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_backlog = max_backlog
        self.maxlen = maxlen
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.published = 0
        self.dropped = 0
        self._dropped_unreported = 0
        self._error: str | None = None  # why the last write failed; None once one succeeds
        self._buffer: deque[Event] = deque()
        self._inflight: list[Event] = []
        self._redis: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # a batch is full (or close() was called)
        self._closed = asyncio.Event()
        self._closing = False
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def pending(self) -> int:
        """Events accepted from the bus and not yet written to Redis."""
        return len(self._buffer) + len(self._inflight)

    def health(self) -> ComponentHealth:
        reason = "" if self._error is None else (
            f"Redis unreachable ({self._error}); {self.pending} event(s) buffered, {self.dropped} dropped")
        return ComponentHealth("redis", self._error is None, reason, pending=self.pending,
                               dropped=self.dropped, delivered=self.published)

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the stream publisher is already started")
        self._loop = asyncio.get_running_loop()
        # Redis's own retries are off: a failed flush is retried by our loop, with our
        # back-off, and never holds the batch hostage inside the client.
        self._redis = Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0,
                                     socket_timeout=5.0)
        self._unsubscribe = self.bus.subscribe(self._accept)
        self._task = asyncio.create_task(self._flush_loop(), name=f"redis-stream:{self.stream}")

    async def close(self) -> None:
        """Stop taking events and flush the buffer (giving up after `close_timeout`)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.close_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self.pending:
            log.warning("events not written to the Redis stream at shutdown", stream=self.stream,
                        lost=self.pending)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- the bus side: never blocks, never raises -------------------------------------------

    def _accept(self, event: Event) -> None:
        if len(self._buffer) >= self.max_backlog:
            with contextlib.suppress(IndexError):  # emptied meanwhile by a flush
                self._buffer.popleft()
                self.dropped += 1
                self._dropped_unreported += 1
        self._buffer.append(event)
        if len(self._buffer) % self.batch_size == 0 and self._loop is not None:
            # The bus may be called from a worker thread; an asyncio.Event is not thread-safe.
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() was skipped
                self._loop.call_soon_threadsafe(self._wake.set)

    # --- the Redis side ---------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        delay = 0.0
        while self._buffer or not self._closing:
            if delay:
                await self._back_off(delay)
            else:
                await self._wait_for_batch(self.flush_interval)
            if not self._buffer:
                continue
            if await self._flush_batch():
                if delay:
                    log.info("Redis stream reachable again", stream=self.stream, pending=self.pending)
                delay = 0.0
            else:
                if not delay:
                    log.warning("Redis stream unreachable; keeping events buffered", stream=self.stream,
                                pending=self.pending)
                delay = min(self.retry_max, max(0.1, delay * 2))

    async def _wait_for_batch(self, seconds: float) -> None:
        """Wait until a batch is full, close() is called, or `seconds` have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        # Wake-ups can be stale (scheduled from the bus before the last flush): re-check.
        while len(self._buffer) < self.batch_size and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=remaining)

    async def _back_off(self, seconds: float) -> None:
        """Sleep before retrying; close() cuts a long pause short, then retries come faster."""
        if self._closing:
            await asyncio.sleep(min(seconds, 0.5))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    async def _flush_batch(self) -> bool:
        """Write up to one batch; True when it was written."""
        assert self._redis is not None
        size = min(self.batch_size, len(self._buffer))
        # The batch leaves the deque while in flight, so that the bus trimming the oldest
        # events meanwhile cannot make us remove the wrong ones on success.
        self._inflight = [self._buffer.popleft() for _ in range(size)]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in self._inflight:
                    # xadd only reads the fields, but redis types them as an (invariant) dict.
                    fields = cast("dict[FieldT, EncodableT]", stream_fields(event))
                    pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("Redis stream write failed", stream=self.stream, error=str(exc))
            self._error = without_userinfo(str(exc)) or type(exc).__name__
            self._buffer.extendleft(reversed(self._inflight))
            self._inflight = []
            self._trim()
            return False
        self.published += size
        self._error = None
        self._inflight = []
        self._report_drops()
        return True

    def _trim(self) -> None:
        while len(self._buffer) > self.max_backlog:
            self._buffer.popleft()
            self.dropped += 1
            self._dropped_unreported += 1
        self._report_drops()

    def _report_drops(self) -> None:
        if self._dropped_unreported:
            log.warning("Redis stream backlog full; dropped the oldest events", stream=self.stream,
                        dropped=self._dropped_unreported, dropped_total=self.dropped,
                        max_backlog=self.max_backlog)
            self._dropped_unreported = 0
