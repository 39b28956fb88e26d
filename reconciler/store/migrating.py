"""Creating and upgrading the store's schema with Alembic.

`reconciler db upgrade` runs the migrations explicitly; opening a store also upgrades an
empty or older schema so that the quickstart needs no set-up step. The version check is a
single query against `alembic_version`, and Alembic itself is imported only when there is
something to upgrade, which keeps the CLI's start-up lean.

Several processes may open a new store at the same moment (a daemon and a CLI command,
parallel CI jobs), so an upgrade runs under a lock held across the version check and the
migrations: on PostgreSQL a transaction-level advisory lock, on SQLite an exclusive
`flock` on a file beside the database (`<database>.migrate.lock`). SQLite's own locking
does not help here: the Python driver runs DDL outside any transaction, so two processes
both see an empty schema and both try `CREATE TABLE`. Whoever waits for the lock finds
the schema at head and has nothing left to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from reconciler.errors import StoreError

HEAD_REVISION = "0006"
"""The newest migration; a test checks it against the migration scripts."""

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_240_113_001  # advisory lock id: one migrating process at a time


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on `<database>.migrate.lock` (SQLite files only)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no inter-process lock available
        yield
        return
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to `revision`; return the revision it was at before."""
    from alembic import command
    from alembic.config import Config

    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        before = (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if inspect(conn).has_table("alembic_version") else None
        )
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return before


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty or older schema; refuse one newer than this code knows."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    if current is not None and current > HEAD_REVISION:
        raise StoreError(
            f"the store's schema is at revision {current}, newer than this reconciler "
            f"({HEAD_REVISION}); upgrade the reconciler"
        )
    upgrade(engine)
