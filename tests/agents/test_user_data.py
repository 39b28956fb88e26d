"""Never lose or weaken what a user wrote: list items, security rules, shapes, hand edits.

Each test reproduces one finding of trying the driver on real files (issue 14): permission
lists owned whole, weakening deny rules, silent reverts and takeovers, `Merge` merging a
server's `args`, malformed-but-parseable files edited, temporary files left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.conftest import Runner, agent_config, tree
from reconciler.engine import conditions
from reconciler.structs.runs import Outcome

REPO = Path(__file__).parents[2]
USER_DENY = [
    "Bash(sudo:*)", "Bash(su:*)", "Bash(rm -rf /*)", "Bash(rm -rf ~*)", "Bash(chmod 777:*)",
    "Bash(curl:*)", "Bash(wget:*)", "Bash(nc:*)", "Bash(ssh:*)", "Bash(scp:*)", "Bash(dd:*)",
    "Bash(mkfs:*)", "Bash(shutdown:*)", "Bash(reboot:*)", "Bash(git push --force:*)",
    "Bash(git reset --hard:*)", "Bash(npm publish:*)", "Bash(docker run --privileged:*)",
    "Read(~/.ssh/**)", "Read(~/.aws/**)", "Read(~/.gnupg/**)", "Read(~/.config/gh/**)",
    "Read(**/.env)", "Read(**/.env.*)", "Read(**/*.pem)", "Read(**/*.key)", "Read(**/id_rsa*)",
    "Read(**/secrets/**)", "Read(~/.netrc)", "Read(~/.docker/config.json)", "Read(~/.kube/**)",
    "Edit(~/.bashrc)", "Edit(~/.zshrc)", "Edit(~/.ssh/**)", "Edit(**/.git/hooks/**)",
    "Edit(/etc/**)", "WebFetch(domain:*.onion)", "WebFetch(domain:pastebin.com)",
    "mcp__filesystem__write_file", "mcp__github__delete_repository", "Bash(crontab:*)",
    "Bash(launchctl:*)", "Bash(eval:*)",
]
SETTINGS = {
    "model": "opus",
    "env": {"DISABLE_TELEMETRY": "1"},
    "permissions": {
        "allow": ["Bash(make test)", "Bash(git diff:*)", "Read(src/**)"],
        "ask": ["Bash(git commit:*)"],
        "deny": USER_DENY,
        "additionalDirectories": ["../shared"],
        "defaultMode": "default",
    },
    "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit"}]}]},
}


def spec(home: Path, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mcpServers": {"github": {"command": "npx", "args": ["-y", "server-github@1"]}},
        "permissions": {"allow": ["Read", "Bash(npm run test *)"], "ask": ["Bash(git push *)"],
                        "deny": ["Read(./.env)", "Bash(rm -rf *)", "Bash(sudo:*)"]},
        "targets": [{"client": "claude-code", "scope": "user", "root": str(home)}],
    }
    body.update(extra)
    return body


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps(SETTINGS, indent=2) + "\n")
    return home


def settings(home: Path) -> dict[str, Any]:
    return json.loads((home / ".claude" / "settings.json").read_text())


@pytest.mark.parametrize("policy", ["Override", "Merge", "IfNotPresent", "Ignore", "Adopt"])
def test_every_foreign_deny_rule_survives_every_policy(runner: Runner, home: Path, policy: str) -> None:
    obj = agent_config(spec(home, conflictPolicy={"default": policy}))
    result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    perms = settings(home)["permissions"]
    assert perms["deny"][: len(USER_DENY)] == USER_DENY  # kept, in place, in order
    assert perms["deny"][len(USER_DENY):] == ["Read(./.env)", "Bash(rm -rf *)"]  # sudo: theirs already
    assert perms["allow"] == [*SETTINGS["permissions"]["allow"], "Read", "Bash(npm run test *)"]
    assert perms["additionalDirectories"] == ["../shared"] and perms["defaultMode"] == "default"
    before = tree(home)
    assert runner(obj).outcome is Outcome.NOOP
    assert tree(home) == before


def test_dropping_a_rule_from_the_spec_removes_only_an_item_the_reconciler_added(
        runner: Runner, home: Path) -> None:
    runner(agent_config(spec(home)))
    body = spec(home)
    body["permissions"]["deny"] = ["Read(./.env)"]  # drops 'Bash(rm -rf *)' (ours), 'Bash(sudo:*)' (theirs)
    result = runner(agent_config(body))
    assert result.outcome is Outcome.SUCCEEDED
    deny = settings(home)["permissions"]["deny"]
    assert deny == [*USER_DENY, "Read(./.env)"]
    assert "Bash(sudo:*)" in deny


def test_removing_every_rule_leaves_the_users_lists_as_they_were(runner: Runner, home: Path) -> None:
    before = (home / ".claude" / "settings.json").read_text()
    runner(agent_config(spec(home)))
    body = spec(home)
    body["permissions"] = {}
    runner(agent_config(body))
    assert (home / ".claude" / "settings.json").read_text() == before


def test_authority_full_takes_the_list_over_but_never_weakens_silently(runner: Runner, home: Path) -> None:
    full = {"paths": [{"path": "/permissions/deny", "authority": "Full"}]}
    result = runner(agent_config(spec(home, conflictPolicy=full)))
    assert result.outcome is Outcome.ABORTED and result.error is not None
    assert "weaken" in result.error and "Bash(curl:*)" in result.error
    assert settings(home) == SETTINGS  # nothing written
    planned = runner(agent_config(spec(home, conflictPolicy=full)), dry_run=True)
    assert planned.plan is not None and len(planned.plan.weakens) == len(USER_DENY) - 1
    allowed = {"paths": [{"path": "/permissions/deny", "authority": "Full", "allowWeakening": True}]}
    result = runner(agent_config(spec(home, conflictPolicy=allowed)))
    assert result.outcome is Outcome.SUCCEEDED
    assert settings(home)["permissions"]["deny"] == ["Bash(sudo:*)", "Read(./.env)", "Bash(rm -rf *)"]
    assert result.plan is not None and len(result.plan.takeovers) == len(USER_DENY) - 1


def test_authority_full_on_an_allow_list_is_not_a_weakening(runner: Runner, home: Path) -> None:
    full = {"paths": [{"path": "/permissions/allow", "authority": "Full"}]}
    result = runner(agent_config(spec(home, conflictPolicy=full)))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert settings(home)["permissions"]["allow"] == ["Read", "Bash(npm run test *)"]
    assert settings(home)["permissions"]["deny"][: len(USER_DENY)] == USER_DENY


def test_a_reverted_hand_edit_is_recorded_announced_and_marks_the_run_drifted(
        runner: Runner, home: Path) -> None:
    obj = agent_config(spec(home))
    runner(obj)
    claude = home / ".claude.json"
    claude.write_text(claude.read_text().replace("server-github@1", "server-github@0"))
    result = runner(obj)
    key = f"{home}/.claude.json#/mcpServers/github"
    assert result.outcome is Outcome.SUCCEEDED and result.reverted == (key,) and result.drift == ()
    assert "server-github@1" in claude.read_text()
    drifted = conditions.get(conditions.from_result((), result), conditions.DRIFTED)
    assert drifted is not None and drifted.status.value == "True" and drifted.reason == "Reverted"
    events = [e for e in runner.store.events(obj.ref) if e["run_id"] == result.run_id]
    drift_events = [e for e in events if e["reason"] == "DriftDetected"]
    assert len(drift_events) == 1 and drift_events[0]["data"]["reverted"] == [key]
    # The next run has nothing to revert: the condition goes.
    quiet = runner(obj)
    assert quiet.outcome is Outcome.NOOP
    assert conditions.get(conditions.from_result(conditions.from_result((), result), quiet),
                          conditions.DRIFTED) is None


def test_a_foreign_server_of_the_same_name_is_a_takeover_line(runner: Runner, home: Path) -> None:
    (home / ".claude.json").write_text(json.dumps(
        {"mcpServers": {"github": {"command": "docker", "args": ["run", "ghcr.io/github/mcp"]}}}))
    planned = runner(agent_config(spec(home)), dry_run=True)
    key = f"{home}/.claude.json#/mcpServers/github"
    assert planned.plan is not None and planned.plan.takeovers == (key,)
    assert planned.plan.details["states"][key] == "takeover"


@pytest.mark.parametrize(("client", "path", "text"), [
    ("claude-code", ".claude.json", '{\n  "mcpServers": {\n'
                                    '    "github": {"command": "docker", "args": ["run"]},\n'
                                    '    "mine": {"command": "mine-mcp"}\n  }\n}\n'),
    ("gemini-cli", ".gemini/settings.json", '{\n  "mcpServers": {\n    "github": {"command": "docker"},\n'
                                            '    "mine": {"command": "mine-mcp"}\n  }\n}\n'),
    ("codex", ".codex/config.toml", '[mcp_servers.github]\ncommand = "docker"\nargs = ["run"]\n\n'
                                    '[mcp_servers.mine]\ncommand = "mine-mcp"\n'),
])
def test_a_server_taken_over_and_then_dropped_from_the_spec_leaves_no_empty_shell(
        runner: Runner, tmp_path: Path, client: str, path: str, text: str) -> None:
    """The server the reconciler took over (with a warning) is its own: dropping it from the
    spec removes the entry whole. It used to leave `"github": {}` (or a bare
    `[mcp_servers.github]`), which no client accepts as a server."""
    import tomllib

    home = tmp_path / "home"
    (home / path).parent.mkdir(parents=True)
    (home / path).write_text(text)
    target = [{"client": client, "scope": "user", "root": str(home)}]
    taken = runner(agent_config({"mcpServers": {"github": {"command": "npx", "args": ["gh"]},
                                                "other": {"command": "o"}}, "targets": target}))
    assert taken.outcome is Outcome.SUCCEEDED, taken.error
    dropped = runner(agent_config({"mcpServers": {"other": {"command": "o"}}, "targets": target}))
    assert dropped.outcome is Outcome.SUCCEEDED, dropped.error
    after = (home / path).read_text()
    parsed = tomllib.loads(after) if path.endswith(".toml") else json.loads(after)
    servers = parsed["mcp_servers" if client == "codex" else "mcpServers"]
    assert list(servers) == ["mine", "other"], after
    assert runner(agent_config({"mcpServers": {"other": {"command": "o"}}, "targets": target})).outcome \
        is Outcome.NOOP


def test_a_value_the_user_already_had_stays_theirs(runner: Runner, home: Path) -> None:
    """A key that already held the spec's value is not recorded as the reconciler's: taking it
    out of the spec later never deletes the user's own key."""
    (home / ".claude.json").write_text(json.dumps(
        {"mcpServers": {"github": {"command": "npx", "args": ["-y", "server-github@1"]}}}, indent=2))
    runner(agent_config(spec(home)))
    body = spec(home)
    body["mcpServers"] = {}
    runner(agent_config(body))
    assert "github" in json.loads((home / ".claude.json").read_text())["mcpServers"]


