"""Deciding on a proposal: accept takes the client's edit into the spec, reject undoes it.

`decide` is the one implementation behind `reconciler review accept|reject` and
`POST /api/v1/proposals/{id}/accept|reject`. Only a pending proposal can be decided.

- **accept** writes the proposal's spec patch into the file that declares the object (a
  ruamel round trip: comments and layout kept, see `specpatch`), marks the proposal
  accepted and audits it with the actor. The caller then reconciles the object: the
  changed spec reaches every other client, and the edited client is already in sync.
  A spec that does not come from a file on disk (a git revision) cannot be patched here:
  accept says so and changes nothing.
- **reject** marks the proposal rejected and audits it; the next run of the object
  imposes the spec on that key while the file still holds the rejected value (see
  `driver.resolve_plan`), so the caller reconciles to revert the client's file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.drivers.agents.specpatch import patch_text, spec_file
from reconciler.errors import ReconcilerError
from reconciler.store.proposals import ACCEPTED, PENDING, REJECTED, Proposal, ProposalBook


class ProposalError(ReconcilerError):
    """No such proposal, not pending, or nothing to patch."""


@dataclass(frozen=True, slots=True)
class Decided:
    proposal: Proposal
    status: str
    spec_file: str | None = None  # the file accept patched


def _write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def decide(book: ProposalBook, proposal_id: str, *, accept: bool, actor: str,
           audit: object | None = None, source: str | None = None) -> Decided:
    """Accept or reject one pending proposal (see the module docstring). `audit` is the
    store (anything with `record_audit`); the decision is audited with the actor."""
    proposal = book.get(proposal_id)
    if proposal is None:
        raise ProposalError(f"no proposal {proposal_id!r}; see `reconciler review`")
    if proposal.status != PENDING:
        raise ProposalError(f"proposal {proposal_id} is {proposal.status}, not pending; only a pending "
                            "proposal can be accepted or rejected")
    written: str | None = None
    if accept:
        if not proposal.patch:
            raise ProposalError(f"proposal {proposal_id} has no spec patch (the client's file could not "
                                "be read back into the spec); edit the spec by hand")
        located = spec_file(proposal.target)
        if located is None:
            raise ProposalError(f"{proposal.target.short} is not declared in a spec file on disk here "
                                "(a git revision?); accept needs the folder the specs are loaded from")
        before = located.path.read_text(encoding="utf-8")
        after = patch_text(before, proposal.target, proposal.patch.items(), source=str(located.path))
        if after != before:
            _write(located.path, after)
        written = str(located.path)
    status = ACCEPTED if accept else REJECTED
    book.decide(proposal_id, status=status, actor=actor,
                reason="accepted: the spec takes the client's edit" if accept
                else "rejected: the spec is re-imposed on the client")
    record = getattr(audit, "record_audit", None)
    if record is not None:
        record(actor=actor, action=f"proposal-{'accept' if accept else 'reject'}", obj=proposal.target.short,
               source=source, detail={"proposal": proposal_id, "key": proposal.key,
                                      "canonical": proposal.canonical, "specFile": written})
    return Decided(proposal, status, written)
