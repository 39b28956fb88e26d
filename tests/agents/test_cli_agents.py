"""The AgentConfig example as users run it: `HOME=$tmp reconciler apply examples/agents`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.conftest import tree

REPO = Path(__file__).parents[2]
SENTINEL = "sentinel-4f2b-never-in-a-file"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def cli(tmp_path: Path, home: Path):
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples" / "agents", work / "examples" / "agents")
    env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "GITHUB_TOKEN": SENTINEL, "DOCS_MCP_TOKEN": SENTINEL}
    env.pop("RECONCILER_DATABASE_URL", None)
    env.pop("RECONCILER_PLUGINS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)

    return run


def test_example_renders_all_six_clients_under_home_only(cli, home: Path, tmp_path: Path) -> None:
    first = cli("apply", "examples/agents")
    assert first.returncode == 0, first.stderr
    assert "AgentConfig/team-agents: succeeded" in first.stdout
    files = set(tree(home))
    for expected in (".claude.json", ".claude/settings.json", ".claude/CLAUDE.md",
                     ".codex/config.toml", ".codex/AGENTS.md", ".qwen/settings.json",
                     ".rovodev/mcp.json", ".rovodev/config.yml", ".gemini/settings.json",
                     ".cursor/mcp.json"):
        assert expected in files, sorted(files)
    written_elsewhere = [p for p in (tmp_path / "work").rglob("*") if p.is_file()
                         and "examples" not in p.parts]
    assert written_elsewhere == []
    assert "translation: codex: mcpServers.metrics" in first.stdout  # Codex has no SSE

    before = tree(home)
    second = cli("apply", "examples/agents")
    assert second.returncode == 0, second.stderr
    assert "noop" in second.stdout
    assert tree(home) == before
    assert cli("plan", "--detailed-exitcode", "examples/agents").returncode == 0


def test_hand_edit_gives_exit_2_and_a_diff(cli, home: Path) -> None:
    assert cli("apply", "examples/agents").returncode == 0
    settings = home / ".qwen" / "settings.json"
    settings.write_text(settings.read_text().replace("@modelcontextprotocol/server-github", "evil-server"))
    result = cli("plan", "--detailed-exitcode", "examples/agents")
    assert result.returncode == 2, result.stderr
    assert "drift" in result.stdout and '-        "evil-server"' in result.stdout
    assert cli("apply", "examples/agents").returncode == 0
    assert "evil-server" not in settings.read_text()


def test_rollback_and_history_through_the_cli(cli, home: Path) -> None:
    assert cli("apply", "examples/agents").returncode == 0
    runs = json.loads(cli("history", "-o", "json").stdout)
    first = runs[0]["id"]
    before = tree(home)
    example = home.parent / "work" / "examples" / "agents" / "agentconfig.yaml"
    example.write_text(example.read_text().replace("GITHUB_TOOLSETS: repos,issues,pull_requests",
                                                   "GITHUB_TOOLSETS: repos"))
    assert cli("apply", "examples/agents").returncode == 0
    assert tree(home) != before
    result = cli("rollback", "AgentConfig/team-agents", "--to", first[:16], "--specs", "examples/agents")
    assert result.returncode == 0, result.stderr
    assert "rollback to run" in result.stdout and "succeeded" in result.stdout
    assert tree(home) == before
    history = json.loads(cli("history", "-o", "json").stdout)
    assert history[0]["trigger"] == "rollback"


def test_import_round_trips_a_rendered_client(cli, home: Path, tmp_path: Path) -> None:
    assert cli("apply", "examples/agents").returncode == 0
    result = cli("import", "agents", "--client", "claude-code", "--scope", "user", "--name", "mine")
    assert result.returncode == 0, result.stderr
    assert "kind: AgentConfig" in result.stdout and "name: mine" in result.stdout
    assert "GITHUB_TOKEN:\n          env: GITHUB_TOKEN" in result.stdout
    spec_dir = tmp_path / "imported"
    spec_dir.mkdir()
    (spec_dir / "mine.yaml").write_text(result.stdout)
    validated = cli("validate", str(spec_dir))
    assert validated.returncode == 0, validated.stderr
    # The imported spec, applied to the same files, changes nothing the example wrote.
    plan = cli("plan", str(spec_dir))
    assert plan.returncode == 0, plan.stderr
    assert "0 to update" in plan.stdout


def test_no_secret_in_files_plans_logs_or_history(cli, home: Path, tmp_path: Path) -> None:
    outputs = [cli("--log-format", "json", "plan", "-f", "json", "examples/agents"),
               cli("apply", "examples/agents"), cli("history", "-o", "json"),
               cli("plan", "-f", "markdown", "examples/agents")]
    for out in outputs:
        assert SENTINEL not in out.stdout and SENTINEL not in out.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


FOREIGN_SECRETS = {
    ".gemini/settings.json": '{\n  "mcpServers": {\n    "openai": {\n      "command": "oai-mcp",\n'
                             '      "env": {"OPENAI_API_KEY": "sk-proj-sentinel0123456789abcdef"}\n    },\n'
                             '    "search": {"httpUrl": "https://s.example.com/mcp?api_key=sentinel42",\n'
                             '               "headers": {"Authorization": "Bearer sentinel43"}}\n  }\n}\n',
    ".codex/config.toml": '[mcp_servers.stripe]\ncommand = "npx"\n'
                          'env = { STRIPE_SECRET_KEY = "sentinel44" }\n',
    ".rovodev/config.yml": "# mine\nagent:\n  token: sentinel45\n  db: postgresql://app:sentinel46@db/app\n",
}


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_plan_never_shows_a_foreign_literal_secret_of_a_client_file(cli, home: Path, fmt: str) -> None:
    """The plan's diffs show the lines around a change: a user's own server holding its key as
    a literal sat there in clear, in the terminal and in the pull-request comment."""
    for name, text in FOREIGN_SECRETS.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    done = cli("plan", "examples/agents", "-f", fmt)
    assert done.returncode == 0, done.stderr
    assert "sentinel" not in done.stdout + done.stderr
    assert "***" in done.stdout  # the lines are shown, the values masked


def test_a_literal_secret_put_in_by_hand_is_never_shown_in_changes_history_or_proposals(
        cli, home: Path) -> None:
    """A person pastes their token into a server the spec declares with a reference: the
    field lines of the plan, the run's recorded changes and a proposal's file value showed it
    in clear (the diff itself was already masked)."""
    assert cli("apply", "examples/agents").returncode == 0
    path = home / ".claude.json"
    body = json.loads(path.read_text())
    body["mcpServers"]["github"]["env"]["GITHUB_TOKEN"] = "ghp_sentinelABCDEFGHIJKLMNOPQRSTUVWXYZ01"
    path.write_text(json.dumps(body, indent=2) + "\n")
    shown = [cli("plan", "examples/agents", "-f", fmt) for fmt in ("text", "markdown", "json")]
    applied = cli("apply", "examples/agents", "-o", "json")
    run_id = json.loads(applied.stdout.splitlines()[-1])["runId"]
    shown += [applied, cli("history", "--run", run_id, "-o", "json")]
    for done in shown:
        assert done.returncode in (0, 2), done.stderr
        assert "sentinel" not in done.stdout + done.stderr, done.args
    assert "GITHUB_TOKEN" in shown[0].stdout  # the change is shown, its value masked


def test_a_proposal_never_carries_a_literal_secret_of_the_file(cli, home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "work" / "examples" / "agents" / "agentconfig.yaml"
    spec.write_text(spec.read_text().replace("    default: Override\n", "    default: manual-review\n", 1))
    assert cli("apply", "examples/agents").returncode == 0
    path = home / ".claude.json"
    body = json.loads(path.read_text())
    body["mcpServers"]["github"]["args"] = ["-y", "server-github", "--token", "sentinel0123456789"]
    path.write_text(json.dumps(body, indent=2) + "\n")
    planned = cli("plan", "examples/agents")
    listed = cli("review", "-o", "json")
    for done in (planned, listed):
        assert "sentinel" not in done.stdout + done.stderr