def test_adopt_is_pending_while_the_file_holds_something_else(runner: Runner, home: Path) -> None:
    (home / ".claude.json").write_text(json.dumps(
        {"mcpServers": {"github": {"command": "docker", "args": ["run", "ghcr.io/github/mcp"]}}}))
    obj = agent_config(spec(home, conflictPolicy={"default": "Adopt"}))
    result = runner(obj)
    key = f"{home}/.claude.json#/mcpServers/github"
    assert result.outcome is Outcome.SUCCEEDED  # the permission items were written
    assert result.plan is not None and result.plan.pending == (key,)
    again = runner(obj, dry_run=True)
    assert again.plan is not None and not again.plan.has_changes and not again.plan.in_sync


def test_refuse_drift_stops_instead_of_reverting(runner: Runner, home: Path) -> None:
    from reconciler.engine.guards import RefuseDrift

    obj = agent_config(spec(home))
    runner(obj)
    claude = home / ".claude.json"
    claude.write_text(claude.read_text().replace("server-github@1", "server-github@0"))
    before = tree(home)
    result = runner(obj, guards=(RefuseDrift(),))
    assert result.outcome is Outcome.ABORTED and result.error is not None
    assert "would be reverted" in result.error
    assert tree(home) == before


def test_merge_replaces_a_servers_args_whole(runner: Runner, tmp_path: Path) -> None:
    root = tmp_path / "home"
    body = {"mcpServers": {"github": {"command": "npx", "args": ["-y", "server-github@1"]}},
            "targets": [{"client": "codex", "scope": "user", "root": str(root)}],
            "conflictPolicy": {"default": "Merge"}}
    runner(agent_config(body))
    body["mcpServers"]["github"]["args"] = ["-y", "server-github@2"]
    result = runner(agent_config(body))
    assert result.outcome is Outcome.SUCCEEDED
    text = (root / ".codex" / "config.toml").read_text()
    assert 'args = ["-y", "server-github@2"]' in text and "@1" not in text
    planned = runner(agent_config(body), dry_run=True)
    assert planned.plan is not None and planned.plan.in_sync


