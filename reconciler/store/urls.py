"""Reading the store's URL, or saying in one line what is wrong with it.

The store is SQLite (`sqlite:///path/to/reconciler.db`) or PostgreSQL through psycopg 3
(`postgresql://user@host:port/db`, spelled `postgresql+psycopg://` by SQLAlchemy). A URL
that SQLAlchemy cannot parse, a port that is not a number, another database, a driver
that is not installed, or a SQLite file whose folder cannot be created is a `StoreError`
naming the URL with its password masked, never a traceback from deep inside SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconciler.errors import StoreError
from reconciler.redaction import redact_url

EXAMPLES = "postgresql://HOST:PORT/DATABASE or sqlite:///PATH/TO/reconciler.db"
_DRIVERS = {"sqlite": {"pysqlite"}, "postgresql": {"psycopg"}}


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def parse_store_url(url: str) -> URL:
    """The parsed (normalised) URL of a supported store; raise `StoreError` saying what is
    wrong with it as given."""
    shown = redact_url(url)
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        raise StoreError(f"the store URL {shown!r} is not a URL: expected {EXAMPLES}") from None
    except ValueError:  # SQLAlchemy's int() of the port, or of a malformed host
        raise StoreError(f"the store URL {shown!r} is not valid: its port is not a number "
                         f"(expected {EXAMPLES})") from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise StoreError(f"the store URL {shown!r} names a {backend!r} database: the store is "
                         f"PostgreSQL or SQLite ({EXAMPLES})")
    driver = parsed.get_driver_name()
    if driver not in _DRIVERS[backend]:
        raise StoreError(f"the store URL {shown!r} names the driver {driver!r}, which the store "
                         f"does not use: write {backend}://… ({', '.join(sorted(_DRIVERS[backend]))})")
    return parsed


def prepare_sqlite_folder(parsed: URL) -> None:
    """Create the folder of a SQLite file; raise `StoreError` when that is impossible."""
    if not parsed.database or parsed.database == ":memory:":
        return
    folder = Path(parsed.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"cannot create the folder {str(folder)!r} for the SQLite store: "
                         "a file of that name is in the way") from None
    except OSError as exc:
        raise StoreError(f"cannot create the folder {str(folder)!r} for the SQLite store: "
                         f"{exc.strerror or exc}") from None
