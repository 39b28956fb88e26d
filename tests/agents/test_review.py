"""Reviewing Rovo Dev's hand edits under Adopt, as users do it: `plan`, `review`, `review accept`.

A Rovo Dev command item is one rule of the spec at one level (`{command: rm -rf( .*)?,
permission: deny}` is `permissions.deny: [Bash(rm -rf *)]`). A person who turns it into
`ask` in `config.yml` gets a proposal that moves that rule from `deny` to `ask` in the spec,
said to weaken it; `review accept` writes that move into the spec file and every client.
An accept whose patch would change nothing fails and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEY = "~/.rovodev/config.yml#/toolPermissions/bash/commands#Bash(rm -rf *)"
SPEC = """\
# the team's agents, reviewed by hand
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {name: ad}
spec:
  permissions:
    allow: ["Read"]
    deny: ["Bash(rm -rf *)"]   # never from an agent
  targets:
    - {client: claude-code, scope: user}
    - {client: rovo-dev, scope: user}
  conflictPolicy: {default: Adopt}
"""


@pytest.fixture
def cli(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "agents.yaml").write_text(SPEC)
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    env.pop("RECONCILER_PLUGINS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("apply", "specs").returncode == 0
    config = home / ".rovodev" / "config.yml"
    config.write_text(config.read_text().replace("permission: deny", "permission: ask"))
    return run


def pending(cli) -> list[dict]:
    listed = cli("review", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return [p for p in json.loads(listed.stdout) if p["status"] == "pending"]


def test_a_rovo_level_edit_is_proposed_as_moving_the_rule_and_accept_moves_it(cli, tmp_path: Path) -> None:
    plan = cli("plan", "specs")
    assert (f'? proposed spec patch for {KEY}: spec.permissions[Bash(rm -rf *)] = "ask" (moves '
            "Bash(rm -rf *) from deny to ask: this weakens a security rule of every client)") in plan.stdout
    assert cli("apply", "specs").returncode == 0  # records the proposal; the file stays as edited
    [proposal] = pending(cli)
    assert proposal["patch"] == {"permissions[Bash(rm -rf *)]": "ask"}

    accepted = cli("review", "accept", proposal["id"], "--specs", "specs")
    assert accepted.returncode == 0, accepted.stderr
    assert f"{proposal['id']}: accepted (spec patched: " in accepted.stdout
    assert (tmp_path / "specs" / "agents.yaml").read_text() == SPEC.replace(
        '    deny: ["Bash(rm -rf *)"]   # never from an agent\n', '    ask: ["Bash(rm -rf *)"]\n')
    claude = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())["permissions"]
    assert claude == {"allow": ["Read"], "ask": ["Bash(rm -rf *)"]}
    assert cli("plan", "--detailed-exitcode", "specs").returncode == 0
    assert pending(cli) == []


def test_accept_fails_and_changes_nothing_when_the_spec_already_says_it(cli, tmp_path: Path) -> None:
    assert cli("apply", "specs").returncode == 0
    [proposal] = pending(cli)
    spec = tmp_path / "specs" / "agents.yaml"
    spec.write_text(SPEC.replace("deny:", "ask:"))  # someone moved the rule by hand meanwhile
    accepted = cli("review", "accept", proposal["id"], "--specs", "specs")
    assert accepted.returncode == 1
    assert "changes nothing in the spec" in accepted.stderr and "accepted" not in accepted.stdout
    assert spec.read_text() == SPEC.replace("deny:", "ask:")
    assert [p["id"] for p in pending(cli)] == [proposal["id"]]


def test_last_write_wins_never_takes_a_weakening_on_its_own(cli, tmp_path: Path) -> None:
    spec, config = tmp_path / "specs" / "agents.yaml", tmp_path / "home" / ".rovodev" / "config.yml"
    spec.write_text(SPEC.replace("{default: Adopt}", "{default: last-write-wins}"))
    os.utime(spec, (1_000_000_000, 1_000_000_000))  # the spec is older than every edit below
    assert cli("apply", "specs").returncode == 0
    weakened = cli("apply", "specs")  # the file says ask (the fixture's edit): held, not taken
    assert weakened.returncode == 0, weakened.stderr
    assert "proposed: the edit weakens Bash(rm -rf *): deny → ask" in weakened.stdout
    assert spec.read_text() == SPEC.replace("{default: Adopt}", "{default: last-write-wins}")
    assert "permission: ask" in config.read_text()
    claude = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())["permissions"]
    assert claude["deny"] == ["Bash(rm -rf *)"]
    [proposal] = pending(cli)
    assert proposal["patch"] == {"permissions[Bash(rm -rf *)]": "ask"}


def test_rovo_items_of_the_user_are_proposed_one_rule_each(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".rovodev").mkdir(parents=True)
    (home / ".rovodev" / "config.yml").write_text(
        "toolPermissions:\n  bash:\n    commands:\n    - command: ls(\\s.*)?\n      permission: allow\n"
        "    - command: rm.*\n      permission: ask\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "agents.yaml").write_text(SPEC)
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    plan = subprocess.run([sys.executable, "-m", "reconciler.cli", "plan", "specs"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    listed = "~/.rovodev/config.yml#/toolPermissions/bash/commands"
    assert (f'? proposed spec patch for {listed}#Bash(ls *): spec.permissions[Bash(ls *)] = "allow" '
            "(adds Bash(ls *) to allow)") in plan.stdout
    assert (f"! {listed}: 'rm.*': no canonical rule matches exactly the same commands; not proposed "
            "for the spec") in plan.stdout
    assert "permissions.Bash" not in plan.stdout


def test_a_rule_level_patch_moves_the_rule_and_says_what_it_weakens() -> None:
    from reconciler.drivers.agents.specpatch import patched, weakened

    spec = {"permissions": {"allow": ["Read"], "deny": ["Bash(rm -rf *)", "Read(./.env)"]}}
    moved = patched(spec, [("permissions[Bash(rm -rf *)]", "ask")])
    assert moved == {"permissions": {"allow": ["Read"], "deny": ["Read(./.env)"], "ask": ["Bash(rm -rf *)"]}}
    dropped = patched(spec, [("permissions[Read]", None)])
    assert dropped["permissions"] == {"deny": spec["permissions"]["deny"]}
    assert weakened(spec["permissions"], [("permissions[Bash(rm -rf *)]", "ask")]) == [
        "Bash(rm -rf *): deny → ask"]
    assert weakened(spec["permissions"], [("permissions[Read]", "deny")]) == []
    assert weakened(spec["permissions"], [("permissions.deny", ["Read(./.env)"])]) == [
        "Bash(rm -rf *): deny → none"]


def test_a_looser_default_mode_is_a_weakening() -> None:
    """`defaultMode: default → bypassPermissions` turns every client's ask into allow (Codex
    `approval_policy = "never"`, Qwen `yolo`, Rovo `default: allow`): as weak as any rule."""
    from reconciler.drivers.agents.specpatch import weakened

    spec = {"allow": ["Read"], "defaultMode": "default"}
    assert weakened(spec, [("permissions.defaultMode", "bypassPermissions")]) == [
        "defaultMode: default → bypassPermissions"]
    assert weakened(spec, [("permissions.defaultMode", "acceptEdits")]) == [
        "defaultMode: default → acceptEdits"]
    assert weakened(spec, [("permissions.defaultMode", "plan")]) == []
    assert weakened({"defaultMode": "acceptEdits"}, [("permissions.defaultMode", "default")]) == []
    assert weakened({}, [("permissions.defaultMode", "bypassPermissions")]) == [
        "defaultMode: default → bypassPermissions"]  # no mode is the clients' default


def test_a_hand_set_bypass_mode_in_one_client_is_not_spread_by_last_write_wins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = specs / "a.yaml"
    spec.write_text(f"""\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  permissions: {{allow: [Read], deny: ["Bash(rm -rf *)"], defaultMode: default}}
  targets:
    - {{client: claude-code, scope: user, root: {home}}}
    - {{client: qwen-code, scope: user, root: {home}}}
  conflictPolicy: {{default: last-write-wins}}