@pytest.mark.parametrize(("relative", "text", "where", "expected"), [
    (".codex/config.toml", 'model = "o3"\nmcp_servers = "oops"\n', ":2:1", "an object"),
    (".claude.json", '{\n  "numStartups": 3,\n  "mcpServers": []\n}\n', ":3:", "an object"),
    (".claude/settings.json", '{\n  "permissions": {\n    "deny": "Bash(rm:*)"\n  }\n}\n', ":3:", "a list"),
    (".claude/settings.json", '{\n  "permissions": {\n    "allow": [],\n    "deny": "Read(./.env)"\n  }\n}\n',
     ":4:5", "a list"),  # located in the file as read, not as the allow edit before it left it
    (".claude/settings.json", '{\n  // mine\n  "permissions": {}\n}\n', ":2:3", "strict JSON"),
    (".claude/settings.json", '{\n  "permissions": {"deny": []},\n  "permissions": {}\n}\n', ":3:",
     "duplicated key"),
])
def test_a_file_of_the_wrong_shape_or_grammar_is_refused_and_nothing_changes(
        runner: Runner, tmp_path: Path, relative: str, text: str, where: str, expected: str) -> None:
    root = tmp_path / "home"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(text)
    body = {"mcpServers": {"github": {"command": "npx"}},
            "permissions": {"allow": ["Bash(git status)", "Bash(git diff *)"], "deny": ["Read(./.env)"]},
            "targets": [{"client": "claude-code", "scope": "user", "root": str(root)},
                        {"client": "codex", "scope": "user", "root": str(root)}]}
    before = tree(root)
    result = runner(agent_config(body))
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert f"{root}/{relative}{where}" in result.error, result.error
    assert expected in result.error and "nothing was written" in result.error
    assert tree(root) == before


