"""Commands that show what the store knows: status, history, clients (locally or from a daemon)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.apps import app
from reconciler.cli.common import (
    OutputFormat,
    PathArg,
    abort,
    load_spec_set,
    open_cli_runtime,
    parse_targets,
    print_table,
    report_error,
    time_ago,
)
from reconciler.cli.remote import Server
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.structs.records import RunDetail


@app.command()
def status(
    path: Annotated[
        Path | None, typer.Argument(help="Specs to show (default: what the store knows).")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    server: Annotated[str | None, typer.Option(help="Ask a running daemon (its URL) instead.")] = None,
    token_env: Annotated[str, typer.Option(help="Env var holding the API token (with --server).")]
    = "RECONCILER_TOKEN",
) -> None:
    """Objects with their last run and, for SyncJobs, their schedule and next run."""
    from reconciler.status import StatusRow, object_statuses

    if server is not None:
        answer = Server(server, token_env=token_env).get("/api/v1/objects")
        show_status([StatusRow.model_validate(r) for r in answer], output)
        return
    try:
        specs = load_spec_set(path) if path is not None else None
        runtime = open_cli_runtime()
    except ReconcilerError as exc:
        raise report_error(exc) from None
    try:
        rows = object_statuses(runtime.store, specs, now=datetime.now(UTC))
    finally:
        runtime.close()
    show_status(rows, output)


def show_status(rows: list[Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.model_dump(mode="json", by_alias=True) for r in rows], indent=2))
        return
    now = datetime.now(UTC)
    print_table(
        ("OBJECT", "READY", "DRIFTED", "LAST RUN", "RESULT", "SCHEDULE", "SUSPENDED", "NEXT RUN", "MESSAGE"),
        ((row.object,
          row.ready,
          f"True ({len(row.drifted)})" if row.drifted else "-",
          time_ago(row.last_run_time, now),
          row.result or "-",
          row.schedule or "-",
          "-" if row.suspended is None else str(row.suspended),
          time_ago(row.next_run_time, now),
          row.message) for row in rows))


@app.command()
def clients(
    path: PathArg,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    server: Annotated[str | None, typer.Option(help="Ask a running daemon (its URL) instead.")] = None,
    token_env: Annotated[str, typer.Option(help="Env var holding the API token (with --server).")]
    = "RECONCILER_TOKEN",
) -> None:
    """Every AgentConfig target (object, client, scope): files, last sync, drift, pending
    proposals and the client's own CLI check (held = not synced since its check failed)."""
    from reconciler.drivers.agents.overview import ClientRow, client_rows

    if server is not None:
        rows = [ClientRow.model_validate(r)
                for r in Server(server, token_env=token_env).get("/api/v1/clients")]
    else:
        try:
            specs = load_spec_set(path)
            runtime = open_cli_runtime()
        except ReconcilerError as exc:
            raise report_error(exc) from None
        try:
            rows = client_rows(runtime.store, specs)
        finally:
            runtime.close()
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False))
        return
    now = datetime.now(UTC)
    lines: list[tuple[str, ...]] = []
    for row in rows:
        check = row.validation
        state = "held: " + str(check.get("message")) if check.get("held") else str(check.get("state"))
        synced = row.last_sync or {}
        at = datetime.fromisoformat(synced["at"]) if synced.get("at") else None
        lines.append((
            row.object, row.client, row.scope, row.root,
            "\n".join(f.path + ("" if f.exists else " (absent)") for f in row.files) or "-",
            f"{time_ago(at, now)} {synced.get('outcome', '')}".strip(),
            str(len(row.drifted)) if row.drifted else "-",
            "-" if row.pending_proposals is None else str(row.pending_proposals),
            state,
        ))
    print_table(("OBJECT", "CLIENT", "SCOPE", "ROOT", "FILES", "LAST SYNC", "DRIFTED", "PROPOSALS", "CHECK"),
                lines)


