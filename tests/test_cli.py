"""The `reconciler` command as users run it: real processes, real files, SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


def kv_spec(target: Path, data: dict[str, str], name: str = "settings", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler.dev/v1alpha1
        kind: KeyValueStore
        metadata: {{name: {name}}}
        spec:
          file: {target}
          data: {json.dumps(data)}
        """) + extra


@pytest.fixture
def cli(tmp_path: Path):
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "RECONCILER_PLUGINS": "kvstore_driver",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)

    return run


def test_validate_a_broken_spec_prints_location_and_exits_1(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {}).replace("file:", "fiel:"))
    result = cli("validate", "specs")
    assert result.returncode == 1
    assert "specs/kv.yaml:5:3: spec.fiel: unknown field 'fiel'; did you mean 'file'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_the_shipped_specs_exits_0(cli) -> None:
    result = cli("validate", str(REPO / "specs"))
    assert result.returncode == 0, result.stderr
    assert "object(s) valid" in result.stdout


def test_plan_detailed_exitcode_is_0_2_or_1(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    target = tmp_path / "kv.json"
    (specs / "kv.yaml").write_text(kv_spec(target, {"a": "1"}))
    changes = cli("plan", "specs", "--detailed-exitcode")
    assert changes.returncode == 2, changes.stderr
    assert "+ key a" in changes.stdout and "1 to create" in changes.stdout
    assert not target.exists()

    assert cli("apply", "specs").returncode == 0
    same = cli("plan", "specs", "--detailed-exitcode")
    assert same.returncode == 0, same.stderr
    assert "No changes" in same.stdout

    (specs / "kv.yaml").write_text(kv_spec(target, {"a": "1"}, extra="  failOn: observe\n"))
    error = cli("plan", "specs", "--detailed-exitcode")
    assert error.returncode == 1
    assert "simulated failure" in error.stderr

    (specs / "kv.yaml").write_text("kind: [broken")
    assert cli("plan", "specs", "--detailed-exitcode").returncode == 1


def test_apply_then_apply_again_changes_nothing(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    target = tmp_path / "kv.json"
    (specs / "kv.yaml").write_text(kv_spec(target, {"a": "1", "b": "2"}))
    first = cli("apply", "specs")
    assert first.returncode == 0, first.stderr
    assert "KeyValueStore/settings: succeeded (2 created" in first.stdout
    content = target.read_bytes()
    second = cli("apply", "specs")
    assert "KeyValueStore/settings: noop" in second.stdout
    assert target.read_bytes() == content


def test_apply_dry_run_writes_nothing(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}))
    result = cli("apply", "specs", "--dry-run")
    assert "planned" in result.stdout
    assert not (tmp_path / "kv.json").exists()


def test_apply_target_runs_only_the_named_object(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "one.json", {"a": "1"}, name="one") + "---\n"
                                   + kv_spec(tmp_path / "two.json", {"a": "1"}, name="two"))
    assert cli("apply", "specs", "--target", "KeyValueStore/two").returncode == 0
    assert (tmp_path / "two.json").exists() and not (tmp_path / "one.json").exists()
    unknown = cli("apply", "specs", "--target", "KeyValueStore/three")
    assert unknown.returncode == 1 and "no target KeyValueStore/three" in unknown.stderr


def test_plan_markdown_and_json_formats(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}))
    markdown = cli("plan", "specs", "--format", "markdown").stdout
    assert "| `KeyValueStore/settings` | 1 | 0 | 0 | 0 | 0 |  |" in markdown
    assert "<details><summary>" in markdown
    document = json.loads(cli("plan", "specs", "--format", "json").stdout)
    assert document["changed"] is True
    assert document["plans"][0]["changes"][0]["key"] == "a"


def test_history_and_status_show_recorded_runs(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}))
    cli("apply", "specs")
    cli("apply", "specs")
    runs = json.loads(cli("history", "KeyValueStore/settings", "--output", "json").stdout)
    assert [r["outcome"] for r in runs] == ["noop", "succeeded"]
    detail = cli("history", "--run", runs[1]["id"][:14])
    assert "+ key a" in detail.stdout and "not applied" not in detail.stdout
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "2"}))
    cli("plan", "specs")
    planned = json.loads(cli("history", "KeyValueStore/settings", "--output", "json").stdout)[0]
    assert planned["dry_run"] is True
    shown = cli("history", "--run", planned["id"]).stdout
    assert "planned, not applied:\n  ~ key a" in shown, shown
    rows = json.loads(cli("status", "specs", "--output", "json").stdout)
    assert rows[0]["object"] == "KeyValueStore/settings" and rows[0]["ready"] == "True"
    assert "KeyValueStore/settings" in cli("status").stdout