def test_a_legacy_flat_qwen_settings_file_is_refused(runner: Runner, tmp_path: Path) -> None:
    root = tmp_path / "home"
    (root / ".qwen").mkdir(parents=True)
    legacy = '{\n  "theme": "GitHub",\n  "selectedAuthType": "qwen-oauth",\n  "mcpServers": {}\n}\n'
    (root / ".qwen" / "settings.json").write_text(legacy)
    body = {"permissions": {"deny": ["Read(./.env)"], "defaultMode": "plan"},
            "targets": [{"client": "qwen-code", "scope": "user", "root": str(root)}]}
    result = runner(agent_config(body))
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert f"{root}/.qwen/settings.json:2:3" in result.error and "ui.theme" in result.error
    assert (root / ".qwen" / "settings.json").read_text() == legacy


def test_temporary_files_of_a_killed_run_are_removed(runner: Runner, home: Path) -> None:
    stale = home / ".claude" / ".settings.json.reconciler-k1ll3d.tmp"
    stale.write_text("{half")
    foreign = home / ".claude" / ".settings.json.editor-swap.tmp"
    foreign.write_text("someone else's")
    runner(agent_config(spec(home)))
    assert not stale.exists() and foreign.exists()
    assert not list(home.rglob("*.reconciler-*.tmp"))


