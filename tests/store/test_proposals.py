"""Proposals in the store: one row per (object, key, file value) across runs."""

from __future__ import annotations

from pathlib import Path

from reconciler.models.common import ObjectRef
from reconciler.store import Store
from reconciler.store.proposals import PENDING, ProposalBook

TEAM = ObjectRef("AgentConfig", "default", "team")
KEY = "/p/CLAUDE.md#block"


def test_a_pending_proposal_takes_the_patch_the_latest_run_reads_from_the_same_edit(tmp_path: Path) -> None:
    """A run of a newer reconciler (or against a changed spec) may read the same edit into
    another patch: accept then writes that one, not the patch of the run that first saw it."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        book = ProposalBook(store.engine)
        held = {"canonical": "rules", "file": "## house-style\n\nnew\n", "spec": "## house-style\n\nold\n",
                "proposed": [{"name": "house-style", "content": "new\n"}], "client": "claude-code",
                "policy": "manual-review"}
        [first] = book.observe(TEAM, "run-1", {KEY: held})
        now = {**held, "canonical": "rules[house-style].content", "proposed": "new\n"}
        assert book.observe(TEAM, "run-2", {KEY: now}) == [first]
        proposal = book.get(first)
        assert proposal is not None and proposal.status == PENDING
        assert (proposal.canonical, proposal.patch) == ("rules[house-style].content",
                                                        {"rules[house-style].content": "new\n"})
    finally:
        store.close()