def test_status_without_a_path_shows_the_syncjobs_an_apply_declared(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}, extra=textwrap.dedent("""\
        ---
        apiVersion: reconciler.dev/v1alpha1
        kind: SyncJob
        metadata: {name: settings-nightly}
        spec:
          targetRef: {kind: KeyValueStore, name: settings}
          schedule: "0 2 * * *"
          timeZone: Asia/Seoul
        """)))
    assert cli("apply", "specs").returncode == 0
    with_path = {r["object"]: r for r in json.loads(cli("status", "specs", "-o", "json").stdout)}
    without = {r["object"]: r for r in json.loads(cli("status", "-o", "json").stdout)}
    job = without.get("SyncJob/settings-nightly")
    assert job is not None, without
    assert job["target"] == "KeyValueStore/settings" and job["schedule"] == "0 2 * * *"
    assert job["next_run_time"] == with_path["SyncJob/settings-nightly"]["next_run_time"] is not None


def test_kinds_without_a_driver_are_skipped_with_a_note(cli, tmp_path: Path) -> None:
    specs = tmp_path / "bookmarks"
    specs.mkdir()
    (specs / "b.yaml").write_text("apiVersion: reconciler.dev/v1alpha1\nkind: Bookmark\n"
                                  "metadata: {name: docs}\nspec: {url: 'https://example.com'}\n")
    result = cli("plan", str(specs))
    assert result.returncode == 0, result.stderr
    assert "no driver for kind Bookmark in this installation; skipped" in result.stderr


def test_log_lines_are_json_with_run_identity(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}))
    result = cli("--log-format", "json", "apply", "specs")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line["event"] == "run finished"]
    assert finished and finished[0]["kind"] == "KeyValueStore" and finished[0]["name"] == "settings"
    assert len(finished[0]["run_id"]) == 32


def test_db_upgrade_creates_the_schema(cli, tmp_path: Path) -> None:
    result = cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    from reconciler.store.migrating import HEAD_REVISION

    assert f"store at revision {HEAD_REVISION} (was empty)" in result.stdout
    assert (tmp_path / "state" / "reconciler.db").exists()


