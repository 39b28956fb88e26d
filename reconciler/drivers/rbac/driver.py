"""The RbacMapping driver: archive facts and declarations into an RBAC database, all or nothing.

`observe` reads the archive in one read-only snapshot (`source.py`) — in an incremental
run only the facts anchored after each rule's watermark — and turns the facts into
bindings (`templating.py`, pure). It then opens one transaction on the RBAC database,
kept until the run ends, takes the target's advisory lock, resolves the tables
(`schema.py`) and reads the rows by name (`target.py`): all of them in a full run, only
those the run could grant in an incremental one. `diff` is `planning.plan_delta` (pure)
rendered as a plan per subject (`changes.py`). `apply` recomputes the same delta from the
same observation, writes it in that transaction, and commits; the run records the keys it
created and deleted (the inventory) and the rules' watermarks. `release` rolls back what
was not committed: a dry run, a tripped guard or a failed statement leave the RBAC
database exactly as it was.

`verify` is the proof mode behind `reconciler plan --verify` (pgbedrock's check mode,
plus ldap2pg's wish #201): it writes the plan in the open transaction, reads the target
again, diffs again with the inventory the apply would have recorded, and rolls back. An
empty second diff proves that one run converges.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import psycopg

from reconciler.drivers.rbac.changes import delta_changes, to_plan
from reconciler.drivers.rbac.guards import rbac_guards
from reconciler.drivers.rbac.keys import BindingKey
from reconciler.drivers.rbac.planning import (
    Desired,
    Ownership,
    RbacDelta,
    TargetRows,
    desired_state,
    drift,
    plan_delta,
    written_descriptions,
)
from reconciler.drivers.rbac.schema import Tables, existing_tables, managed_tables, managed_version, pending
from reconciler.drivers.rbac.source import SourceFacts, read_facts
from reconciler.drivers.rbac.target import lock, read_rows, write_delta
from reconciler.drivers.rbac.templating import Derivation, derive
from reconciler.engine.drivers import ApplyResult, RunContext
from reconciler.errors import DriverError, TargetError
from reconciler.models import Mode
from reconciler.models.rbac import Authority, RbacMapping, RbacMappingSpec
from reconciler.structs.plans import Plan, Verification


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything diff needs, as values."""

    desired: Desired
    target: TargetRows
    derivations: tuple[Derivation, ...]
    facts: SourceFacts | None
    full: bool  # a full comparison (full mode)
    recorded: Mapping[str, str] = field(default_factory=dict)  # the store's watermarks (drift)


@dataclass(slots=True)
class _Session:
    """The open target transaction of one run."""

    conn: psycopg.Connection[Any]
    tables: Tables
    candidates: tuple[BindingKey, ...] | None
    observed: Observed | None = None


def marker_of(obj: RbacMapping) -> str:
    return f"reconciler:{obj.ref}"


def ownership(obj: RbacMapping, inventory: frozenset[str]) -> Ownership:
    return Ownership(inventory=inventory, marker=marker_of(obj),
                     full_authority=obj.spec.ownership.authority is Authority.FULL)


def _derive(spec: RbacMappingSpec, facts: SourceFacts | None) -> tuple[Derivation, ...]:
    if facts is None:
        return ()
    roles = frozenset(r.name for r in spec.roles)
    rules = {r.name: r for r in spec.derive}
    return tuple(derive(rules[f.rule], f.columns, f.rows, roles) for f in facts.rules)


