"""Creating and upgrading the store's schema with Alembic.

`reconciler db upgrade` runs the migrations explicitly; opening a store also upgrades an
empty or older schema so that the quickstart needs no set-up step. The version check is a
single query against `alembic_version`, and Alembic itself is imported only when there is
something to upgrade, which keeps the CLI's start-up lean.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from reconciler.errors import StoreError

HEAD_REVISION = "0004"
"""The newest migration; a test checks it against the migration scripts."""

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_240_113_001  # advisory lock id: one migrating process at a time


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to `revision`; return the revision it was at before."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
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
