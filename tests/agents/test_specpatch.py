"""Spec write-back: an accepted edit changes the bytes of the patched field in the spec file
and no other byte (comments, quotes, flow style, document markers, other documents)."""

from __future__ import annotations

import pytest

from reconciler.drivers.agents.specpatch import PatchError, patch_text
from reconciler.models.common import ObjectRef

TEAM = ObjectRef("AgentConfig", "default", "team")

COMMENTED = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  permissions:
    allow:
      # reviewed by security 2026-11
      - Read          # read-only is fine
      - "Bash(git status)"   # harmless
    deny:
      - Bash(rm -rf *)  # never
  targets:
    - {client: claude-code, scope: project, root: /p}
  conflictPolicy:
    default: manual-review
"""

# Two objects in one file, with flow collections of every kind.
TWO = """\
# Multi-doc spec
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github:
      command: npx
      args: ["-y", "server-github"]
    docs: {url: "https://docs.example.com/mcp", transport: http}  # flow map
  permissions:
    allow:
      - Read   # read is fine
      - "Bash(git status)"
    deny: ['Bash(rm -rf *)']
  targets:
    - {client: claude-code, scope: project, root: /p}
---
# second object, must be untouched
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: other
spec:
  mcpServers:
    x: {command: xcmd}
  targets:
    - {client: claude-code, scope: project, root: /q}
"""


def test_an_added_allow_rule_is_the_only_change_comments_and_quotes_stay() -> None:
    allow = ["Read", "Bash(git status)", "Bash(ls *)"]
    out = patch_text(COMMENTED, TEAM, [("permissions.allow", allow)], source="a.yaml")
    assert out == COMMENTED.replace('"Bash(git status)"   # harmless\n',
                                    '"Bash(git status)"   # harmless\n      - Bash(ls *)\n')


def test_a_multi_document_file_keeps_its_markers_and_the_other_object_its_bytes() -> None:
    allow = ["Read", "Bash(git status)", "Bash(ls *)"]
    out = patch_text(TWO, TEAM, [("permissions.allow", allow)], source="a.yaml")
    assert out == TWO.replace('      - "Bash(git status)"\n',
                              '      - "Bash(git status)"\n      - Bash(ls *)\n')


def test_the_second_object_of_a_file_is_patched_in_place() -> None:
    other = ObjectRef("AgentConfig", "default", "other")
    out = patch_text(TWO, other, [("mcpServers.x", {"command": "ycmd"})], source="a.yaml")
    assert out == TWO.replace("x: {command: xcmd}", "x: {command: ycmd}")


def test_a_flow_list_stays_a_flow_list_its_new_item_quoted_like_the_others() -> None:
    server = {"command": "npx", "args": ["-y", "server-github", "--write"]}
    out = patch_text(TWO, TEAM, [("mcpServers.github", server)], source="a.yaml")
    assert out == TWO.replace('args: ["-y", "server-github"]', 'args: ["-y", "server-github", "--write"]')


def test_a_flow_map_patch_keeps_the_keys_the_client_leaves_out_and_the_quotes() -> None:
    """Claude's `.mcp.json` reads back without `transport: http` (the default for a URL):
    the spec keeps it, and only the URL's bytes change."""
    docs = {"url": "https://docs.example.org/mcp"}
    out = patch_text(TWO, TEAM, [("mcpServers.docs", docs)], source="a.yaml")
    assert out == TWO.replace("docs.example.com", "docs.example.org")


def test_a_rule_moved_to_a_new_level_takes_the_place_and_style_of_the_list_it_left() -> None:
    text = COMMENTED.replace("    deny:\n      - Bash(rm -rf *)  # never\n",
                             '    deny: ["Bash(rm -rf *)"]  # never\n    defaultMode: default\n')
    out = patch_text(text, TEAM, [("permissions[Bash(rm -rf *)]", "ask")], source="a.yaml")
    assert out == text.replace('    deny: ["Bash(rm -rf *)"]  # never\n', '    ask: ["Bash(rm -rf *)"]\n')


def test_a_patch_that_changes_nothing_is_refused() -> None:
    with pytest.raises(PatchError, match="changes nothing"):
        patch_text(COMMENTED, TEAM, [("permissions.allow", ["Read", "Bash(git status)"])], source="a.yaml",
                   must_change=True)


def test_crlf_lines_stay_crlf() -> None:
    text = COMMENTED.replace("\n", "\r\n")
    allow = ["Read", "Bash(git status)", "Bash(ls *)"]
    out = patch_text(text, TEAM, [("permissions.allow", allow)], source="a.yaml")
    assert out == text.replace('"Bash(git status)"   # harmless\r\n',
                               '"Bash(git status)"   # harmless\r\n      - Bash(ls *)\r\n')


ALIASED = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github: &gh
      command: npx
      args: ["-y", "server-github"]
    github-readonly: *gh
  targets:
    - {client: claude-code, scope: project, root: /p}
"""


def test_a_patch_inside_an_anchored_value_is_refused_naming_the_anchor_and_its_alias() -> None:
    server = {"command": "npx", "args": ["-y", "server-github", "--write"]}
    with pytest.raises(PatchError) as refused:
        patch_text(ALIASED, TEAM, [("mcpServers.github", server)], source="a.yaml")
    assert str(refused.value) == (
        "a.yaml:7:5: spec.mcpServers.github holds the anchor &gh, which spec.mcpServers.github-readonly "
        "also uses (as *gh); editing it would change that too: edit the file by hand (write the shared "
        "value out at each place); nothing was written")


def test_a_patch_of_an_alias_writes_the_value_out_there_and_leaves_the_anchor() -> None:
    server = {"command": "npx", "args": ["-y", "server-github", "--read-only"]}
    out = patch_text(ALIASED, TEAM, [("mcpServers.github-readonly", server)], source="a.yaml")
    assert out == ALIASED.replace("    github-readonly: *gh\n", """\
    github-readonly:
      command: npx
      args: ["-y", "server-github", "--read-only"]
""")
