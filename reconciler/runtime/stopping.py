"""Stopping a daemon: SIGTERM or SIGINT, the grace period, and the second signal.

The first signal asks the daemon to stop. From then on it takes no new work (forced runs
are refused, `/readyz` answers 503, the scheduler and the spec watcher stop) and the runs
in flight get the grace period to finish. When it runs out they are cancelled: each is
recorded with outcome `cancelled` and leaves its target as it was. Then the event
streams (SSE, WebSocket) are closed, the publishers get a short, bounded flush, the HTTP
server stops and the store is closed. Connected clients never hold the process.

A second signal means "now": the runs still going are cancelled at once (and recorded),
cleanup gets a second at most, and the process exits with 128 + the signal number.

A watchdog thread guards both promises against what no cancellation reaches (a driver
blocked inside a thread, a library that swallows cancellation): the process is ended
with `os._exit` when it is still alive `overrun` seconds after the grace ran out, or a
few seconds after a second signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable

import structlog

log = structlog.get_logger("reconciler.daemon")

CLEANUP_SECONDS = 5.0  # publishers' flush and the HTTP server's close, after the grace
HURRIED_CLEANUP_SECONDS = 1.0
HURRIED_WATCHDOG_SECONDS = 3.0


class Stopping:
    """The state of a stop request; `requested` is set by the first signal, `hurry` by the second."""

    def __init__(self, grace: float, *, requested: asyncio.Event | None = None, overrun: float = 15.0,
                 hard_exit: Callable[[int], object] = os._exit) -> None:
        self.grace = max(0.0, grace)
        self.overrun = overrun
        self.requested = requested if requested is not None else asyncio.Event()
        self.hurry = asyncio.Event()
        self.signal: int | None = None  # the second signal's number, when there was one
        self._hard_exit = hard_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadline: float | None = None
        self._watchdogs: list[threading.Timer] = []

    def install(self) -> None:
        """Handle SIGTERM and SIGINT in the running loop (where the platform allows it)."""
        self._loop = loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.on_signal, sig)

    def on_signal(self, sig: int) -> None:
        if not self.requested.is_set():
            log.info("stop requested", signal=signal.Signals(sig).name, grace=self.grace)
            self.request()
            return
        if not self.hurry.is_set():
            log.warning("second signal: cancelling what still runs and exiting now",
                        signal=signal.Signals(sig).name)
            self.signal = sig
            self.hurry.set()
            self._arm(HURRIED_WATCHDOG_SECONDS, 128 + sig)

    def request(self) -> None:
        """Stop as a first signal would (also for in-process callers and tests)."""
        if self.requested.is_set():
            return
        loop = self._loop or asyncio.get_running_loop()
        self._deadline = loop.time() + self.grace
        self.requested.set()
        self._arm(self.grace + self.overrun, 1)

    def remaining(self) -> float:
        """Seconds of grace left (0 once hurried or expired)."""
        if self.hurry.is_set() or self._deadline is None:
            return 0.0 if self.hurry.is_set() else self.grace
        loop = self._loop or asyncio.get_running_loop()
        return max(0.0, self._deadline - loop.time())

    @property
    def cleanup_seconds(self) -> float:
        return HURRIED_CLEANUP_SECONDS if self.hurry.is_set() else CLEANUP_SECONDS

    async def let_finish(self, tasks: Iterable[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
        """Wait for `tasks` until they are done, the grace runs out or a second signal comes;
        cancel those still running and wait for them to record their cancellation. Returns
        the tasks that had to be cancelled."""
        pending = {t for t in tasks if not t.done()}
        hurry = asyncio.ensure_future(self.hurry.wait())
        try:
            while pending and not self.hurry.is_set():
                remaining = self.remaining()
                if remaining <= 0:
                    break
                _, pending = await asyncio.wait(pending | {hurry}, timeout=remaining,
                                                return_when=asyncio.FIRST_COMPLETED)
                pending.discard(hurry)
        finally:
            hurry.cancel()
        pending = {t for t in pending if not t.done()}
        if pending:
            log.warning("grace period over: cancelling runs still in flight", runs=len(pending))
            for task in pending:
                task.cancel()
            # Each cancelled run records itself (a store write); a stuck one is the watchdog's.
            await asyncio.wait(pending, timeout=self.cleanup_seconds)
        return pending

    def done(self) -> None:
        """Shutdown finished: disarm the watchdogs."""
        for timer in self._watchdogs:
            timer.cancel()
        self._watchdogs.clear()

    def _arm(self, seconds: float, code: int) -> None:
        def expire() -> None:
            sys.stderr.write(f"reconciler: shutdown did not finish in time; exiting ({code})\n")
            sys.stderr.flush()
            self._hard_exit(code)

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        self._watchdogs.append(timer)