""")
    os.utime(spec, (1_000_000_000, 1_000_000_000))
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("apply", "specs").returncode == 0
    settings = home / ".claude" / "settings.json"
    body = json.loads(settings.read_text())
    body["permissions"]["defaultMode"] = "bypassPermissions"
    settings.write_text(json.dumps(body, indent=2) + "\n")
    done = run("apply", "specs")
    assert done.returncode == 0, done.stderr
    assert "proposed: the edit weakens defaultMode: default → bypassPermissions" in done.stdout
    assert "yolo" not in (home / ".qwen" / "settings.json").read_text()
    assert "defaultMode: default" in spec.read_text()


# --- a proposal against a spec that changed since (trials t14-held, t1-manual) ---------------

HELD = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers:
    github: {{command: npx, args: ["-y", "server-github"]}}
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: qwen-code, scope: project, root: {root}}}
  conflictPolicy:
    default: manual-review
"""


@pytest.fixture
def held(tmp_path: Path):
    """manual-review, Claude and Qwen at project scope, the first apply done."""
    root, specs = tmp_path / "p", tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(HELD.format(root=root))
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    env.pop("RECONCILER_PLUGINS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("apply", "specs").returncode == 0
    return run, root, specs / "a.yaml"


def spec_args(spec: Path) -> list[str]:
    import yaml

    return yaml.safe_load(spec.read_text())["spec"]["mcpServers"]["github"]["args"]


def edit_args(file: Path, args: list[str]) -> None:
    data = json.loads(file.read_text())
    data["mcpServers"]["github"]["args"] = args
    file.write_text(json.dumps(data, indent=2) + "\n")


def test_accept_is_refused_when_the_spec_field_changed_since_the_proposal_was_made(held) -> None:
    run, root, spec = held
    edit_args(root / ".mcp.json", ["-y", "server-github", "--hand"])
    assert run("apply", "specs").returncode == 0
    [proposal] = pending(run)
    assert proposal["specValue"]["args"] == ["-y", "server-github"]
    changed = spec.read_text().replace('"server-github"]', '"server-github", "--spec"]')
    spec.write_text(changed)  # a person changes the same field of the spec meanwhile

    refused = run("review", "accept", proposal["id"], "--specs", "specs")
    assert refused.returncode == 1, refused.stdout
    assert "mcpServers.github changed since the proposal was made" in refused.stderr, refused.stderr
    assert "accepted" not in refused.stdout
    assert spec.read_text() == changed
    assert [p["id"] for p in pending(run)] == [proposal["id"]]

    # A run plans again: the proposal shows the spec as it is now, and can then be accepted.
    assert run("apply", "specs").returncode == 0
    [again] = pending(run)
    assert again["id"] == proposal["id"]
    assert again["specValue"]["args"] == ["-y", "server-github", "--spec"]
    accepted = run("review", "accept", again["id"], "--specs", "specs")
    assert accepted.returncode == 0, accepted.stderr
    assert spec_args(spec) == ["-y", "server-github", "--hand"]


def test_of_two_competing_proposals_the_second_is_refused_once_the_first_changed_the_field(held) -> None:
    run, root, spec = held
    edit_args(root / ".mcp.json", ["-y", "server-github", "--claude"])
    edit_args(root / ".qwen/settings.json", ["-y", "server-github", "--qwen"])
    assert run("apply", "specs").returncode == 0
    by_client = {p["client"]: p for p in pending(run)}
    assert set(by_client) == {"claude-code", "qwen-code"}

    both = run("review", "accept", by_client["claude-code"]["id"], by_client["qwen-code"]["id"],
               "--specs", "specs")
    assert both.returncode == 1
    assert f"{by_client['claude-code']['id']}: accepted" in both.stdout
    assert "mcpServers.github changed since the proposal was made" in both.stderr, both.stderr
    assert spec_args(spec) == ["-y", "server-github", "--claude"]
    # Claude's accepted edit reached the clients; Qwen's proposal, seen again by that run,
    # shows the spec as it is now.
    assert json.loads((root / ".mcp.json").read_text())["mcpServers"]["github"]["args"][-1] == "--claude"
    [left] = pending(run)
    assert left["id"] == by_client["qwen-code"]["id"]
    assert left["specValue"]["args"] == ["-y", "server-github", "--claude"]
