"""The store's tables (SQLAlchemy Core): the one record every view of a run reads.

- `runs`: one row per run (trigger, mode, revision, counts, outcome, error, times);
- `changes`: the changes of a run, with before/after and field diffs (secrets masked);
- `events`: what happened, for history and streams;
- `inventory`: the keys the reconciler applied per target (ownership and prune);
- `watermarks`: per-target cursors (incremental sync positions);
- `snapshots`: prior content of items a run changed (rollback);
- `audit`: who did what through the API or CLI.

The schema is created and upgraded by the Alembic migrations beside this module; a test
checks that the migrations and these definitions agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class _Json(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL (what the migrations create there).

    The same as `JSON().with_variant(JSONB(), "postgresql")`, except that SQLAlchemy's
    PostgreSQL dialect (about 25 ms of imports) is loaded only when a PostgreSQL store is
    used, not at every start of the CLI on its SQLite store."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


Json = _Json()


def _target_columns() -> list[Column]:
    return [
        Column("kind", String(63), nullable=False),
        Column("namespace", String(63), nullable=False),
        Column("name", String(253), nullable=False),
    ]


runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    *_target_columns(),
    Column("trigger", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("revision", String(64)),
    Column("generation", Integer),
    Column("outcome", String(16), nullable=False),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("invalid", Integer, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_seconds", Float),
    Column("error", Text),
    Column("error_type", String(64)),
    Column("warnings", Json),
    Column("drift", Json),
    Index("ix_runs_target_started", "kind", "namespace", "name", "started_at"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("item", String(32), nullable=False),
    Column("key", Text, nullable=False),
    Column("before", Json),
    Column("after", Json),
    Column("fields", Json),
    Index("ix_changes_run", "run_id", "seq"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32)),
    *_target_columns(),
    Column("type", String(32), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", Json),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_events_target_at", "kind", "namespace", "name", "at"),
)

inventory = Table(
    "inventory",
    metadata,
    Column("kind", String(63), primary_key=True),
    Column("namespace", String(63), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("item_key", String(512), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("kind", String(63), primary_key=True),
    Column("namespace", String(63), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("run_id", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    *_target_columns(),
    Column("item_key", Text, nullable=False),
    Column("content", Json),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_snapshots_run", "run_id"),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("item_key", Text),
    Column("stage", String(16), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("column_name", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("content", Json),
    Index("ix_rejects_run", "run_id"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("kind", String(63), primary_key=True),
    Column("namespace", String(63), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("last_schedule_time", DateTime(timezone=True)),
    Column("next_run_time", DateTime(timezone=True)),
    Column("suspended", Boolean),
    Column("override", Json),
    Column("missed", Integer, nullable=False, server_default="0"),
    Column("last_missed_time", DateTime(timezone=True)),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("retry_at", DateTime(timezone=True)),
    Column("spec_hash", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(400)),
    Column("source", String(128)),
    Column("detail", Json),
)

# Proposals (AgentConfig): a client's edit the spec could take, and what became of it.
# `id` is a fingerprint of (object, key, file value): the same edit seen again is the same
# proposal. status: pending | accepted | rejected | superseded.
proposals = Table(
    "proposals",
    metadata,
    Column("id", String(32), primary_key=True),
    *_target_columns(),
    Column("client", String(32)),
    Column("file", Text, nullable=False),
    Column("item_key", Text, nullable=False),
    Column("canonical", String(400), nullable=False),
    Column("policy", String(32), nullable=False),
    Column("file_value", Json),
    Column("spec_value", Json),
    Column("spec_digest", String(64)),  # the spec field the proposal was made against (specpatch)
    Column("patch", Json),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("reason", Text),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("run_id", String(32)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(128)),
    Index("ix_proposals_target", "kind", "namespace", "name", "status"),
)
