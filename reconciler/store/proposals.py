"""Proposals in the store: each client edit the spec could take, deduplicated across runs.

A run of an AgentConfig reports, per held key, the file's value, the spec's value and the
spec patch that would adopt the file's value. `ProposalBook.observe` turns that into rows:
the id is a fingerprint of (object, key, file value), so the same edit seen by ten runs is
one proposal whose `last_seen` moves (and whose patch, spec value and the digest of the spec
field it was made against, `spec_digest`, are the latest run's, while it is pending); a new
edit of the same key supersedes the older
pending one; a pending proposal whose key is no longer held (the spec took it, or the file
went back) is superseded too. Strategy decisions of a run are recorded as decided
proposals with the run id, decided by `reconciler`: an edit the spec took (`accepted`) is
accepted, one the spec was written over (`imposed`, `overwritten`) is rejected. `decide`
marks one accepted or rejected with the actor; what that does to the spec and the clients
is `deciding.py` in the AgentConfig driver. Only a person's reject keeps re-imposing the
spec on the same edit (`rejected`): a strategy decides again at each edit.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from reconciler.models.common import ObjectRef
from reconciler.store import tables as t

PENDING, ACCEPTED, REJECTED, SUPERSEDED = "pending", "accepted", "rejected", "superseded"
STATUSES = (PENDING, ACCEPTED, REJECTED, SUPERSEDED)
RECONCILER = "reconciler"  # who decided what a strategy decided


def status_of(decision: Mapping[str, Any] | None) -> str:
    """The status of a proposal a run's strategy decided (None or `proposed`: still pending)."""
    outcome = decision["outcome"] if decision else "proposed"
    return {"proposed": PENDING, "accepted": ACCEPTED}.get(outcome, REJECTED)


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    target: ObjectRef
    client: str | None
    file: str
    key: str
    canonical: str
    policy: str
    file_value: Any
    spec_value: Any
    patch: dict[str, Any] | None
    status: str
    outcome: str | None
    reason: str | None
    first_seen: datetime
    last_seen: datetime
    run_id: str | None
    decided_at: datetime | None
    decided_by: str | None
    spec_digest: str | None = None
    """What the spec said for `canonical` when a run last saw the edit (`specpatch.spec_digest`);
    None for a proposal recorded before proposals kept it."""

    def as_dict(self) -> dict[str, Any]:
        """The API's and `review -o json`'s shape (camelCase)."""
        return {"id": self.id, "object": self.target.short, "kind": self.target.kind,
                "namespace": self.target.namespace, "name": self.target.name, "client": self.client,
                "file": self.file, "key": self.key, "keyPath": self.key.split("#", 1)[-1],
                "canonical": self.canonical, "policy": self.policy, "fileValue": self.file_value,
                "specValue": self.spec_value, "patch": self.patch, "status": self.status,
                "outcome": self.outcome, "reason": self.reason,
                "firstSeen": self.first_seen.isoformat(), "lastSeen": self.last_seen.isoformat(),
                "runId": self.run_id,
                "decidedAt": self.decided_at.isoformat() if self.decided_at else None,
                "decidedBy": self.decided_by}


