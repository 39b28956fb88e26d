"""Logging with structlog: readable console lines by default, JSON lines on request.

Every line logged inside a run carries the run id, kind, namespace and name (bound by the
orchestrator through context variables). While a run is active, a scrubber replaces the
secret values it resolved with `***` in every string of every log line.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import structlog

_scrubber: contextvars.ContextVar[Callable[[str], str] | None] = contextvars.ContextVar(
    "reconciler_log_scrubber", default=None
)


@contextlib.contextmanager
def scrubbing(scrub: Callable[[str], str]) -> Iterator[None]:
    token = _scrubber.set(scrub)
    try:
        yield
    finally:
        _scrubber.reset(token)


def _scrub_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    scrub = _scrubber.get()
    if scrub is None:
        return event
    return {k: scrub(v) if isinstance(v, str) else v for k, v in event.items()}


class LogBuffer:
    """The last `size` log entries (after secret scrubbing), for `GET /api/v1/logs`."""

    def __init__(self, size: int = 10_000) -> None:
        import collections

        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        self.entries.append({k: v if isinstance(v, str | int | float | bool | None) else str(v)
                             for k, v in event.items()})
        return event


def configure(*, fmt: str = "console", level: str = "info", buffer: LogBuffer | None = None) -> None:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if fmt == "json" else _identity,
        _scrub_secrets,
        *([buffer] if buffer is not None else []),
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _identity(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return event