def test_import_then_apply_keeps_codex_timeouts_and_odd_names(runner: Runner, tmp_path: Path) -> None:
    from reconciler.drivers.agents.importing import import_spec
    from reconciler.models.agents import AgentClient, TargetScope

    root = tmp_path / "home"
    (root / ".codex").mkdir(parents=True)
    (root / ".codex" / "config.toml").write_text(
        '# my codex\nmodel = "o3"\n\n[mcp_servers.sentry]\ncommand = "npx"\nargs = ["-y", "@sentry/mcp"]\n'
        'startup_timeout_sec = 30\ntool_timeout_sec = 120.5\nenabled = true\n\n'
        '[mcp_servers."Größen Rechner"]\ncommand = "calc"\n')
    (root / ".cursor").mkdir()
    (root / ".cursor" / "mcp.json").write_text(json.dumps(
        {"mcpServers": {"Sequential Thinking": {"command": "npx", "args": ["-y", "seq"]},
                        "Größen-Rechner": {"url": "https://calc.example.com/mcp"}}}, indent=2) + "\n")
    (root / "CLAUDE.md").parent.mkdir(exist_ok=True)
    warnings: list[str] = []
    before = tree(root)
    for client in (AgentClient.CODEX, AgentClient.CURSOR):
        document = import_spec(client, TargetScope.USER, str(root), "mine", warnings.append)
        result = runner(agent_config(document["spec"], name=f"mine-{client}"))
        assert result.outcome in (Outcome.NOOP, Outcome.SUCCEEDED), result.error
        assert tree(root) == before, f"{client}: import then apply changed bytes"
    assert not any("startup_timeout_sec" in w for w in warnings)


def test_an_imported_instruction_file_is_whole_and_never_duplicated(runner: Runner, tmp_path: Path) -> None:
    from reconciler.drivers.agents.importing import import_spec
    from reconciler.models.agents import AgentClient, TargetScope

    root = tmp_path / "home"
    (root / ".claude").mkdir(parents=True)
    memory = ("# Personal preferences\n\nUse British spelling.\n\n## Testing\n\n- pytest, never unittest\n"
              "\n```bash\nmake test\n```\n\n## Style\nShort functions.\n")
    (root / ".claude" / "CLAUDE.md").write_text(memory)
    document = import_spec(AgentClient.CLAUDE_CODE, TargetScope.USER, str(root), "mine", lambda _: None)
    assert document["spec"]["rules"] == [{"name": "claude", "content": memory}]
    result = runner(agent_config(document["spec"]))
    assert result.outcome is Outcome.NOOP
    assert (root / ".claude" / "CLAUDE.md").read_text() == memory
    # The same rule rendered for Codex goes into AGENTS.md once.
    body = {**document["spec"], "targets": [*document["spec"]["targets"],
                                            {"client": "codex", "scope": "user", "root": str(root)}]}
    runner(agent_config(body))
    assert (root / ".claude" / "CLAUDE.md").read_text() == memory
    assert (root / ".codex" / "AGENTS.md").read_text().count("Use British spelling.") == 1


def test_cli_apply_says_what_it_reverted_and_refuse_drift_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    specs = tmp_path / "specs"
    specs.mkdir()
    body = spec(home)
    doc = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": "team"},
           "spec": body}
    (specs / "agents.yaml").write_text(json.dumps(doc))
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args, str(specs)], env=env,
                              capture_output=True, text=True, timeout=120)

    assert cli("apply").returncode == 0
    claude = home / ".claude.json"
    claude.write_text(claude.read_text().replace("server-github@1", "server-github@0"))
    before = claude.read_text()
    refused = cli("apply", "--refuse-drift")
    assert refused.returncode == 1 and "would be reverted" in refused.stderr
    assert claude.read_text() == before
    plan = cli("plan", "--detailed-exitcode")
    assert plan.returncode == 2 and "will be reverted to the spec" in plan.stdout
    applied = cli("apply")
    assert applied.returncode == 0
    assert f"reverted {home}/.claude.json#/mcpServers/github" in applied.stdout
    assert cli("plan", "--detailed-exitcode").returncode == 0
    shutil.rmtree(specs)


# A default permission mode is a security setting like a deny rule: the spec may not loosen
# the one a user chose by hand (Claude's `dontAsk` denies every tool not allowed; `default`
# asks) unless it allows weakening for that path; tightening it is an ordinary change.
CLAUDE_MODE = ("claude-code", ".claude/settings.json", ("permissions", "defaultMode"))
QWEN_MODE = ("qwen-code", ".qwen/settings.json", ("tools", "approvalMode"))
GEMINI_MODE = ("gemini-cli", ".gemini/settings.json", ("general", "defaultApprovalMode"))
MODE_CASES = [
    (*CLAUDE_MODE, "dontAsk", "default", True),
    (*CLAUDE_MODE, "plan", "bypassPermissions", True),
    (*CLAUDE_MODE, "acceptEdits", "default", False),
    (*QWEN_MODE, "default", "bypassPermissions", True),
    (*GEMINI_MODE, "default", "acceptEdits", True),
    (*GEMINI_MODE, "yolo", "default", False),
]


