"""What a run says about an error nobody planned for: one line, never the library's dump.

A `ReconcilerError` is written for users and is shown as it is. Anything else that escapes
a driver is a bug or a library failure, and its text is not fit to show: a SQLAlchemy
error carries the SQL statement and the row's parameters, a database error has `DETAIL`
lines with key values, and some libraries put whole payloads in their messages. Such text
travels far: into the run history, the API, events, and a pull-request comment read by
everyone with access to the repository.

So an unexpected error is summarised as its type and the first line of its primary
message (for a database error the server's own message, without the statement or the
parameters), bounded in length. The full error with its traceback goes to the log only,
where the run id ties it to the summary.
"""

from __future__ import annotations

MAX_SUMMARY = 200


def _primary(exc: BaseException) -> BaseException:
    """The error that says what went wrong: a SQLAlchemy wrapper's DB-API error (`orig`)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def summarize_unexpected(exc: BaseException) -> str:
    """`"unexpected IntegrityError: duplicate key value violates unique constraint ..."`:
    one line of at most about MAX_SUMMARY characters, no SQL, no parameters, no detail lines."""
    text = str(_primary(exc)).strip()
    first = text.splitlines()[0].strip() if text else ""
    # SQLAlchemy prefixes the DB-API class, "(psycopg.errors.UniqueViolation) ..."
    if first.startswith("(") and ") " in first:
        first = first.split(") ", 1)[1]
    if "[SQL:" in first:
        first = first.split("[SQL:", 1)[0].rstrip()
    if len(first) > MAX_SUMMARY:
        first = first[: MAX_SUMMARY - 1].rstrip() + "…"
    name = type(exc).__name__
    return f"unexpected {name}: {first}" if first else f"unexpected {name}"
