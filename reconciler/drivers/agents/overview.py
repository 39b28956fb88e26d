"""Clients at a glance: every (AgentConfig, client, scope) with its state, derived, never edited.

The users' design keeps a list of "registered clients". Here that list is derived: each
target of each AgentConfig in the spec set is one row, with the files the reconciler writes
for it (and whether they exist), the object's last real run (its last sync), the drifted
keys that run found in the target's files, the pending proposals for that client (when the
store keeps proposals), and the state of the client's own CLI check (see `validating`):
passed, failed (and whether the client is held, not synced, because of it), skipped, or
none yet. `reconciler clients` and `GET /api/v1/clients` both show `client_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.drivers.agents.driver import read_file
from reconciler.drivers.agents.entries import expand
from reconciler.drivers.agents.validating import files_hash, states, targets_of
from reconciler.models import Resource
from reconciler.models.agents import AgentConfig
from reconciler.store.repository import Store


class ClientFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # as the spec displays it (root as written)
    exists: bool


class ClientRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    object: str
    client: str
    scope: str
    root: str
    files: list[ClientFile]
    last_sync: dict[str, Any] | None = None  # {runId, at, outcome} of the object's last real run
    drifted: list[str] = []
    pending_proposals: int | None = None  # None: this store keeps no proposals
    validation: dict[str, Any]  # {state, held, at, command, message}


def _pending_by_object(store: Store) -> dict[str, list[Any]] | None:
    """Pending proposals per object, or None when the store keeps none."""
    try:
        from reconciler.store.proposals import ProposalBook
    except ImportError:
        return None
    try:
        proposals = ProposalBook(store.engine).list()
    except Exception:  # an older schema without the proposals table
        return None
    out: dict[str, list[Any]] = {}
    for proposal in proposals:
        out.setdefault(proposal.target.short, []).append(proposal)
    return out


def client_rows(store: Store, objects: Iterable[Resource]) -> list[ClientRow]:
    """One row per target of every AgentConfig in `objects` (the loaded spec set)."""
    latest = store.latest_runs()
    pending = _pending_by_object(store)
    rows: list[ClientRow] = []
    for obj in objects:
        if not isinstance(obj, AgentConfig):
            continue
        last = latest.get(obj.ref)
        recorded = states(store.watermarks(obj.ref))
        for view in targets_of(obj):
            texts = {f: read_file(f).text for f in view.files}
            state = dict(recorded.get(view.id) or {"state": "none"})
            state["held"] = (state.get("state") == "failed" and state.get("spec") == view.spec_hash
                             and state.get("files") == files_hash(texts))
            state.pop("spec", None)
            state.pop("files", None)
            mine = set(view.files)
            rows.append(ClientRow(
                object=obj.ref.short, client=str(view.place.client), scope=str(view.place.scope),
                root=view.place.root,
                files=[ClientFile(path=f, exists=expand(f).is_file()) for f in view.files],
                last_sync=None if last is None else {"runId": last.id, "at": _iso(last.started_at),
                                                     "outcome": last.outcome},
                drifted=[key for key in (last.drift if last else []) if key.partition("#")[0] in mine],
                pending_proposals=None if pending is None else sum(
                    1 for p in pending.get(obj.ref.short, []) if p.file in mine),
                validation=state,
            ))
    return rows


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