@app.command()
def history(
    target: Annotated[str | None, typer.Argument(help="KIND/NAME (default: all targets).")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    run: Annotated[
        str | None, typer.Option("--run", help="Show one run (id or prefix) with its changes.")
    ] = None,
    server: Annotated[str | None, typer.Option(help="Ask a running daemon (its URL) instead.")] = None,
    token_env: Annotated[str, typer.Option(help="Env var holding the API token (with --server).")]
    = "RECONCILER_TOKEN",
) -> None:
    """Past runs, newest first (the store keeps every run)."""
    if server is not None:
        if run is not None:
            path, params = f"/api/v1/runs/{run}", None
        elif target is not None:
            ref = parse_targets([target])[0]
            path = f"/api/v1/objects/{ref.kind}/{ref.name}/history"
            params = {"limit": limit, "namespace": ref.namespace}
        else:
            raise abort("history --server needs KIND/NAME or --run ID")
        answer = Server(server, token_env=token_env).get(path, params=params)
        if output is OutputFormat.json:
            typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            return
        from reconciler.structs.records import RunDetail, RunRecord

        if run is None:
            _show_runs_table([RunRecord.model_validate(r) for r in answer])
        elif answer["run"].get("outcome") == "queued":  # accepted, waiting for its target's lock
            typer.echo(f"run {answer['run']['id']} {answer['run']['kind']}/{answer['run']['name']} queued")
        else:
            _show_run_detail(RunDetail.model_validate(answer))
        return
    try:
        refs = parse_targets([target] if target else None)
        runtime = open_cli_runtime()
    except ReconcilerError as exc:
        raise report_error(exc) from None
    try:
        if run is not None:
            from reconciler.status import run_detail

            detail = run_detail(runtime.store, run, rejects_limit=None if output is OutputFormat.json else 51)
            if detail is None:
                raise abort(f"no run with id {run!r} (or the prefix is ambiguous)")
            if output is OutputFormat.json:
                typer.echo(json.dumps(detail.model_dump(mode="json"), indent=2, ensure_ascii=False))
                return
            _show_run_detail(detail)
            return
        records = runtime.store.runs(refs[0] if refs else None, limit=limit)
    finally:
        runtime.close()
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2, ensure_ascii=False))
        return
    _show_runs_table(records)


def _show_run_detail(detail: RunDetail) -> None:
    """One run as text: its outcome, error, changes and (the first 50) rejected rows."""
    record, changes, rejects = detail.run, detail.changes, detail.rejects[:50]
    typer.echo(
        f"run {record.id} {record.target.short} {record.outcome} "
        f"({record.trigger}, {record.mode}{', dry run' if record.dry_run else ''})"
    )
    if record.error:
        typer.echo(f"  error: {record.error}")
    sign = {"create": "+", "update": "~", "delete": "-"}
    if changes and (record.dry_run or record.outcome != "succeeded"):
        typer.echo("  planned, not applied:")  # a plan, or a run a guard or a failure stopped
    for change in changes:
        typer.echo(f"  {sign.get(change.action, '?')} {change.item} {change.key}")
    for reject in rejects:
        key = reject["key"] if reject["key"] is not None else "(a row without a key)"
        typer.echo(f"  ✗ rejected {key}: {reject['stage']}.{reject['rule']} "
                   f"({reject['column']}): {reject['message']}")
    if len(detail.rejects) > 50:
        typer.echo("  … more rejected rows: --output json lists them all")


def _show_runs_table(records: list[Any]) -> None:
    print_table(
        ("RUN", "STARTED", "TARGET", "TRIGGER", "MODE", "OUTCOME", "+", "~", "-", "=", "DURATION", "REVISION",
         "ERROR"),
        ((r.id,
          r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
          r.target.short,
          r.trigger,
          r.mode + (" (dry)" if r.dry_run else ""),
          r.outcome,
          *(str(r.counts[k]) for k in ("created", "updated", "deleted", "unchanged")),
          f"{r.duration_seconds:.2f}s" if r.duration_seconds is not None else "-",
          (r.revision or "-")[:12],
          (r.error or "")[:80]) for r in records),
        width=250)
