"""Store growth per no-op run, without retention and with it (`history.retention`).

What is measured: the bytes the store grows by per no-op run of one AgentConfig (a
project-scope Claude Code target in a temporary folder), run in-process through the real
orchestrator N times after one initial apply. Two scenarios, each on a fresh store:

- `none`: no retention, as before `history.retention` existed;
- `keep K`: `prune_history(keep=K)` after every run, the daemon's worst case (it prunes
  every `RECONCILER_HISTORY_RETENTION_INTERVAL`).

Bytes are the store's used bytes: on SQLite, (page_count - freelist_count) x page_size after
a WAL checkpoint (freed pages are reused, so the file stops growing at the same point); on
PostgreSQL (`--pg-admin URL` creates and drops a database per scenario), the total relation
size of the store's tables after a plain VACUUM, with a VACUUM every 100 runs standing in for
autovacuum (without one, the space of pruned rows is not reusable yet). "per run" is
(after N runs - after N/2 runs) / (N/2): the steady-state growth, once retention has had
something to prune for a while.

Run from the repository root:

    PATH=/work/venv/bin:$PATH python bench/retention.py [--runs 300] [--keep 20] [--pg-admin URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from reconciler.drivers import default_registry
from reconciler.engine.orchestrator import Orchestrator
from reconciler.logs import configure
from reconciler.models.agents import AgentConfig
from reconciler.store import Store
from reconciler.store import tables as t
from reconciler.store.pruning import RetentionPolicy, prune_history
from reconciler.structs.runs import Outcome, Trigger


def agent_config(root: Path) -> AgentConfig:
    return AgentConfig.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": "team"},
        "spec": {"mcpServers": {"github": {"command": "npx", "args": ["-y", "server-github"]}},
                 "rules": [{"name": "style", "content": "# Style\n- typed\n"}],
                 "permissions": {"allow": ["Read"], "deny": ["Read(./.env)"]},
                 "targets": [{"client": "claude-code", "scope": "project", "root": str(root)}]}})


def used_bytes(store: Store) -> int:
    if store.is_postgres:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            query = "SELECT pg_total_relation_size('{}')"
            return sum(int(conn.exec_driver_sql(query.format(table.name)).scalar_one())
                       for table in t.metadata.sorted_tables)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    return int((pages - free) * size)


@contextlib.contextmanager
def fresh_store(folder: Path, pg_admin: str | None) -> Iterator[Store]:
    if pg_admin is None:
        store = Store.open(f"sqlite:///{folder / 'store.db'}")
        try:
            yield store
        finally:
            store.close()
        return
    import psycopg

    name = f"reconciler_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = Store.open(f"{pg_admin.rsplit('/', 1)[0]}/{name}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scenario(*, runs: int, keep: int | None, pg_admin: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, fresh_store(Path(tmp), pg_admin) as store:
        root = Path(tmp) / "project"
        root.mkdir()
        obj = agent_config(root)
        orchestrator = Orchestrator(store=store, drivers=default_registry())
        first = asyncio.run(orchestrator.run(obj, trigger=Trigger.MANUAL))
        assert first.outcome is Outcome.SUCCEEDED, first.error
        warm = max((keep or 0) + 1, runs // 2)
        sizes: dict[int, int] = {0: used_bytes(store)}
        for i in range(1, runs + 1):
            result = asyncio.run(orchestrator.run(obj, trigger=Trigger.SCHEDULE))
            assert result.outcome is Outcome.NOOP, (result.outcome, result.error)
            if keep is not None:
                prune_history(store, policy=RetentionPolicy(keep=keep), now=datetime.now(UTC))
            if store.is_postgres and i % 100 == 0:
                used_bytes(store)  # its VACUUM, as autovacuum would
            if i in (warm, runs):
                sizes[i] = used_bytes(store)
        with store.engine.connect() as conn:
            kept = conn.execute(t.runs.select()).all()
        return {"runs kept": len(kept), "bytes after": sizes[runs],
                "bytes per no-op run": (sizes[runs] - sizes[warm]) / (runs - warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--keep", type=int, default=20)
    parser.add_argument("--pg-admin", help="PostgreSQL admin URL (creates a database per scenario)")
    args = parser.parse_args()
    configure(fmt="console", level="warning")  # not one line per run
    backend = "PostgreSQL" if args.pg_admin else "SQLite"
    print(f"{backend}, {args.runs} no-op runs of one AgentConfig after an initial apply")
    for label, keep in (("no retention", None), (f"keep {args.keep}", args.keep)):
        figures = scenario(runs=args.runs, keep=keep, pg_admin=args.pg_admin)
        print(f"  {label:>14}: {figures['bytes per no-op run']:8.0f} bytes per no-op run, "
              f"{figures['runs kept']:4d} runs kept, {figures['bytes after'] / 1024:8.1f} KiB used")


if __name__ == "__main__":
    main()
