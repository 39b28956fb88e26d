"""Hand edits of Claude Code's permission lists under last-write-wins, through the CLI.

Claude Code and Qwen Code keep a rule's level as the list it sits in (`permissions.ask`,
`permissions.allow`). A person who moves `Bash(git push *)` from `ask` to `allow` in Claude's
`settings.json` made one edit: the rule's level. It is one decision of the strategy, never
half of it: proposed as that rule's move (it weakens the rule), or, where the path allows
weakening, taken whole into the spec and every client. A rule added by hand that the spec
wins over cannot be written over (items others add to a list are never removed): it is
proposed, not "imposed" forever. The messages name the policy in force, the plan converges
once the edit is resolved, and `review` says what happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

RULE = "Bash(git push *)"
SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  permissions:
    allow: ["Read"]
    ask: ["Bash(git push *)"]
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: qwen-code, scope: project, root: {root}}}
  conflictPolicy:
    default: last-write-wins
{extra}"""
MOVED = """\
{
  "permissions": {
    "allow": [
      "Read",
      "Bash(git push *)"
    ],
    "ask": []
  }
}
"""
Run = Callable[..., subprocess.CompletedProcess[str]]


def world(tmp_path: Path, extra: str = "") -> tuple[Path, Path, Run]:
    """The spec applied once (the spec file older than any edit), then the rule moved in Claude."""
    root = tmp_path / "proj"
    root.mkdir()
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "a.yaml"
    spec.write_text(SPEC.format(root=root, extra=extra))
    os.utime(spec, (1_000_000_000, 1_000_000_000))
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("apply", "specs").returncode == 0
    (root / ".claude" / "settings.json").write_text(MOVED)
    return root, spec, run


def permissions(root: Path, client: str) -> dict[str, list[str]]:
    return dict(json.loads((root / f".{client}" / "settings.json").read_text())["permissions"])


def proposals(run: Run) -> list[dict[str, object]]:
    listed = run("review", "--status", "all", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_a_weakening_move_is_one_proposal_of_the_rules_level_and_accept_converges(tmp_path: Path) -> None:
    root, spec, run = world(tmp_path)
    applied = run("apply", "specs")
    assert applied.returncode == 0, applied.stderr
    assert "policy Adopt" not in applied.stdout
    assert (f"last-write-wins: {root}/.claude/settings.json#/permissions/ask#{RULE}: proposed: the edit "
            f"weakens {RULE}: ask → allow") in applied.stdout
    assert spec.read_text() == SPEC.format(root=root, extra="")  # nothing taken on its own
    assert permissions(root, "qwen") == {"allow": ["Read"], "ask": [RULE]}
    assert run("plan", "--detailed-exitcode", "specs").returncode == 2
    [proposal] = proposals(run)
    assert proposal["status"] == "pending" and proposal["patch"] == {f"permissions[{RULE}]": "allow"}

    accepted = run("review", "accept", str(proposal["id"]), "--specs", "specs")
    assert accepted.returncode == 0, accepted.stderr
    assert 'allow: ["Read", "Bash(git push *)"]' in spec.read_text() and "ask:" not in spec.read_text()
    assert permissions(root, "qwen") == {"allow": ["Read", RULE]}
    assert permissions(root, "claude") == {"allow": ["Read", RULE], "ask": []}
    assert run("plan", "--detailed-exitcode", "specs").returncode == 0
    assert [p["status"] for p in proposals(run)] == ["accepted"]


def test_a_move_the_path_allows_is_taken_whole_in_one_run(tmp_path: Path) -> None:
    extra = "    paths:\n      - {path: /permissions, allowWeakening: true}\n"
    root, spec, run = world(tmp_path, extra)
    applied = run("apply", "specs")
    assert applied.returncode == 0, applied.stderr
    key = f"{root}/.claude/settings.json#/permissions/ask#{RULE}"
    assert f"last-write-wins: {key}: accepted" in applied.stdout
    assert "policy Adopt" not in applied.stdout
    assert 'allow: ["Read", "Bash(git push *)"]' in spec.read_text() and "ask:" not in spec.read_text()
    assert permissions(root, "qwen") == {"allow": ["Read", RULE]}
    assert permissions(root, "claude") == {"allow": ["Read", RULE], "ask": []}
    again = run("plan", "--detailed-exitcode", "specs")
    assert again.returncode == 0, again.stdout
    assert [(p["status"], p["patch"]) for p in proposals(run)] == [
        ("accepted", {f"permissions[{RULE}]": "allow"})]


def test_a_rejected_move_gives_the_rule_its_level_back_and_converges(tmp_path: Path) -> None:
    root, _, run = world(tmp_path)
    assert run("apply", "specs").returncode == 0
    [proposal] = proposals(run)
    rejected = run("review", "reject", str(proposal["id"]), "--specs", "specs")
    assert rejected.returncode == 0, rejected.stderr
    assert permissions(root, "claude")["ask"] == [RULE]  # the user's allow item stays theirs
    assert run("plan", "--detailed-exitcode", "specs").returncode == 0
    assert [p["status"] for p in proposals(run)] == ["rejected"]


def test_a_move_older_than_the_spec_is_imposed_and_review_says_so(tmp_path: Path) -> None:
    root, _, run = world(tmp_path)
    claude = root / ".claude" / "settings.json"
    claude.write_text(json.dumps({"permissions": {"allow": [], "ask": [RULE, "Read"]}}, indent=2) + "\n")
    os.utime(claude, (1_000_000_000, 1_000_000_000))  # as old as the spec: a tie goes to the spec
    applied = run("apply", "specs")
    assert applied.returncode == 0, applied.stderr
    assert (f"last-write-wins: {root}/.claude/settings.json#/permissions/allow#Read: imposed: the spec "
            "changed after the file") in applied.stdout
    assert permissions(root, "claude") == {"allow": ["Read"], "ask": [RULE, "Read"]}
    assert "policy Adopt" not in applied.stdout
    assert run("plan", "--detailed-exitcode", "specs").returncode == 0
    assert [(p["status"], p["outcome"]) for p in proposals(run)] == [("rejected", "imposed")]


def test_a_rule_added_before_the_spec_changed_is_proposed_and_a_reject_converges(tmp_path: Path) -> None:
    root, _, run = world(tmp_path)
    claude = root / ".claude" / "settings.json"
    claude.write_text(json.dumps({"permissions": {"allow": ["Read", "Bash(ls *)"], "ask": [RULE]}}) + "\n")
    os.utime(claude, (1_000_000_000, 1_000_000_000))  # as old as the spec: the spec wins
    applied = run("apply", "specs")
    assert applied.returncode == 0, applied.stderr
    assert (f"last-write-wins: {root}/.claude/settings.json#/permissions/allow: proposed: the spec changed "
            "after the file (or at the same time), but items others add to a list are never removed") \
        in applied.stdout
    assert "written over" not in applied.stdout
    [proposal] = proposals(run)
    assert proposal["status"] == "pending"
    assert run("review", "reject", str(proposal["id"]), "--specs", "specs").returncode == 0
    assert permissions(root, "claude")["allow"] == ["Read", "Bash(ls *)"]
    assert run("plan", "--detailed-exitcode", "specs").returncode == 0
    assert [p["status"] for p in proposals(run)] == ["rejected"]