def test_run_refuses_a_suspended_job_unless_asked(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "agents.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: reconciler.dev/v1alpha1
        kind: AgentConfig
        metadata: {{name: team}}
        spec:
          mcpServers: {{github: {{command: npx}}}}
          targets: [{{client: claude-code, scope: project, root: "{tmp_path / 'project'}"}}]
        ---
        apiVersion: reconciler.dev/v1alpha1
        kind: SyncJob
        metadata: {{name: team-job}}
        spec:
          targetRef: {{kind: AgentConfig, name: team}}
          interval: 5m
          suspend: true
        """))
    refused = cli("run", "SyncJob/team-job", "--specs", "specs")
    assert refused.returncode == 1 and "suspended" in refused.stderr
    assert not (tmp_path / "project" / ".mcp.json").exists()
    forced = cli("run", "SyncJob/team-job", "--specs", "specs", "--even-if-suspended")
    assert forced.returncode == 0, forced.stderr
    assert "AgentConfig/team: succeeded" in forced.stdout
    assert (tmp_path / "project" / ".mcp.json").exists()
    runs = json.loads(cli("history", "-o", "json").stdout)
    assert runs[0]["trigger"] == "manual"


def test_a_killed_run_is_closed_as_abandoned_by_the_next_run(cli, tmp_path: Path) -> None:
    import signal
    import time

    specs = tmp_path / "specs"
    specs.mkdir()
    target = tmp_path / "kv.json"
    (specs / "kv.yaml").write_text(kv_spec(target, {"a": "1"}, extra="  applyDelaySeconds: 3600\n"))
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "RECONCILER_PLUGINS": "kvstore_driver",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    env.pop("RECONCILER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", "specs"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # poll until the run is recorded as running
            runs = json.loads(cli("history", "KeyValueStore/settings", "-o", "json").stdout or "[]")
            if runs and runs[0]["outcome"] == "running":
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run never showed as running")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (specs / "kv.yaml").write_text(kv_spec(target, {"a": "1"}))
    assert cli("apply", "specs").returncode == 0
    runs = json.loads(cli("history", "KeyValueStore/settings", "-o", "json").stdout)
    assert [r["outcome"] for r in runs] == ["succeeded", "failed"], runs
    assert runs[1]["error"].startswith("abandoned") and runs[1]["finishedAt" if "finishedAt" in runs[1]
                                                                 else "finished_at"] is not None


@pytest.mark.parametrize("args", [
    ["apply", "--help"], ["review", "--help"], ["db", "upgrade", "--help"], ["aply"],
    ["--log-level", "debug", "apply", "--help"], ["apply", "--no-such-option"], [],
])
def test_building_only_the_invoked_command_changes_no_answer(args: list[str]) -> None:
    """`main` builds only the command the first argument names (start-up time); help,
    errors and "did you mean" must read exactly as with the whole application."""
    import structlog
    from typer.testing import CliRunner

    from reconciler.cli import app, only_invoked_command

    runner = CliRunner()
    # The global options' callback points the logs at the runner's stream, closed after the
    # call: put back what the other tests of this process log to.
    logging_before = structlog.get_config()
    try:
        whole = runner.invoke(app, args, prog_name="reconciler", env={"COLUMNS": "100"})
        trimmed_app = only_invoked_command(app, args)
        trimmed = runner.invoke(trimmed_app, args, prog_name="reconciler", env={"COLUMNS": "100"})
    finally:
        structlog.configure(**logging_before)
    assert (trimmed.exit_code, trimmed.output) == (whole.exit_code, whole.output)
    assert whole.output.strip()
    if args and args[0] in ("apply", "review", "db"):
        assert trimmed_app is not app
        assert len(trimmed_app.registered_commands) + len(trimmed_app.registered_groups) == 1


def test_the_command_imports_httpx_without_its_command_line(cli) -> None:
    """httpx imports its own CLI (rich, pygments) whenever they are installed; the
    `reconciler` process never runs it and keeps it out (start-up of AED runs and the
    daemon). httpx must still work: here it reaches the refused port and says so."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler.cli", "status", "--server", "http://127.0.0.1:9"],
        env={**os.environ, "RECONCILER_TOKEN": "t"}, capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "httpx" in imported
    assert not imported & {"pygments", "rich.console", "rich.progress"}
    assert "http://127.0.0.1:9: ConnectError" in result.stderr


def test_a_rejected_row_without_a_key_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from reconciler.cli.viewing import _show_run_detail
    from reconciler.structs.records import RunDetail, RunRecord

    run = RunRecord(id="r1", kind="AedSourceBinding", namespace="default", name="aed", trigger="manual",
                    mode="full", dry_run=False, revision=None, generation=None, outcome="succeeded",
                    counts={}, started_at=datetime.now(UTC), finished_at=None, duration_seconds=None,
                    error=None, error_type=None, warnings=[])
    reject = {"key": None, "stage": "format", "rule": "required", "column": "equipment_serial",
              "message": "the key column is empty"}
    _show_run_detail(RunDetail(run=run, changes=[], rejects=[reject]))
    assert "✗ rejected (a row without a key): format.required (equipment_serial)" in capsys.readouterr().out


def test_with_json_logs_every_line_on_stderr_is_json_errors_included(cli, tmp_path: Path) -> None:
    """A log collector reads stderr as JSON lines: an error used to come out as a plain
    `error: …` line among them, which it cannot parse (and so drops or chokes on)."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(kv_spec(tmp_path / "kv.json", {"a": "1"}).replace("data:", "dataa:"))
    invalid = cli("--log-format", "json", "apply", "specs")
    (specs / "kv.yaml").write_text(kv_spec(tmp_path, {"a": "1"}))  # a directory: the run fails
    failed = cli("--log-format", "json", "apply", "specs")
    missing = cli("--log-format", "json", "history", "--run", "zzzz")
    for result in (invalid, failed, missing):
        assert result.returncode == 1, result.stderr
        events = [json.loads(line) for line in result.stderr.splitlines()]  # each line is JSON
        errors = [e for e in events if e["level"] == "error"]
        assert errors, events
    assert any("dataa" in e.get("error", "") for e in map(json.loads, invalid.stderr.splitlines()))