def fingerprint(target: ObjectRef, key: str, file_value: Any) -> str:
    raw = json.dumps([str(target), key, file_value], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite returns naive date-times
    return value


def _row(r: Any) -> Proposal:
    return Proposal(
        id=r.id, target=ObjectRef(r.kind, r.namespace, r.name), client=r.client, file=r.file,
        key=r.item_key, canonical=r.canonical, policy=r.policy, file_value=r.file_value,
        spec_value=r.spec_value, patch=r.patch, status=r.status, outcome=r.outcome, reason=r.reason,
        first_seen=_aware(r.first_seen) or datetime.now(UTC),
        last_seen=_aware(r.last_seen) or datetime.now(UTC),
        run_id=r.run_id, decided_at=_aware(r.decided_at), decided_by=r.decided_by, spec_digest=r.spec_digest)


class ProposalBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, *, status: str | None = PENDING, target: ObjectRef | None = None,
             limit: int = 1000) -> list[Proposal]:
        query = select(t.proposals).order_by(t.proposals.c.last_seen.desc(), t.proposals.c.id).limit(limit)
        if status is not None:
            query = query.where(t.proposals.c.status == status)
        if target is not None:
            c = t.proposals.c
            query = query.where(c.kind == target.kind, c.namespace == target.namespace, c.name == target.name)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def get(self, proposal_id: str) -> Proposal | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.proposals).where(t.proposals.c.id == proposal_id)).first()
        return _row(r) if r is not None else None

    def observe(self, target: ObjectRef, run_id: str, adopt: Mapping[str, Mapping[str, Any]],
                decisions: Iterable[Mapping[str, Any]] = (), *, now: datetime | None = None,
                ) -> builtins.list[str]:  # `list` here is the method above
        """Record a run's held keys (pending) and its strategy decisions; the ids seen."""
        now = now or datetime.now(UTC)
        decided = {d["key"]: d for d in decisions}
        seen: list[str] = []
        with self.engine.begin() as conn:
            for key, info in adopt.items():
                decision = decided.pop(key, None)
                seen.append(self._upsert(conn, target, run_id, key, info, status_of(decision), decision, now))
            for key, decision in decided.items():  # accepted/imposed keys are no longer held
                info = decision.get("info") or {}
                seen.append(self._upsert(conn, target, run_id, key, info, status_of(decision), decision, now))
            pending = conn.execute(select(t.proposals.c.id).where(
                t.proposals.c.kind == target.kind, t.proposals.c.namespace == target.namespace,
                t.proposals.c.name == target.name, t.proposals.c.status == PENDING)).scalars().all()
            stale = [pid for pid in pending if pid not in seen]
            if stale:
                conn.execute(update(t.proposals).where(t.proposals.c.id.in_(stale)).values(
                    status=SUPERSEDED, decided_at=now, decided_by=RECONCILER,
                    reason="no longer held: the spec and the file agree again, or a newer edit replaced it"))
        return seen

    def _upsert(self, conn: Any, target: ObjectRef, run_id: str, key: str, info: Mapping[str, Any],
                status: str, decision: Mapping[str, Any] | None, now: datetime) -> str:
        file_value = info.get("file")
        pid = fingerprint(target, key, file_value)
        canonical = str(info.get("canonical") or (decision or {}).get("canonical") or "")
        proposed = info.get("proposed")
        patch = {canonical: proposed} if canonical and "proposed" in info and not (
            isinstance(proposed, Mapping) and "error" in proposed) else None
        outcome = decision["outcome"] if decision else None
        reason = decision["reason"] if decision else None
        existing = conn.execute(select(t.proposals.c.status, t.proposals.c.decided_by).where(
            t.proposals.c.id == pid)).first()
        if existing is None:
            conn.execute(insert(t.proposals).values(
                id=pid, kind=target.kind, namespace=target.namespace, name=target.name,
                client=info.get("client") or (decision or {}).get("client"), file=key.split("#", 1)[0],
                item_key=key, canonical=canonical,
                policy=str(info.get("policy") or (decision or {}).get("policy") or "manual-review"),
                file_value=file_value, spec_value=info.get("spec"), spec_digest=info.get("specDigest"),
                patch=patch, status=status,
                outcome=outcome, reason=reason, first_seen=now, last_seen=now, run_id=run_id,
                decided_at=now if status != PENDING else None,
                decided_by=RECONCILER if status != PENDING else None))
        else:
            values: dict[str, Any] = {"last_seen": now, "run_id": run_id}
            if existing.status == PENDING and canonical and "proposed" in info:
                # The same edit as this run reads it (a newer reconciler, a changed spec): accept
                # writes the patch of the latest run, against the spec that run saw.
                values |= {"canonical": canonical, "spec_value": info.get("spec"), "patch": patch,
                           "spec_digest": info.get("specDigest")}
            # The same edit seen again: what a run decided of it (or that it is held again)
            # replaces what an earlier run decided; a person's decision stays.
            if existing.decided_by in (None, RECONCILER):
                decided = status != PENDING
                values |= {"status": status, "outcome": outcome, "reason": reason,
                           "decided_at": now if decided else None,
                           "decided_by": RECONCILER if decided else None}
            conn.execute(update(t.proposals).where(t.proposals.c.id == pid).values(**values))
        return pid

    def decide(self, proposal_id: str, *, status: str, actor: str, reason: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.proposals).where(t.proposals.c.id == proposal_id).values(
                status=status, outcome=status, decided_at=datetime.now(UTC), decided_by=actor,
                reason=reason))

    def rejected(self, target: ObjectRef) -> dict[str, str]:
        """key → the id of the proposals a person rejected (the spec is re-imposed while they
        match); an edit a strategy imposed the spec on is decided again when it comes back."""
        return {p.key: p.id for p in self.list(status=REJECTED, target=target, limit=10_000)
                if p.decided_by != RECONCILER}