@pytest.mark.parametrize(("client", "file", "key", "mine", "spec_mode", "weakens"), MODE_CASES,
                         ids=[f"{c[0]}-{c[3]}-to-{c[4]}" for c in MODE_CASES])
def test_a_default_mode_set_by_hand_is_never_loosened_silently(
        runner: Runner, tmp_path: Path, client: str, file: str, key: tuple[str, str], mine: str,
        spec_mode: str, weakens: bool) -> None:
    home = tmp_path / "home"
    (home / file).parent.mkdir(parents=True)
    (home / file).write_text(json.dumps({key[0]: {key[1]: mine}}, indent=2) + "\n")
    before = (home / file).read_text()
    body = {"permissions": {"defaultMode": spec_mode},
            "targets": [{"client": client, "scope": "user", "root": str(home)}]}
    result = runner(agent_config(body))
    if weakens:
        assert result.outcome is Outcome.ABORTED and result.error is not None, result.outcome
        assert "weaken" in result.error and mine in result.error
        assert (home / file).read_text() == before
        allowed = {"paths": [{"path": "/" + "/".join(key), "allowWeakening": True}]}
        result = runner(agent_config({**body, "conflictPolicy": allowed}))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert json.loads((home / file).read_text())[key[0]][key[1]] != mine


