"""Failure classes: what kind of trouble ended a run, in a word an operator can alert on.

A run's `error_type` is the exception's class name (`HttpStatusError`, `ApiError`,
`OperationalError`, ...): precise, but it depends on the driver and the library, and it
changes when code is refactored. Metrics and alert rules need a short, stable vocabulary
instead, the one an operations design speaks ("the API was down", "the key was refused",
"validation failed", "a guard stopped it", "the database failed"). `classify` maps an
exception to one of:

| class | what |
|---|---|
| `source_unavailable` | the source did not answer, or answered with an error a later run |
| | may not meet (HTTP 5xx/429, timeouts, dropped connections, garbled pages, retry codes) |
| `auth` | the source refused the credential (HTTP 401/403; a key not registered, expired, |
| | disabled; an IP not allowed) |
| `quota` | the source's request quota is used up |
| `source_error` | any other source error (a wrong request, an unknown operation) |
| `validation` | the data failed a validation rule that stops the run |
| `guard:<name>` | a guard (`maxDeletes`, `forbidAllNullColumns`, ...) stopped the run |
| `database` | the target database (or its driver library) failed |
| `spec`, `secret` | the spec or a secret reference cannot be used |
| `conflict` | a hand edit that a person must decide on |
| `lock_timeout` | another run held the target's lock too long |
| `store` | the reconciler's own store failed |
| `cancelled` | the run was cut short (a shutdown) |
| `driver` | another error a driver reported on purpose |
| `unexpected` | a bug or an unclassified library failure |

An exception may name its class itself with a `failure_class` attribute (a driver's own
error types); otherwise the class is derived from the exception's type and, for a source
error, its code.
"""

from __future__ import annotations

from reconciler.errors import (
    ConflictError,
    GuardAborted,
    LockTimeout,
    ReconcilerError,
    SecretError,
    SourceError,
    SpecError,
    StoreError,
)

_AUTH_CODES = frozenset({
    "HTTP 401", "HTTP 403",
    # data.go.kr's result codes: access denied, key disabled, not registered, expired,
    # unregistered IP, unsigned call
    "20", "21", "30", "31", "32", "33",
})
_QUOTA_CODES = frozenset({"22"})
_DATABASE_MODULES = ("sqlalchemy", "psycopg", "psycopg2", "sqlite3", "asyncpg", "pymysql")
_BY_NAME = {"ValidationFailed": "validation"}  # a driver's class, matched without importing the driver


def classify(exc: BaseException) -> str:
    """The failure class of `exc` (see the table in the module docstring)."""
    own = getattr(exc, "failure_class", None)
    if isinstance(own, str) and own:
        return own
    if isinstance(exc, GuardAborted):
        return f"guard:{exc.guard}"
    for cls in type(exc).__mro__:
        if cls.__name__ in _BY_NAME:
            return _BY_NAME[cls.__name__]
    if isinstance(exc, SourceError):
        if exc.code in _AUTH_CODES:
            return "auth"
        if exc.code in _QUOTA_CODES:
            return "quota"
        return "source_unavailable" if exc.retryable else "source_error"
    simple: tuple[tuple[type[BaseException], str], ...] = (
        (SpecError, "spec"), (SecretError, "secret"), (ConflictError, "conflict"),
        (LockTimeout, "lock_timeout"), (StoreError, "store"),
    )
    for kind, name in simple:
        if isinstance(exc, kind):
            return name
    cause = getattr(exc, "orig", None) or exc.__cause__
    for candidate in (exc, cause):
        if candidate is not None and type(candidate).__module__.split(".")[0] in _DATABASE_MODULES:
            return "database"
    if isinstance(exc, ReconcilerError):
        return "driver"
    return "unexpected"
