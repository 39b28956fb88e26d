"""Logging with structlog: readable console lines by default, JSON lines on request.

Every line logged inside a run carries the run id, kind, namespace and name (bound by the
orchestrator through context variables). While a run is active, a scrubber replaces the
secret values it resolved with `***` in every string of every log line. Every line, inside a
run or not, also goes through `reconciler.redaction.redact` (URL userinfo and every secret
the process knows), exceptions included: a traceback is rendered as plain text, never with
its frame locals (which held resolved keys and store URLs), and redacted before any
renderer or the API's log buffer sees it. Records of the standard `logging` module
(uvicorn, asyncio, libraries) are redacted the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any


def _import_structlog_without_rich() -> Any:
    """structlog imports `rich` (its console, traceback and pretty modules, and through them
    pygments) for its rich exception renderer, about 70 ms of every CLI start. That renderer
    is never used here (tracebacks are plain and without locals: see `configure`), so rich is
    hidden while structlog is imported, and only then: structlog then takes its plain
    renderer, and rich stays available to everything else (Typer's help)."""
    if "structlog" in sys.modules:
        return sys.modules["structlog"]
    hidden = [name for name in ("rich", "better_exceptions") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import structlog as imported
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return imported


structlog = _import_structlog_without_rich()

from reconciler.redaction import redact  # noqa: E402

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

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(scrub(value) if scrub is not None else value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [clean(v) for v in value]
        if value is None or isinstance(value, int | float | bool):
            return value
        return clean(str(value))  # an object's str() may carry a URL or a secret

    return {k: clean(v) for k, v in event.items()}


def _redacting_record_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Wrap the `logging` record factory: a record whose text or traceback carries a secret
    gets its message and traceback pre-rendered, redacted (tracebacks never show locals)."""
    if getattr(base, "_reconciler_redacting", False):
        return base

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's to report
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    factory._reconciler_redacting = True  # type: ignore[attr-defined]
    return factory


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
        # Never rich tracebacks with locals: format_exc_info below renders a plain one first.
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                                 exception_formatter=structlog.dev.plain_traceback)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
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
    logging.setLogRecordFactory(_redacting_record_factory(logging.getLogRecordFactory()))