def test_codex_untrusted_by_hand_is_never_loosened_silently(runner: Runner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    config = home / ".codex" / "config.toml"
    config.write_text('# asks before anything not known safe\napproval_policy = "untrusted"\n')
    body = {"permissions": {"defaultMode": "default"},
            "targets": [{"client": "codex", "scope": "user", "root": str(home)}]}
    result = runner(agent_config(body))
    assert result.outcome is Outcome.ABORTED and result.error is not None
    assert "untrusted" in result.error and "on-request" in result.error
    assert config.read_text() == '# asks before anything not known safe\napproval_policy = "untrusted"\n'


def test_a_symlinked_client_file_stays_a_link_and_its_target_is_written(runner: Runner,
                                                                        tmp_path: Path) -> None:
    """Dotfiles managers (stow, chezmoi's symlink mode, a hand-made `ln -s`) keep the real
    file in a repository and link it into $HOME: apply writes through the link, never
    replacing the link with a copy that the repository would never see."""
    home = tmp_path / "home"
    dotfiles = tmp_path / "dotfiles" / "claude"
    dotfiles.mkdir(parents=True)
    (dotfiles / "settings.json").write_text(json.dumps(SETTINGS, indent=2) + "\n")
    (home / ".claude").mkdir(parents=True)
    link = home / ".claude" / "settings.json"
    link.symlink_to(Path("..") / ".." / "dotfiles" / "claude" / "settings.json")
    result = runner(agent_config(spec(home)))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert link.is_symlink()
    written = json.loads((dotfiles / "settings.json").read_text())
    assert "Bash(rm -rf *)" in written["permissions"]["deny"]
    assert not list((tmp_path / "dotfiles").rglob("*.tmp")) and not list(home.rglob("*.tmp"))
    assert runner(agent_config(spec(home))).outcome is Outcome.NOOP


def test_two_targets_writing_one_file_through_a_link_must_agree(runner: Runner, tmp_path: Path) -> None:
    """`CLAUDE.md -> AGENTS.md` shares one instruction file between clients. Claude's block
    and Codex's differ when a rule is path-scoped (Claude gets it as a file of its own): each
    run would overwrite the other's, so the run refuses, saying which files are one."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "AGENTS.md").write_text("# Project\n\nUse tabs.\n")
    (project / "CLAUDE.md").symlink_to("AGENTS.md")
    always = {"name": "style", "content": "Short functions.\n"}
    scoped = {"name": "sql", "content": "Reversible migrations.\n", "paths": ["db/**"]}
    targets = [{"client": "claude-code", "root": str(project)}, {"client": "codex", "root": str(project)}]
    result = runner(agent_config({"rules": [always, scoped], "targets": targets}))
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert "AGENTS.md and" in result.error and "CLAUDE.md are one file" in result.error, result.error
    assert (project / "AGENTS.md").read_text() == "# Project\n\nUse tabs.\n"
    result = runner(agent_config({"rules": [always], "targets": targets}))  # the same block: fine
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert (project / "CLAUDE.md").is_symlink()
    assert (project / "AGENTS.md").read_text().count("Short functions.") == 1
    assert runner(agent_config({"rules": [always], "targets": targets})).outcome is Outcome.NOOP


# --- what the user's files held before the reconciler first wrote them stays --------------------


@pytest.mark.parametrize(("client", "path", "before"), [
    ("cursor", ".cursor/mcp.json", '{"mcpServers": {}}\n'),
    ("claude-code", ".claude/settings.json", '{"permissions": {"deny": []}}\n'),
    ("claude-code", ".claude/settings.json", "{}\n"),
])
def test_a_users_file_and_its_empty_containers_outlive_the_reconcilers_items(
        runner: Runner, tmp_path: Path, client: str, path: str, before: str) -> None:
    """Items the reconciler added and later removes go; the file and the (empty) keys the user
    had before its first write stay: only what the reconciler created is its to delete."""
    home = tmp_path / "home"
    (home / path).parent.mkdir(parents=True)
    (home / path).write_text(before)
    target = [{"client": client, "scope": "user", "root": str(home)}]
    first = runner(agent_config({"mcpServers": {"s": {"command": "a"}},
                                 "permissions": {"deny": ["Bash(rm *)"]}, "targets": target}))
    assert first.outcome is Outcome.SUCCEEDED, first.error
    assert (home / path).read_text() != before
    second = runner(agent_config({"rules": [{"name": "r", "content": "Be brief."}], "targets": target}))
    assert second.outcome is Outcome.SUCCEEDED, second.error
    assert (home / path).exists(), "the user's file was deleted"
    assert json.loads((home / path).read_text()) == json.loads(before)


@pytest.mark.parametrize(("client", "path", "before"), [
    ("qwen-code", ".qwen/settings.json", '{\n  // my qwen settings\n  "general": {"vimMode": true},\n'
     '  "permissions": {"deny": []},  // mine\n  "ui": {"theme": "GitHub"},\n  "mcpServers": {}\n}\n'),
    ("claude-code", ".claude/settings.json", '{\n  "permissions": {\n    "deny": []\n  },\n'
     '  "model": "opus"\n}\n'),
    ("claude-code", ".claude.json", '{\n  "mcpServers": {},\n  "numStartups": 3\n}\n'),
])
def test_removing_the_reconcilers_items_gives_back_the_users_file_byte_for_byte(
        runner: Runner, tmp_path: Path, client: str, path: str, before: str) -> None:
    """The user's empty containers stay where they were, with their comments: they used to be
    deleted with the reconciler's last item and put back, reformatted, at the end of the file."""
    home = tmp_path / "home"
    (home / path).parent.mkdir(parents=True)
    (home / path).write_text(before)
    target = [{"client": client, "scope": "user", "root": str(home)}]
    first = runner(agent_config({"mcpServers": {"srv": {"command": "x"}}, "targets": target,
                                 "permissions": {"deny": ["Bash(rm *)"], "allow": ["Read"]}}))
    assert first.outcome is Outcome.SUCCEEDED, first.error
    second = runner(agent_config({"rules": [{"name": "r", "content": "x"}], "targets": target}))
    assert second.outcome is Outcome.SUCCEEDED, second.error
    assert (home / path).read_text() == before


def test_a_file_the_reconciler_created_is_removed_when_it_holds_nothing_else(
        runner: Runner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    target = [{"client": "cursor", "scope": "user", "root": str(home)}]
    assert runner(agent_config({"mcpServers": {"s": {"command": "a"}}, "targets": target})).outcome \
        is Outcome.SUCCEEDED
    assert (home / ".cursor" / "mcp.json").exists()
    runner(agent_config({"rules": [{"name": "r", "content": "x"}], "targets": target}))
    assert not (home / ".cursor" / "mcp.json").exists()


def test_a_users_empty_codex_table_outlives_the_reconcilers_servers(runner: Runner, tmp_path: Path) -> None:
    import tomllib

    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text('model = "o3"\n\n[mcp_servers]\n')
    target = [{"client": "codex", "scope": "user", "root": str(home)}]
    assert runner(agent_config({"mcpServers": {"s": {"command": "a"}}, "targets": target})).outcome \
        is Outcome.SUCCEEDED
    runner(agent_config({"rules": [{"name": "r", "content": "x"}], "targets": target}))
    assert tomllib.loads((home / ".codex" / "config.toml").read_text()) == {"model": "o3", "mcp_servers": {}}


@pytest.mark.parametrize(("client", "path", "before"), [
    ("qwen-code", ".qwen/settings.json", '{\r\n  // mine\r\n  "general": {"vimMode": true}\r\n}\r\n'),
    ("claude-code", ".claude/settings.json", '{\r\n  "env": {"A": "1"}\r\n}\r\n'),
    ("codex", ".codex/config.toml", '# mine\r\nmodel = "o3"\r\n'),
])
def test_a_crlf_file_gets_crlf_lines_and_stays_crlf(runner: Runner, tmp_path: Path, client: str, path: str,
                                                    before: str) -> None:
    """A Windows user's file: the lines the reconciler inserts end in CRLF as the file's own."""
    home = tmp_path / "home"
    (home / path).parent.mkdir(parents=True)
    (home / path).write_bytes(before.encode())
    body = {"mcpServers": {"s": {"command": "a", "args": ["-y", "x"]}},
            "permissions": {"deny": ["Bash(rm *)"]},
            "targets": [{"client": client, "scope": "user", "root": str(home)}]}
    assert runner(agent_config(body)).outcome is Outcome.SUCCEEDED
    written = (home / path).read_bytes()
    assert written != before.encode()
    assert written.count(b"\n") == written.count(b"\r\n"), written  # no LF-only line
    assert before.replace("\r\n", "\n").splitlines()[1] in written.decode().replace("\r\n", "\n")
    runner(agent_config(body))
    assert (home / path).read_bytes() == written


@pytest.mark.parametrize(("client", "path"), [("claude-code", ".claude/settings.json"),
                                              ("qwen-code", ".qwen/settings.json")])
def test_the_users_deny_of_what_the_spec_asks_stays_and_the_ask_is_pending(
        runner: Runner, tmp_path: Path, client: str, path: str) -> None:
    home = tmp_path / "home"
    (home / path).parent.mkdir(parents=True)
    (home / path).write_text('{"permissions": {"deny": ["Bash(git push *)"]}}\n')
    obj = agent_config({"permissions": {"ask": ["Bash(git push *)"]},
                        "targets": [{"client": client, "scope": "user", "root": str(home)}]})
    plan = runner(obj, dry_run=True).plan
    assert plan is not None and any("Bash(git push *)" in key for key in plan.pending), plan.pending
    result = runner(obj)
    assert result.outcome is Outcome.NOOP, result.error  # nothing the spec may write
    permissions = json.loads((home / path).read_text())["permissions"]
    assert permissions == {"deny": ["Bash(git push *)"]}  # no second, looser copy in ask


@pytest.mark.parametrize(("client", "settings", "fix"), [
    ("gemini-cli", ".gemini/settings.json", "set the target's override context.fileName to 'AGENTS.md'"),
    ("qwen-code", ".qwen/settings.json", "add 'QWEN.md' to context.fileName"),
])
def test_rules_written_to_a_file_the_users_context_setting_does_not_load_are_warned_about(
        runner: Runner, tmp_path: Path, client: str, settings: str, fix: str) -> None:
    home = tmp_path / "home"
    (home / settings).parent.mkdir(parents=True)
    (home / settings).write_text('{"context": {"fileName": ["AGENTS.md", "CONTEXT.md"]}}\n')
    target = {"client": client, "scope": "user", "root": str(home)}
    plan = runner(agent_config({"rules": [{"name": "r", "content": "Be brief."}], "targets": [target]}),
                  dry_run=True).plan
    assert plan is not None
    warned = [w for w in plan.warnings if "context.fileName" in w]
    assert len(warned) == 1 and "does not load that file" in warned[0] and fix in warned[0], plan.warnings
    if client == "gemini-cli":  # with the override, as import writes it: the rules go to AGENTS.md
        target["overrides"] = {"context.fileName": "AGENTS.md"}
        plan = runner(agent_config({"rules": [{"name": "r", "content": "Be brief."}], "targets": [target]}),
                      dry_run=True).plan
        assert plan is not None and not [w for w in plan.warnings if "context.fileName" in w]
