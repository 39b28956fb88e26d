"""Clocks: where the scheduler gets "now" and how it waits, so tests can own time.

The scheduler never calls `datetime.now` or `asyncio.sleep` itself; it asks a `Clock`.
`SystemClock` is the real one. `FakeClock` is for tests: its time moves only when the
test says so, which makes a day of cron occurrences, a DST change or a week of downtime a
matter of milliseconds, with exact and repeatable instants.

`FakeClock.sleep` has two behaviours, chosen when the clock is made:

- by default a sleeper waits until the test moves the clock past its deadline with
  `advance` or `set`; code under test (a slow fake run, the scheduler's loop) then
  progresses exactly as far as the test lets time progress;
- with `auto_advance=True` a sleep moves the clock to its deadline at once and returns,
  so a loop such as `Scheduler.run_forever` runs through simulated time by itself.

Either way a sleep yields to the event loop once, so other tasks get their turn.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, time-zone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of this clock's time."""
        ...


class SystemClock:
    """The machine's clock and asyncio's sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: set, advance, and sleepers that wake when time passes their deadline."""

    def __init__(self, start: datetime, *, auto_advance: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a time-zone-aware start time")
        self._now = start.astimezone(UTC)
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties on the deadline wake in sleep order

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + timedelta(seconds=max(0.0, seconds))
        if self.auto_advance or deadline <= self._now:
            self._move_to(max(deadline, self._now))
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), waiter))
        await waiter

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move time forward by `seconds` (or `minutes=`, `hours=`, … as for timedelta)."""
        step = timedelta(seconds=seconds, **delta)
        if step < timedelta(0):
            raise ValueError("a clock never goes backwards")
        return self._move_to(self._now + step)

    def set(self, when: datetime) -> datetime:
        """Jump to `when` (not earlier than now), waking every sleeper due by then."""
        if when.tzinfo is None:
            raise ValueError("expected a time-zone-aware datetime")
        if when < self._now:
            raise ValueError("a clock never goes backwards")
        return self._move_to(when.astimezone(UTC))

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting for time to pass."""
        return sum(1 for _, _, waiter in self._sleepers if not waiter.done())

    def _move_to(self, when: datetime) -> datetime:
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():  # a cancelled sleeper is simply dropped
                waiter.set_result(None)
        return self._now
