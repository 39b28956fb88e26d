"""Runs that take unusually long: noticed while they still run, at each duration threshold.

The AED design's logging plan asks for a WARN on an unusually long sync, and its alert plan
for a warning after 45 minutes and a critical alert after an hour of a run still going.
When a run starts, the orchestrator arms one timer per threshold (`DurationLimits`, from
`RECONCILER_ALERT_SLOW_RUN_SECONDS` and `_LONG_RUN_SECONDS`) and cancels them when the run
ends; a timer that fires logs `run still going after N s` at WARNING and publishes
`RunStillRunning` on the bus, which the alert rules turn into their slow-run and long-run
alerts. The watch lives with the run, not with a publisher: every front end that runs
(`apply`, `serve`, the operator) warns, webhook or not. A timer is a loop callback
(`call_later`), which runs in a copy of the context it was armed in: its log line carries
the run's `run_id`, `kind`, `namespace` and `name` like every other line of the run.

Not done here: judging a run's duration once it ended (the alert rules read that from the
run's last event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Threshold = Literal["slow", "long"]


@dataclass(frozen=True, slots=True)
class DurationLimits:
    """After how long a run still going is slow (a warning) and long (critical); 0 or None:
    that threshold is off."""

    slow_seconds: float | None = 2700.0
    long_seconds: float | None = 3600.0

    def thresholds(self) -> list[tuple[Threshold, float]]:
        """The thresholds that are on, shortest first."""
        limits: list[tuple[Threshold, float | None]] = [("slow", self.slow_seconds),
                                                        ("long", self.long_seconds)]
        return sorted(((name, float(seconds)) for name, seconds in limits if seconds),
                      key=lambda threshold: threshold[1])


def watch_duration(limits: DurationLimits, on_pass: Callable[[Threshold, float], None]) -> Callable[[], None]:
    """Call `on_pass(threshold, seconds)` when the running code has taken each threshold's
    seconds from now; returns the function that disarms what has not fired yet."""
    loop = asyncio.get_running_loop()
    handles = [loop.call_later(seconds, on_pass, name, seconds) for name, seconds in limits.thresholds()]

    def disarm() -> None:
        for handle in handles:
            handle.cancel()

    return disarm
