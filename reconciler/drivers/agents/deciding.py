"""Deciding on a proposal: accept takes the client's edit into the spec, reject undoes it.

`decide` is the one implementation behind `reconciler review accept|reject` and
`POST /api/v1/proposals/{id}/accept|reject`. Only a pending proposal can be decided.

- **accept** writes the proposal's spec patch into the file that declares the object (a
  ruamel round trip: comments and layout kept, see `specpatch`), marks the proposal
  accepted and audits it with the actor. A patch that would leave the spec as it is (the
  spec already says it) fails the accept: nothing is written, the proposal stays pending,
  and accept never reports a success that changed nothing. So does a proposal whose spec
  field changed since a run last saw the edit (a person edited it, or another proposal of
  the same field was accepted): the patch would silently overwrite that change. The next
  run of the object records the proposal against the spec as it is (its spec value shows
  it), and it can be decided then. The caller then reconciles the object: the
  changed spec reaches every other client, and the edited client is already in sync.
  In git mode (a daemon following a branch, see `specpatch.use_git`) the file is in the
  repository, not here: accept makes the patch a commit on a new branch
  `reconciler/proposal-<id>` of the daemon's clone, or pushes it to the `--write-back`
  branch (`runtime/writeback.py`), and the proposal is accepted only once that succeeded.
  The object is not reconciled then: the spec reaches the clients when the watched branch
  gets the change. A spec from neither (a git revision without a daemon's clone) cannot be
  patched here: accept says so and changes nothing.
- **reject** marks the proposal rejected and audits it; the next run of the object
  imposes the spec on that key while the file still holds the rejected value (see
  `driver.resolve_plan`), so the caller reconciles to revert the client's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.drivers.agents.specpatch import (
    Committed,
    PatchError,
    SpecWriter,
    declared,
    git_writer,
    patch_text,
    spec_blob,
    spec_digest,
    spec_field,
    spec_file,
)
from reconciler.errors import ReconcilerError
from reconciler.store.proposals import ACCEPTED, PENDING, REJECTED, Proposal, ProposalBook


class ProposalError(ReconcilerError):
    """No such proposal, not pending, or nothing to patch."""


@dataclass(frozen=True, slots=True)
class Decided:
    proposal: Proposal
    status: str
    spec_file: str | None = None  # the file accept patched
    committed: Committed | None = None  # git mode: the commit accept made

    def note(self) -> str | None:
        """What a person should know about the decision (git mode: where the commit is)."""
        c = self.committed
        if c is None:
            return None
        writer = git_writer()
        watched = writer.watched if writer is not None else "the watched branch"
        where = (f"pushed to branch {c.pushed_to}" if c.pushed_to else
                 f"on branch {c.branch} of {c.repository}: push it (git push <remote> {c.branch}) "
                 "and merge it")
        return (f"commit {c.commit[:12]} changes {c.path} ({where}); the object is not reconciled now: "
                f"the spec reaches the clients when {watched} gets the change")


def _write(path: Path, text: str) -> None:
    from reconciler.drivers.agents.driver import atomic_write

    atomic_write(path, text, path.stat().st_mode & 0o7777)


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
    committed: Committed | None = None
    if accept:
        if not proposal.patch:
            raise ProposalError(f"proposal {proposal_id} has no spec patch (the client's file could not "
                                "be read back into the spec); edit the spec by hand")
        located = spec_file(proposal.target)
        writer, blob = git_writer(), spec_blob(proposal.target)
        if located is not None:
            before = located.path.read_text(encoding="utf-8")
            try:
                after = _patched(proposal, before, source=str(located.path))
            except PatchError as exc:
                raise ProposalError(f"proposal {proposal_id} was not accepted: {exc}; "
                                    "it stays pending") from None
            _write(located.path, after)
            written = str(located.path)
        elif writer is not None and blob is not None:
            committed = _commit(proposal, writer=writer, path=blob, actor=actor)
        else:
            raise ProposalError(f"{proposal.target.short} is not declared in a spec file on disk here "
                                "(a git revision?); accept needs the folder the specs are loaded from, "
                                "or a daemon following the git branch")
    status = ACCEPTED if accept else REJECTED
    book.decide(proposal_id, status=status, actor=actor,
                reason="accepted: the spec takes the client's edit" if accept
                else "rejected: the spec is re-imposed on the client")
    record = getattr(audit, "record_audit", None)
    if record is not None:
        record(actor=actor, action=f"proposal-{'accept' if accept else 'reject'}", obj=proposal.target.short,
               source=source, detail={"proposal": proposal_id, "key": proposal.key,
                                      "canonical": proposal.canonical, "specFile": written,
                                      "commit": committed.commit if committed else None,
                                      "branch": committed.branch if committed else None,
                                      "pushedTo": committed.pushed_to if committed else None})
    return Decided(proposal, status, written, committed)


def _patched(proposal: Proposal, text: str, *, source: str) -> str:
    """The spec file's text with the proposal's patch applied; `PatchError` when the patch
    changes nothing, or when the field it patches is no longer what the proposal was made
    against (accepting would overwrite that newer change)."""
    assert proposal.patch is not None
    try:
        after = patch_text(text, proposal.target, proposal.patch.items(), source=source, must_change=True)
    except PatchError as exc:
        raise PatchError(f"{exc} (a run supersedes the proposal once the file and the spec agree)") from None
    ref, field = proposal.target, proposal.canonical
    if proposal.spec_digest is None:
        raise PatchError(f"the proposal was recorded before proposals kept the spec they were made "
                         f"against, so it cannot be told whether the spec's {field} changed since: run "
                         f"{ref.short} again (reconciler apply, or the daemon's next run), then decide")
    now = declared(text, ref, source=source)
    if spec_digest(now, field) != proposal.spec_digest:
        shown = json.dumps(spec_field(now, field), ensure_ascii=False)
        raise PatchError(f"the spec's {field} changed since the proposal was made (it now says {shown}); "
                         f"accepting would overwrite that change. The next run of {ref.short} on that spec "
                         "(reconciler apply, or the daemon's) shows the proposal against it: decide then")
    return after


def _commit(proposal: Proposal, *, writer: SpecWriter, path: str, actor: str) -> Committed:
    """The proposal's patch as a commit of the spec file `path` (git mode)."""
    assert proposal.patch is not None
    message = (f"Accept proposal {proposal.id}: {proposal.target.short} {proposal.canonical}\n\n"
               f"The spec takes {proposal.client or 'a client'}'s edit of {proposal.key}.\n\n"
               f"Proposal: {proposal.id}\nObject: {proposal.target.short}\nKey: {proposal.key}\n"
               f"Field: {proposal.canonical}\nAccepted-by: {actor}\n")
    try:
        return writer.commit(
            path=path, branch=f"reconciler/proposal-{proposal.id}", message=message,
            change=lambda text: _patched(proposal, text, source=f"{writer.watched}:{path}"))
    except ReconcilerError as exc:
        raise ProposalError(f"proposal {proposal.id} was not accepted: {exc}") from None
