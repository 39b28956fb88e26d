"""Per-key decisions: sync, spec change, drift, conflict, prune, under every policy."""

from __future__ import annotations

import pytest

from reconciler.drivers.agents.documents import MISSING
from reconciler.drivers.agents.ownership import State, decide, merged
from reconciler.models.agents import ConflictPolicy as P

SERVER = {"command": "npx", "args": ["-y", "gh"]}
EDITED = {"command": "bunx", "args": ["-y", "gh"]}
NEW_SPEC = {"command": "npx", "args": ["-y", "gh", "--v2"]}


def test_in_sync_ignores_key_order_and_client_sub_paths() -> None:
    actual = {"args": ["-y", "gh"], "command": "npx", "tools": {"t": {"approval_mode": "approve"}}}
    d = decide(SERVER, actual, SERVER, owned=True, policy=P.OVERRIDE, preserve=(("tools",),))
    assert d.state is State.IN_SYNC and not d.write


def test_new_key_is_created() -> None:
    d = decide(SERVER, MISSING, MISSING, owned=False, policy=P.OVERRIDE)
    assert (d.state, d.write, d.value) == (State.NEW, True, SERVER)


def test_spec_change_is_written_under_every_policy_but_if_not_present() -> None:
    for policy in (P.OVERRIDE, P.MERGE, P.IGNORE, P.ADOPT):
        d = decide(NEW_SPEC, SERVER, SERVER, owned=True, policy=policy)
        assert (d.state, d.write, d.value) == (State.SPEC_CHANGED, True, NEW_SPEC), policy
    d = decide(NEW_SPEC, SERVER, SERVER, owned=True, policy=P.IF_NOT_PRESENT)
    assert not d.write


@pytest.mark.parametrize(
    ("policy", "write", "held"),
    [(P.OVERRIDE, True, False), (P.MERGE, True, False), (P.IF_NOT_PRESENT, False, False),
     (P.IGNORE, False, False), (P.ADOPT, False, True)],
)
def test_hand_edit_is_drift_and_handled_per_policy(policy: P, write: bool, held: bool) -> None:
    d = decide(SERVER, EDITED, SERVER, owned=True, policy=policy)
    assert d.state is State.DRIFT and d.drifted
    assert (d.write, d.held) == (write, held)
    if write:
        assert d.value == SERVER


def test_both_changed_is_a_conflict() -> None:
    d = decide(NEW_SPEC, EDITED, SERVER, owned=True, policy=P.OVERRIDE)
    assert d.state is State.CONFLICT and d.write and d.value == NEW_SPEC


def test_merge_keeps_fields_others_added_and_override_removes_them() -> None:
    actual = {**SERVER, "timeout": 5, "tools": {"x": {"approval_mode": "auto"}}}
    merge = decide(SERVER, actual, SERVER, owned=True, policy=P.MERGE)
    assert merge.state is State.IN_SYNC
    override = decide(SERVER, actual, SERVER, owned=True, policy=P.OVERRIDE, preserve=(("tools",),))
    assert override.state is State.DRIFT
    assert override.value == {**SERVER, "tools": {"x": {"approval_mode": "auto"}}}


def test_a_list_inside_an_owned_value_is_replaced_whole_even_under_merge() -> None:
    # An MCP server's args merged with its old args would be another command.
    old = {"command": "npx", "args": ["-y", "server@1"]}
    new = {"command": "npx", "args": ["-y", "server@2"]}
    assert merged(old, new, P.MERGE) == new
    assert merged(["Read", "Bash(ls)"], ["Read", "Edit"], P.OVERRIDE) == ["Read", "Edit"]
    d = decide(new, old, old, owned=True, policy=P.MERGE)
    assert d.state is State.SPEC_CHANGED and d.value == new


def test_set_sublists_keep_the_items_others_added_under_every_policy() -> None:
    sets = (("disabled_tools",),)
    last = {"command": "x", "disabled_tools": ["a"]}
    actual = {"command": "x", "disabled_tools": ["a", "mine"]}
    desired = {"command": "x", "disabled_tools": ["b"]}
    for policy in (P.OVERRIDE, P.MERGE):
        d = decide(desired, actual, last, owned=True, policy=policy, sets=sets)
        assert d.write and d.value["disabled_tools"] == ["mine", "b"]  # 'a' was ours: removed
    # An item someone added to an owned set is not drift.
    assert decide(last, actual, last, owned=True, policy=P.OVERRIDE, sets=sets).state is State.IN_SYNC


def test_hand_deleted_key_is_drift() -> None:
    d = decide(SERVER, MISSING, SERVER, owned=True, policy=P.OVERRIDE)
    assert d.state is State.DRIFT and d.write


def test_foreign_value_is_taken_over_only_by_writing_policies() -> None:
    assert decide(SERVER, EDITED, MISSING, owned=False, policy=P.OVERRIDE).write
    assert not decide(SERVER, EDITED, MISSING, owned=False, policy=P.IF_NOT_PRESENT).write
    adopt = decide(SERVER, EDITED, MISSING, owned=False, policy=P.ADOPT)
    assert adopt.state is State.TAKEOVER and adopt.held


def test_prune_deletes_owned_keys_with_their_client_sub_paths() -> None:
    d = decide(MISSING, SERVER, SERVER, owned=True, policy=P.OVERRIDE)
    assert (d.state, d.write, d.value) == (State.PRUNE, True, MISSING)
    with_tools = {**SERVER, "tools": {"t": {"approval_mode": "approve"}}}
    d = decide(MISSING, with_tools, SERVER, owned=True, policy=P.OVERRIDE, preserve=(("tools",),))
    assert d.value is MISSING
    assert not decide(MISSING, SERVER, SERVER, owned=False, policy=P.OVERRIDE).write
    ignored = decide(MISSING, EDITED, SERVER, owned=True, policy=P.IGNORE)
    assert not ignored.write and ignored.release


def test_yaml_documents_keep_their_own_indentation() -> None:
    from reconciler.drivers.agents.documents import YamlDocument

    text = "agent:\n    modelId: x   # mine\n    list:\n    - a\ntoolPermissions:\n    default: ask\n"
    doc = YamlDocument(text, "config.yml")
    doc.set(("toolPermissions", "tools", "grep"), "allow")
    out = doc.render()
    assert out is not None
    assert out.startswith("agent:\n    modelId: x   # mine\n    list:\n    - a\n")
    assert "\n    tools:\n        grep: allow\n" in out
