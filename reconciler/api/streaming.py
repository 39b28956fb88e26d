"""Following the event bus for a client that stays connected (SSE and WebSocket).

An event stream has no natural end, which is why a stopping daemon must end it: a stream
that only ends when its client goes away keeps the HTTP server, and so the process,
alive for as long as any dashboard is open. `Streams.follow` yields the bus's events (and
`None` at each quiet `keepalive` interval, for SSE's comment line) until the streams are
closed; the events already queued by then (the `RunCancelled` of a shutdown among them)
are yielded first, so that a client sees how the runs it watched ended.

`Streams.close` ends every stream and waits (bounded) until their handlers have sent
what was queued and said goodbye: only then may the HTTP server stop, because uvicorn
drops a WebSocket it shuts down (code 1012) without letting its handler finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from reconciler.engine.events import Event


class Streams:
    """The open event streams of one API; `close()` ends them all."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def open(self) -> int:
        return self._open

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """Count a stream's handler as open for as long as the context lasts."""
        self._open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._idle.set()

    async def follow(self, queue: asyncio.Queue[Event], *, keepalive: float) -> AsyncIterator[Event | None]:
        async for event in follow(queue, self.closing, keepalive=keepalive):
            yield event

    async def close(self, timeout: float) -> None:
        """End every stream; wait up to `timeout` seconds for their handlers to finish."""
        self.closing.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)


async def follow(queue: asyncio.Queue[Event], closing: asyncio.Event, *,
                 keepalive: float) -> AsyncIterator[Event | None]:
    closed = asyncio.ensure_future(closing.wait())
    try:
        while not closing.is_set():
            getting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getting, closed}, timeout=keepalive,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getting in done:
                yield getting.result()
                continue
            getting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getting
            if getting.done() and not getting.cancelled():  # an event came as it was cancelled
                yield getting.result()
            if not done:
                yield None
        while not queue.empty():
            yield queue.get_nowait()
    finally:
        closed.cancel()
