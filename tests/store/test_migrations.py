"""The Alembic migrations create exactly the schema the table definitions describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from reconciler.store import Store
from reconciler.store.migrating import HEAD_REVISION, MIGRATIONS, current_revision, upgrade
from reconciler.store.tables import metadata


def test_head_revision_constant_matches_the_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrations_match_the_table_definitions(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_opening_a_store_brings_the_schema_to_head(store: Store) -> None:
    assert current_revision(store.engine) == HEAD_REVISION


def test_upgrading_twice_changes_nothing(store: Store) -> None:
    assert upgrade(store.engine) == HEAD_REVISION
    assert current_revision(store.engine) == HEAD_REVISION
