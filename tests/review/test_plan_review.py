"""`reconciler plan --base REV --head REV`: a temporary git repository with two commits,
planned against real files and a real PostgreSQL table fed by the AED emulator over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest
from drivers.aed.conftest import COLUMNS, aed_database, checksum, emulator, pg_url, table  # noqa: F401
from ruamel.yaml import YAML

from reconciler.emulator.egen import EgenEmulator
from reconciler.review.rendering import BLOCK

SENTINEL = "sentinel-service-key-7731"
Run = Callable[..., subprocess.CompletedProcess[str]]


def _dump(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        YAML().dump(document, fh)


def agent(name: str, root: Path, servers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": name},
            "spec": {"mcpServers": servers, "targets": [{"client": "claude-code", "scope": "project",
                                                          "root": str(root)}], **spec}}


def aed(base_url: str, table_name: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AedSourceBinding", "metadata": {"name": "aed"},
            "spec": {"source": {"baseUrl": base_url, "serviceKey": {"env": "AED_TEST_KEY"}, "pageSize": 500,
                                "concurrency": 4, "timeout": "10s"},
                     "target": {"databaseUrl": {"env": "AED_TEST_DB"}, "table": table_name},
                     "mapping": {"columns": columns}}}


@pytest.fixture
def repo(tmp_path: Path, emulator: EgenEmulator, pg_url: str, table: str,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> tuple[git.Repo, Run]:
    monkeypatch.setenv("AED_TEST_KEY", SENTINEL)
    work = tmp_path / "repo"
    work.mkdir()
    repository = git.Repo.init(work)
    with repository.config_writer() as config:
        config.set_value("user", "name", "Test").set_value("user", "email", "test@example.com")
    files = tmp_path / "files"
    specs = work / "specs"
    _dump(specs / "team.yaml", agent("team", files / "team", {"github": {"command": "npx"}}))
    _dump(specs / "old.yaml", agent("old", files / "old", {"jira": {"command": "jira-mcp"}},
                                    deletionPolicy="Delete"))
    _dump(specs / "kept.yaml", agent("kept", files / "kept", {"docs": {"command": "docs-mcp"}}))
    _dump(specs / "aed.yaml", aed(emulator.base_url, table, COLUMNS))
    (work / "README.md").write_text("specs\n")
    repository.index.add([f"specs/{n}.yaml" for n in ("team", "old", "kept", "aed")] + ["README.md"])
    repository.index.commit("base")

    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)

    applied = run("apply", "specs")
    assert applied.returncode == 0, applied.stderr

    # the change under review: a server added, a column remapped, an object removed
    _dump(specs / "team.yaml", agent("team", files / "team", {"github": {"command": "npx"},
                                                              "linear": {"command": "linear-mcp"}}))
    remapped = [dict(c, **{"from": "model"}) if c["column"] == "manufacturer" else c for c in COLUMNS]
    _dump(specs / "aed.yaml", aed(emulator.base_url, table, remapped))
    (specs / "old.yaml").unlink()
    repository.index.add(["specs/team.yaml", "specs/aed.yaml"])
    repository.index.remove(["specs/old.yaml"])
    repository.index.commit("head")
    return repository, run


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_plan_lists_exactly_the_changed_objects_against_the_live_targets(
        repo: tuple[git.Repo, Run], tmp_path: Path, pg_url: str, table: str) -> None:  # noqa: F811
    _, run = repo
    files_before, rows_before = _tree(tmp_path / "files"), checksum(pg_url, table)

    result = run("plan", "--base", "HEAD~1", "--head", "HEAD", "--path", "specs", "--format", "json",
                 "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    by_name = {o["name"]: o for o in document["objects"]}
    assert {(o["kind"], o["name"], o["change"]) for o in document["objects"]} == {
        ("AgentConfig", "team", "changed"), ("AedSourceBinding", "aed", "changed"),
        ("AgentConfig", "old", "removed")}
    assert document["unchanged"] == ["AgentConfig/default/kept"]

    team = by_name["team"]["plan"]
    assert team["counts"]["created"] == 1 and team["counts"]["deleted"] == 0
    assert [c["key"] for c in team["changes"]] == ["mcp:linear"] or "linear" in json.dumps(team["changes"])
    assert "linear-mcp" in json.dumps(team["details"]["files"])

    old = by_name["old"]
    assert old["plan"]["counts"]["deleted"] >= 1 and "prunes" in old["note"]

    # the remap changes exactly the rows whose manufacturer differs from the model: the plan's
    # count equals what an apply of the head then really updates
    planned = by_name["aed"]["plan"]["counts"]
    assert planned["updated"] > 0 and planned["created"] == planned["deleted"] == 0

    assert _tree(tmp_path / "files") == files_before  # read-only: nothing written
    assert checksum(pg_url, table) == rows_before
    applied = run("apply", "specs", "--target", "AedSourceBinding/aed")
    assert applied.returncode == 0, applied.stderr
    assert f"{planned['updated']} updated" in applied.stdout


def test_markdown_comment_has_a_table_blocks_and_no_secret(repo: tuple[git.Repo, Run]) -> None:
    _, run = repo
    result = run("plan", "--base", "HEAD~1", "--head", "HEAD", "--path", "specs", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert SENTINEL not in text and SENTINEL not in result.stderr
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 3
    assert any("changed | AgentConfig | `team` | 1 |" in r for r in rows)
    assert any("removed | AgentConfig | `old` | 0 | 0 |" in r for r in rows)
    assert "kept" not in text
    assert text.count("<details>") == text.count("</details>") and "linear-mcp" in text
    summary = json.loads(text.split("<!-- reconciler:summary ", 1)[1].split(" -->", 1)[0])
    assert summary["objects"] == 3 and summary["guardsTripped"] == 0 and summary["errors"] == 0
    assert text.count(BLOCK) >= 2
    from reconciler.review.comments import split_comment

    parts = split_comment(text, limit=1500)
    assert len(parts) > 1 and all(len(p) <= 1500 for p in parts)


def test_no_record_leaves_the_store_untouched(repo: tuple[git.Repo, Run], tmp_path: Path) -> None:
    import sqlite3

    _, run = repo
    db = tmp_path / "state" / "reconciler.db"

    def counts() -> tuple[int, int]:
        with sqlite3.connect(db) as conn:
            return (conn.execute("SELECT count(*) FROM runs").fetchone()[0],
                    conn.execute("SELECT count(*) FROM events").fetchone()[0])

    before = counts()
    result = run("plan", "--base", "HEAD~1", "--head", "HEAD", "--path", "specs", "--format", "json",
                 "--no-record")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"]["errors"] == 0 and document["summary"]["changed"] == 3
    assert next(o for o in document["objects"] if o["name"] == "old")["plan"]["counts"]["deleted"] >= 1
    assert counts() == before


def test_same_revision_plans_nothing(repo: tuple[git.Repo, Run]) -> None:
    _, run = repo
    result = run("plan", "--base", "HEAD", "--head", "HEAD", "--path", "specs", "--format", "markdown",
                 "--detailed-exitcode")
    assert result.returncode == 0, result.stderr
    assert "No object changed" in result.stdout


def test_unknown_revision_is_a_clear_error(repo: tuple[git.Repo, Run]) -> None:
    _, run = repo
    result = run("plan", "--base", "no-such-branch", "--head", "HEAD", "--path", "specs")
    assert result.returncode == 1
    assert "unknown git revision 'no-such-branch'" in result.stderr