def _open_target(url: str, spec: RbacMappingSpec) -> tuple[psycopg.Connection[Any], Tables, tuple[int, ...]]:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme and scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise TargetError(f"target.databaseUrl ({spec.target.database_url.describe()}): the RBAC database "
                          f"is PostgreSQL (postgresql://HOST:PORT/DATABASE), got a {scheme}:// URL")
    try:
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), connect_timeout=10)
    except psycopg.Error as exc:
        raise TargetError(f"cannot connect to the RBAC database ({spec.target.database_url.describe()}): "
                          f"{str(exc).strip()}") from None
    try:
        with conn.cursor() as cur:
            managed = spec.target.managed_schema
            if managed is not None:
                tables = managed_tables(managed.schema_name)
                lock(cur, tables)
                migrations = pending(managed_version(cur, managed.schema_name))
            else:
                assert spec.target.existing_schema is not None
                tables = existing_tables(cur, spec.target.existing_schema)
                lock(cur, tables)
                migrations = ()
    except BaseException:
        conn.rollback()
        conn.close()
        raise
    return conn, tables, migrations


class RbacMappingDriver:
    kind: ClassVar[str] = "RbacMapping"

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    # --- observe ------------------------------------------------------------------------

    def teardown(self, obj: RbacMapping) -> RbacMapping:
        """The spec whose run removes every row this mapping created and nothing else: nothing
        declared or derived, on the same target. Its guards are opened (the user asked for the
        removal with `deletionPolicy: Delete`); ownership still limits it to our rows."""
        from reconciler.models.rbac import RbacGuards

        empty = obj.spec.model_copy(update={
            "permissions": [], "roles": [], "bindings": [], "derive": [], "source": None,
            "guards": RbacGuards(max_revokes="100%", allow_empty_facts=True)})
        return obj.model_copy(update={"spec": empty})

    async def observe(self, obj: RbacMapping, ctx: RunContext) -> Observed:
        spec, namespace = obj.spec, obj.metadata.namespace
        full = ctx.mode is Mode.FULL
        facts = None
        recorded = await asyncio.to_thread(ctx.state.watermarks) if ctx.state is not None else {}
        if spec.derive:
            assert spec.source is not None
            source_url = ctx.secrets.resolve(spec.source.database_url, namespace=namespace).reveal()
            facts = await asyncio.to_thread(read_facts, source_url, spec, incremental=not full,
                                            watermarks={} if full else recorded)
        derivations = _derive(spec, facts)
        desired = desired_state(spec, derivations)
        url = ctx.secrets.resolve(spec.target.database_url, namespace=namespace).reveal()
        conn, tables, migrations = await asyncio.to_thread(_open_target, url, spec)
        candidates = None if full else tuple(sorted(desired.bindings, key=lambda b: (b[0], b[1], b[2] or "")))
        session = _Session(conn, tables, candidates)
        self._sessions[ctx.run_id] = session
        rows = await asyncio.to_thread(self._read, session, migrations)
        session.observed = Observed(desired, rows, derivations, facts, full, recorded)
        return session.observed

    @staticmethod
    def _read(session: _Session, migrations: tuple[int, ...]) -> TargetRows:
        with session.conn.cursor() as cur:
            return read_rows(cur, session.tables, candidates=session.candidates, migrations=migrations)

    # --- diff (pure) ----------------------------------------------------------------------

    def _delta(self, obj: RbacMapping, actual: Observed, inventory: frozenset[str]) -> RbacDelta:
        return plan_delta(actual.desired, actual.target, ownership(obj, inventory), full=actual.full)

    def diff(self, obj: RbacMapping, actual: Observed, ctx: RunContext) -> Plan:
        delta = self._delta(obj, actual, ctx.inventory)
        facts = actual.facts
        details: dict[str, Any] = {
            "mode": "full" if actual.full else "incremental (grants only; revocations wait for a full run)",
            "bindings": {"current": actual.target.bindings_total, "desired": len(actual.desired.bindings)},
            "ownership": obj.spec.ownership.authority.value,
        }
        warnings: list[str] = []
        empty_rules: tuple[str, ...] = ()
        if facts is not None:
            details["layout"] = facts.layout.value
            by_rule = {f.rule: f for f in facts.rules}
            since = {name: f.since.isoformat() if f.since else None for name, f in by_rule.items()}
            details["facts"] = {d.rule: {
                "facts": d.facts, "bindings": len(d.bindings), "since": since[d.rule],
                "skipped": {"unknown": d.unknown, "undeclaredRole": d.undeclared, "invalid": d.invalid,
                            "filtered": d.filtered}, "examples": list(d.samples)} for d in actual.derivations}
            if actual.full:
                empty_rules = tuple(d.rule for d in actual.derivations if d.facts == 0)
            warnings += facts.warnings
            warnings += [f"derive rule {d.rule!r}: {d.undeclared} fact(s) name an undeclared role, e.g. "
                         f"{d.samples[0]}" for d in actual.derivations if d.undeclared]
        schema = obj.spec.target.managed_schema
        watermarks = {f"derive:{f.rule}": f.watermark for f in facts.rules if f.watermark} if facts else {}
        watermarks.update(written_descriptions(actual.desired))
        plan = to_plan(delta, target=obj.ref, schema=schema.schema_name if schema else None, details=details,
                       warnings=tuple(warnings), watermarks=watermarks, empty_rules=empty_rules)
        return replace(plan, drift=drift(delta, ctx.inventory, actual.recorded))

    # --- apply, verify, release -------------------------------------------------------------

    def _session(self, ctx: RunContext) -> _Session:
        session = self._sessions.get(ctx.run_id)
        if session is None or session.observed is None:
            raise DriverError("apply without observe in the same run")
        return session

    def _write(self, session: _Session, obj: RbacMapping, delta: RbacDelta) -> None:
        try:
            with session.conn.cursor() as cur:
                write_delta(cur, session.tables, delta, marker=marker_of(obj),
                            full_authority=obj.spec.ownership.authority is Authority.FULL)
        except psycopg.Error as exc:
            raise DriverError(f"the RBAC database refused a change: {str(exc).strip()}; nothing was "
                              "written") from None

    async def apply(self, plan: Plan, ctx: RunContext) -> ApplyResult:
        obj: RbacMapping = ctx.obj  # type: ignore[assignment]
        session = self._session(ctx)
        assert session.observed is not None
        delta = self._delta(obj, session.observed, ctx.inventory)
        await asyncio.to_thread(self._write, session, obj, delta)
        await asyncio.to_thread(session.conn.commit)
        counts = plan.counts
        return ApplyResult(created=counts.created, updated=counts.updated, deleted=counts.deleted,
                           owned_added=(*delta.created_keys(), *delta.adopt),
                           owned_removed=tuple(delta.deleted_keys()), watermarks=dict(plan.watermarks))

    async def verify(self, obj: RbacMapping, plan: Plan, ctx: RunContext) -> Plan:
        """Apply in the open transaction, re-observe, diff again, roll back."""
        session = self._session(ctx)
        observed = session.observed
        assert observed is not None
        delta = self._delta(obj, observed, ctx.inventory)
        try:
            await asyncio.to_thread(self._write, session, obj, delta)
            after = await asyncio.to_thread(self._read, session, ())
        finally:
            await asyncio.to_thread(session.conn.rollback)
        inventory = (ctx.inventory | set(delta.created_keys()) | set(delta.adopt)) - set(delta.deleted_keys())
        second = self._delta(obj, replace(observed, target=after), frozenset(inventory))
        remaining = delta_changes(second, None)
        verification = Verification(converged=second.empty, remaining=len(remaining), applied=plan.counts,
                                    sample=tuple(c.key for c in remaining[:20]))
        plan = replace(plan, presentation=replace(plan.presentation, verification=verification))
        if second.empty:
            return plan
        return plan.with_warnings(
            f"proof failed: after applying this plan in a transaction (rolled back), a second diff still has "
            f"{len(remaining)} change(s), e.g. {', '.join(c.key for c in remaining[:3])}")

    async def release(self, ctx: RunContext) -> None:
        session = self._sessions.pop(ctx.run_id, None)
        if session is not None:
            await asyncio.to_thread(_close, session.conn)

    def guards(self, obj: RbacMapping) -> list[object]:
        return rbac_guards(obj.spec.guards)


def _close(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.rollback()
    finally:
        conn.close()
