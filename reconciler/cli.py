"""The `reconciler` command: a thin front end over the loader, engine and store.

Each command turns its arguments into one engine call and its result into output and an
exit code; no domain logic lives here. User mistakes (`ReconcilerError`) print one clear
line (or one line per spec problem) and exit 1, never a traceback. Heavy modules are
imported inside the commands that need them to keep start-up fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.errors import ReconcilerError, SpecError

if TYPE_CHECKING:
    from reconciler.assembly import Runtime
    from reconciler.loading.specs import SpecSet
    from reconciler.settings import Settings
    from reconciler.structs.records import RunDetail
    from reconciler.structs.runs import RunResult

app = typer.Typer(
    name="reconciler",
    help="Declarative GitOps reconciler: specs in git, targets in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals held resolved keys and store URLs
    add_completion=False,
)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True,
                     pretty_exceptions_show_locals=False)
app.add_typer(db_app, name="db")
import_app = typer.Typer(help="Start a spec from the native files that exist.", no_args_is_help=True,
                         pretty_exceptions_show_locals=False)
app.add_typer(import_app, name="import")
from reconciler.reviewing_cli import review_app  # noqa: E402  (the commands use this module's helpers)

app.add_typer(review_app, name="review")
emulator_app = typer.Typer(help="Emulators of the sources, for tests and the quickstart.",
                           no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(emulator_app, name="emulator")
secrets_app = typer.Typer(help="Secrets in the OS keyring, for {keyring: {service, username}} references.",
                          no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(secrets_app, name="secrets")
from reconciler.web.accounts import users_app  # noqa: E402  (the dashboard's users)

app.add_typer(users_app, name="users")


class PlanFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class LogFormat(StrEnum):
    console = "console"
    json = "json"


class ModeOption(StrEnum):
    full = "full"
    incremental = "incremental"


_state: dict[str, Any] = {}

PathArg = Annotated[Path, typer.Argument(help="A spec file or a folder of specs.")]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", help="Only this object (KIND/NAME or KIND/NAMESPACE/NAME); repeatable."),
]
ModeOpt = Annotated[ModeOption, typer.Option(help="full or incremental reconciliation.")]


def _print_version(value: bool) -> None:
    if value:
        import importlib.metadata

        # The installed distribution's version: the one the release published (PyPI, image).
        typer.echo(f"reconciler {importlib.metadata.version('reconciler')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
    log_format: Annotated[
        LogFormat | None, typer.Option(help="console (default) or json; also RECONCILER_LOG_FORMAT.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    from reconciler.logs import configure
    from reconciler.settings import Settings

    overrides: dict[str, Any] = {}
    if log_format is not None:
        overrides["log_format"] = log_format.value
    if log_level is not None:
        overrides["log_level"] = log_level.lower()
    try:
        settings = Settings(**overrides)
    except Exception as exc:
        _fail(f"invalid settings: {exc}")
    configure(fmt=settings.log_format, level=settings.log_level)
    _state["settings"] = settings


def _settings() -> Settings:
    from reconciler.settings import Settings

    return _state.get("settings") or Settings()


def _fail(message: str, code: int = 1) -> typer.Exit:
    from reconciler.redaction import redact

    typer.echo(f"error: {redact(message)}", err=True)
    raise typer.Exit(code)


def _report(exc: ReconcilerError) -> typer.Exit:
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing was applied.", err=True)
        raise typer.Exit(1)
    return _fail(str(exc))


def _load(path: Path) -> SpecSet:
    from reconciler.assembly import load_drivers
    from reconciler.drivers.agents.specpatch import remember
    from reconciler.loading import load_specs

    _state["drivers"] = load_drivers(_settings())  # plugins may register kinds
    specs = load_specs(path, limits=_settings().loader_limits())
    remember(specs.origins)  # where each spec lives: write-back of accepted edits
    return specs


def _runtime() -> Runtime:
    from reconciler.assembly import open_runtime

    return open_runtime(_settings(), drivers=_state.get("drivers"))


def _targets(raw: list[str] | None) -> list[Any]:
    from reconciler.models import ObjectRef

    try:
        return [ObjectRef.parse(t) for t in raw or []]
    except ValueError as exc:
        raise ReconcilerError(f"--target: {exc}") from None


def _reconcile(path: Path, targets: list[str] | None, mode: ModeOption, dry_run: bool,
               verify: bool = False, refuse_drift: bool = False,
               specs: SpecSet | None = None) -> list[RunResult]:
    from reconciler.engine.batches import reconcile_set, select_targets
    from reconciler.models import Mode
    from reconciler.structs.runs import Trigger

    specs = specs if specs is not None else _load(path)
    runtime = _runtime()
    try:
        if not dry_run:  # `status` without a path then shows this folder's SyncJobs too
            from reconciler.status import declare

            declare(runtime.store, specs, whole=False)
        selection = select_targets(specs, runtime.drivers, _targets(targets))
        for obj in selection.without_driver:
            typer.echo(
                f"note: {obj.ref.short}: no driver for kind {obj.KIND} in this installation; skipped",
                err=True,
            )
        with _progress_bar() as progress:
            return asyncio.run(
                reconcile_set(
                    runtime.orchestrator,
                    selection.targets,
                    trigger=Trigger.MANUAL,
                    mode=Mode(mode.value),
                    dry_run=dry_run,
                    revision=specs.revision,
                    progress=progress,
                    verify=verify,
                    guards=_refuse_drift_guards() if refuse_drift else (),
                )
            )
    finally:
        runtime.close()


@contextlib.contextmanager
def _progress_bar() -> Iterator[Any]:
    """A rich progress bar on stderr for long runs (pages fetched, rows validated); only on a
    terminal, so scripts and CI logs stay plain."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        def update(description: str, done: int, total: int | None) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update


def _refuse_drift_guards() -> tuple[Any, ...]:
    from reconciler.engine.guards import RefuseDrift

    return (RefuseDrift(),)


def _show_plans(results: list[RunResult], fmt: PlanFormat, max_changes: int) -> list[Any]:
    from reconciler.engine.rendering import render

    plans = [r.plan for r in results if r.plan is not None]
    if results and not plans and fmt is not PlanFormat.json:
        return plans  # every target failed: its error says why, not "No objects to plan."
    color = fmt is PlanFormat.text and sys.stdout.isatty()
    output = render(plans, fmt.value, max_changes=max_changes, color=color)
    if color:
        from rich.console import Console

        Console(highlight=False).print(output)
    else:
        typer.echo(output)
    return plans


def _show_applied(results: list[RunResult]) -> None:
    from reconciler.engine.rendering.text import summary_line

    for result in results:
        summary = summary_line(result.plan) if result.plan else "-"
        if result.plan and not result.dry_run and result.outcome.value == "succeeded":
            summary = result.counts.summary()
        typer.echo(
            f"{result.target.short}: {result.outcome} ({summary}) "
            f"in {result.duration_seconds:.2f}s [run {result.run_id}]"
        )
        for warning in result.plan.warnings if result.plan else ():
            typer.echo(f"  ! {warning}")
        for key in result.reverted:
            typer.echo(f"  ↺ reverted {key}: it was changed outside the reconciler; the spec's value is "
                       "back (use --refuse-drift to stop instead)")
        for key in result.drift:
            typer.echo(f"  ≠ drift {key}: changed outside the reconciler, left as it is by policy")
        applied = result.plan is not None and not result.dry_run and result.outcome.value == "succeeded"
        for key in result.plan.takeovers if applied and result.plan else ():
            typer.echo(f"  ! took over {key}: it existed and was never written by the reconciler")
        for key in result.plan.pending if result.plan else ():
            typer.echo(f"  … pending {key}: declared by the spec, left unwritten by policy")


def _applied_json(result: RunResult) -> dict[str, Any]:
    """One run for `apply -o json`: what it did (`counts`) and, when planned, what it planned."""
    ref = result.target
    return {
        "kind": ref.kind, "namespace": ref.namespace, "name": ref.name, "runId": result.run_id,
        "outcome": str(result.outcome), "dryRun": result.dry_run, "mode": str(result.mode),
        "durationSeconds": round(result.duration_seconds, 3), "counts": result.counts.as_dict(),
        "planned": result.plan.counts.as_dict() if result.plan is not None else None,
        "warnings": list(result.plan.warnings) if result.plan is not None else [],
        "error": result.error, "failure": result.failure,
    }


def _print_failures(results: list[RunResult]) -> bool:
    failed = False
    for result in results:
        if not result.outcome.ok:
            failed = True
            typer.echo(f"error: {result.target.short}: {result.outcome}: {result.error}", err=True)
    return failed


@app.command()
def validate(path: PathArg = Path("specs")) -> None:
    """Check specs: syntax, schema, references. Exit 1 with file:line:col on problems."""
    try:
        specs = _load(path)
    except ReconcilerError as exc:
        raise _report(exc) from None
    kinds: dict[str, int] = {}
    for obj in specs:
        kinds[obj.KIND] = kinds.get(obj.KIND, 0) + 1
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    typer.echo(f"{len(specs)} object(s) valid" + (f" ({detail})" if detail else "") + f" in {path}")


@app.command()
def plan(
    path: PathArg = Path("specs"),
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="text, markdown or json.")
    ] = PlanFormat.text,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when nothing would change, 2 when something would (or drift was found), "
            "1 on errors.",
        ),
    ] = False,
    target: TargetOpt = None,
    mode: ModeOpt = ModeOption.full,
    max_changes: Annotated[int, typer.Option(help="Changes shown per target.")] = 100,
    base: Annotated[str | None, typer.Option(
        help="Pull-request review: plan only the objects that changed from this git revision to --head "
        "(PATH is then relative to the repository root).")] = None,
    head: Annotated[str | None, typer.Option(help="The revision under review (with --base).")] = None,
    path_option: Annotated[Path | None, typer.Option("--path", help="Same as PATH.")] = None,
    record: Annotated[bool, typer.Option(
        help="With --base/--head: record the planned runs in the store (--no-record: only read it, "
        "for read-only credentials in CI).")] = True,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Proof mode: apply each plan in a transaction on the target, observe again, check "
        "that a second diff is empty, roll back. Exit 1 when a proof fails.")] = False,
) -> None:
    """Show what apply would change (a dry run against the live targets)."""
    path = path_option or path
    if base is not None or head is not None:
        _plan_review(path, base, head, fmt, mode, max_changes, detailed_exitcode, record)
        return
    try:
        results = _reconcile(path, target, mode, dry_run=True, verify=verify)
    except ReconcilerError as exc:
        raise _report(exc) from None
    plans = _show_plans(results, fmt, max_changes)
    if _print_failures(results) or (verify and not _show_proofs(results)):
        raise typer.Exit(1)
    if detailed_exitcode and not all(p.in_sync for p in plans):
        raise typer.Exit(2)


def _show_proofs(results: list[RunResult]) -> bool:
    """One line per target on stderr (stdout may be JSON); True when every plan was proven."""
    proven = True
    for result in results:
        verification = result.plan.details.get("verification") if result.plan else None
        if verification is None:
            line, proven = "not verified (see the plan's warnings)", proven and result.plan is None
        elif verification.get("converged"):
            line = "proven: after applying the plan in a rolled-back transaction, a second diff is empty"
        else:
            line, proven = f"NOT proven: {verification.get('remaining')} change(s) left after applying", False
        typer.echo(f"verify: {result.target.short}: {line}", err=True)
    return proven


def _plan_review(path: Path, base: str | None, head: str | None, fmt: PlanFormat, mode: ModeOption,
                 max_changes: int, detailed_exitcode: bool, record: bool) -> None:
    """`plan --base REV --head REV`: the changed objects planned against the live targets."""
    from reconciler.assembly import load_drivers
    from reconciler.models import Mode
    from reconciler.review.rendering import (
        render_review_json,
        render_review_markdown,
        render_review_text,
    )
    from reconciler.review.reviewing import review_changes
    from reconciler.review.revisions import compare_revisions

    if base is None or head is None:
        raise _fail("--base and --head go together: plan what changed from --base to --head")
    try:
        _state["drivers"] = load_drivers(_settings())
        diff = compare_revisions(base=base, head=head, path=path, limits=_settings().loader_limits())
    except ReconcilerError as exc:
        raise _report(exc) from None
    runtime = _runtime()
    try:
        review = asyncio.run(review_changes(runtime.orchestrator, diff, mode=Mode(mode.value), record=record))
    finally:
        runtime.close()
    if fmt is PlanFormat.markdown:
        typer.echo(render_review_markdown(review, max_changes=max_changes, path=str(path)))
    elif fmt is PlanFormat.json:
        typer.echo(render_review_json(review))
    else:
        typer.echo(render_review_text(review, max_changes=max_changes, color=sys.stdout.isatty()))
    for target in review.targets:
        if target.failed and target.result is not None:
            typer.echo(f"error: {target.change.ref.short}: {target.result.error}", err=True)
    if review.errors:
        raise typer.Exit(1)
    if detailed_exitcode and review.changed:
        raise typer.Exit(2)


@app.command("pr-comment")
def pr_comment(
    repo: Annotated[str, typer.Option(help="The repository, OWNER/NAME.")],
    pr: Annotated[int, typer.Option(help="The pull request number.")],
    from_file: Annotated[Path, typer.Option("--from", help="The Markdown plan (plan --format markdown).")],
    token_env: Annotated[str, typer.Option(help="Env var holding the GitHub token.")] = "GITHUB_TOKEN",
    sha: Annotated[str | None, typer.Option(help="Commit for the status; default: the PR's head.")] = None,
    api_url: Annotated[str, typer.Option(
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).")] = "https://api.github.com",
    target_url: Annotated[str | None, typer.Option(
        help="Details link of the commit status; default: the plan comment.")] = None,
    marker: Annotated[str, typer.Option(help="Hidden marker that finds the comment again.")]
    = "reconciler-plan",
) -> None:
    """Post a Markdown plan as one sticky pull-request comment and set the commit status."""
    from reconciler.review.github import GitHub
    from reconciler.review.posting import post_plan

    token = _secret_env(token_env, "--token-env")
    try:
        markdown = from_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"--from {from_file}: cannot read: {exc.strerror}") from None
    try:
        with GitHub(repo=repo, token=token, base_url=api_url) as gh:
            result = post_plan(gh, pr=pr, markdown=markdown, marker=marker, sha=sha, target_url=target_url)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except ReconcilerError as exc:
        raise _report(exc) from None
    typer.echo(f"{repo}#{pr}: {len(result.comment_ids)} comment part(s) ({result.created} created, "
               f"{result.updated} updated, {result.deleted} deleted, {result.unchanged} unchanged) "
               f"{result.url}")
    typer.echo(f"status reconciler/plan on {result.sha[:8]}: {result.state} ({result.description})")


@app.command()
def apply(
    path: PathArg = Path("specs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and record, write nothing.")] = False,
    target: TargetOpt = None,
    mode: ModeOpt = ModeOption.full,
    refuse_drift: Annotated[bool, typer.Option(
        "--refuse-drift", help="Stop (write nothing, exit 1) instead of reverting keys that were "
        "changed outside the reconciler.")] = False,
    output: Annotated[OutputFormat, typer.Option(
        "--output", "-o", help="json: one line per run (outcome and counts) on stdout, for scripts.")]
    = OutputFormat.table,
) -> None:
    """Reconcile the targets with the specs: apply only the difference."""
    try:
        results = _reconcile(path, target, mode, dry_run=dry_run, refuse_drift=refuse_drift)
    except ReconcilerError as exc:
        raise _report(exc) from None
    if output is OutputFormat.json:
        for result in results:
            typer.echo(json.dumps(_applied_json(result), ensure_ascii=False))
    else:
        _show_applied(results)
    if _print_failures(results):
        raise typer.Exit(1)


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = int((now - when).total_seconds())
    if abs(seconds) < 2:
        return "now"
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds // size}{unit}"
            break
    else:
        text = f"{seconds}s"
    return f"in {text}" if future else f"{text} ago"


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
        import httpx

        response = httpx.get(f"{server.rstrip('/')}/api/v1/objects",
                             headers={"Authorization": f"Bearer {_secret_env(token_env, '--token-env')}"})
        if response.status_code >= 400:
            raise _fail(f"{server}: {response.status_code} {response.json().get('detail', response.text)}")
        _show_status([StatusRow.model_validate(r) for r in response.json()], output)
        return
    try:
        specs = _load(path) if path is not None else None
        runtime = _runtime()
    except ReconcilerError as exc:
        raise _report(exc) from None
    try:
        rows = object_statuses(runtime.store, specs, now=datetime.now(UTC))
    finally:
        runtime.close()
    _show_status(rows, output)


def _show_status(rows: list[Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.model_dump(mode="json", by_alias=True) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False)
    for column in ("OBJECT", "READY", "DRIFTED", "LAST RUN", "RESULT", "SCHEDULE", "SUSPENDED", "NEXT RUN",
                   "MESSAGE"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.object,
            row.ready,
            f"True ({len(row.drifted)})" if row.drifted else "-",
            _ago(row.last_run_time, now),
            row.result or "-",
            row.schedule or "-",
            "-" if row.suspended is None else str(row.suspended),
            _ago(row.next_run_time, now),
            row.message,
        )
    Console(width=200).print(table)


ServiceArg = Annotated[str, typer.Argument(help="The keyring service, as in {keyring: {service}}.")]
UsernameArg = Annotated[str, typer.Argument(help="The keyring username, as in {keyring: {username}}.")]


@secrets_app.command("set")
def secrets_set(service: ServiceArg, username: UsernameArg) -> None:
    """Store a secret in the OS keyring. The value is read from a hidden prompt (typed twice)
    or, when stdin is not a terminal, from stdin (one trailing newline dropped); never from an
    argument, so it stays out of shell history and process lists."""
    from reconciler.loading.secrets import store_keyring

    if sys.stdin.isatty():
        value = typer.prompt(f"Value for {service}/{username}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    try:
        backend = store_keyring(service, username, value)
    except ReconcilerError as exc:
        raise _report(exc) from None
    typer.echo(f"stored keyring:{service}/{username} ({backend}); reference it as "
               f"{{keyring: {{service: {service}, username: {username}}}}}")


@secrets_app.command("delete")
def secrets_delete(service: ServiceArg, username: UsernameArg) -> None:
    """Remove a secret from the OS keyring."""
    from reconciler.loading.secrets import delete_keyring

    try:
        delete_keyring(service, username)
    except ReconcilerError as exc:
        raise _report(exc) from None
    typer.echo(f"deleted keyring:{service}/{username}")


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
        import httpx

        response = httpx.get(f"{server.rstrip('/')}/api/v1/clients",
                             headers={"Authorization": f"Bearer {_secret_env(token_env, '--token-env')}"})
        if response.status_code >= 400:
            raise _fail(f"{server}: {response.status_code} {response.json().get('detail', response.text)}")
        rows = [ClientRow.model_validate(r) for r in response.json()]
    else:
        try:
            specs = _load(path)
            runtime = _runtime()
        except ReconcilerError as exc:
            raise _report(exc) from None
        try:
            rows = client_rows(runtime.store, specs)
        finally:
            runtime.close()
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False)
    for column in ("OBJECT", "CLIENT", "SCOPE", "ROOT", "FILES", "LAST SYNC", "DRIFTED", "PROPOSALS",
                   "CHECK"):
        table.add_column(column)
    for row in rows:
        check = row.validation
        state = "held: " + str(check.get("message")) if check.get("held") else str(check.get("state"))
        synced = row.last_sync or {}
        at = datetime.fromisoformat(synced["at"]) if synced.get("at") else None
        table.add_row(
            row.object, row.client, row.scope, row.root,
            "\n".join(f.path + ("" if f.exists else " (absent)") for f in row.files) or "-",
            f"{_ago(at, now)} {synced.get('outcome', '')}".strip(),
            str(len(row.drifted)) if row.drifted else "-",
            "-" if row.pending_proposals is None else str(row.pending_proposals),
            state,
        )
    Console(width=200).print(table)


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
        import httpx

        headers = {"Authorization": f"Bearer {_secret_env(token_env, '--token-env')}"}
        if run is not None:
            url = f"{server.rstrip('/')}/api/v1/runs/{run}"
        elif target is not None:
            ref = _targets([target])[0]
            url = f"{server.rstrip('/')}/api/v1/objects/{ref.kind}/{ref.name}/history"
        else:
            raise _fail("history --server needs KIND/NAME or --run ID")
        response = httpx.get(url, headers=headers, params={"limit": limit} if run is None else None)
        if response.status_code >= 400:
            raise _fail(f"{server}: {response.status_code} {response.json().get('detail', response.text)}")
        if output is OutputFormat.json:
            typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
            return
        from reconciler.structs.records import RunDetail, RunRecord

        answer = response.json()
        if run is None:
            _show_runs_table([RunRecord.model_validate(r) for r in answer])
        elif answer["run"].get("outcome") == "queued":  # accepted, waiting for its target's lock
            typer.echo(f"run {answer['run']['id']} {answer['run']['kind']}/{answer['run']['name']} queued")
        else:
            _show_run_detail(RunDetail.model_validate(answer))
        return
    try:
        refs = _targets([target] if target else None)
        runtime = _runtime()
    except ReconcilerError as exc:
        raise _report(exc) from None
    try:
        if run is not None:
            from reconciler.status import run_detail

            detail = run_detail(runtime.store, run, rejects_limit=None if output is OutputFormat.json else 51)
            if detail is None:
                raise _fail(f"no run with id {run!r} (or the prefix is ambiguous)")
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
    for change in changes:
        typer.echo(f"  {sign.get(change.action, '?')} {change.item} {change.key}")
    for reject in rejects:
        typer.echo(f"  ✗ rejected {reject['key']}: {reject['stage']}.{reject['rule']} "
                   f"({reject['column']}): {reject['message']}")
    if len(detail.rejects) > 50:
        typer.echo("  … more rejected rows: --output json lists them all")


def _show_runs_table(records: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in (
        "RUN",
        "STARTED",
        "TARGET",
        "TRIGGER",
        "MODE",
        "OUTCOME",
        "+",
        "~",
        "-",
        "=",
        "DURATION",
        "REVISION",
        "ERROR",
    ):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.id,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.target.short,
            r.trigger,
            r.mode + (" (dry)" if r.dry_run else ""),
            r.outcome,
            *(str(r.counts[k]) for k in ("created", "updated", "deleted", "unchanged")),
            f"{r.duration_seconds:.2f}s" if r.duration_seconds is not None else "-",
            (r.revision or "-")[:12],
            (r.error or "")[:80],
        )
    Console(width=250).print(table)


@app.command()
def rollback(
    target: Annotated[str, typer.Argument(help="The object, KIND/NAME (for example AgentConfig/team).")],
    to: Annotated[str, typer.Option("--to", help="Restore the target as it was right after this run "
                                    "(id or prefix, see `reconciler history`).")],
    path: Annotated[Path, typer.Option("--specs", help="Where the object's spec is.")] = Path("specs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the rollback plan only.")] = False,
) -> None:
    """Restore a target's files from the snapshots of a past run, as a recorded run."""
    from reconciler.engine.rendering import render
    from reconciler.structs.runs import Trigger

    try:
        ref = _targets([target])[0]
        specs = _load(path)
        obj = next((o for o in specs if o.ref == ref or (o.KIND, o.metadata.name) == (ref.kind, ref.name)),
                   None)
        if obj is None:
            raise ReconcilerError(f"{target}: no such object in {path}")
        runtime = _runtime()
    except ReconcilerError as exc:
        raise _report(exc) from None
    try:
        record = runtime.store.run(to)
        if record is None or record.target != obj.ref:
            raise _fail(f"no run {to!r} of {obj.ref.short} (or the prefix is ambiguous); "
                        f"see `reconciler history {obj.ref.short}`")
        result = asyncio.run(runtime.orchestrator.run(
            obj, trigger=Trigger.ROLLBACK, dry_run=dry_run, revision=specs.revision,
            rollback_to=record.id))
    finally:
        runtime.close()
    if result.plan is not None:
        typer.echo(render([result.plan], "text"))
    typer.echo(f"{obj.ref.short}: rollback to run {record.id}: {result.outcome} [run {result.run_id}]")
    if _print_failures([result]):
        raise typer.Exit(1)


@import_app.command("agents")
def import_agents(
    client: Annotated[str, typer.Option("--client", help="claude-code, codex, qwen-code, rovo-dev, "
                                        "gemini-cli or cursor.")],
    scope: Annotated[str, typer.Option(help="user or project.")] = "project",
    root: Annotated[str | None, typer.Option(help="Home (user scope) or project folder; "
                                             "default ~ or '.'.")] = None,
    name: Annotated[str, typer.Option(help="metadata.name of the AgentConfig printed.")] = "imported",
) -> None:
    """Print an AgentConfig spec (YAML) read from one client's existing native files."""
    from reconciler.drivers.agents.importing import import_spec, to_yaml
    from reconciler.models.agents import AgentClient, AgentConfig, TargetScope

    try:
        client_ = AgentClient(client)
        scope_ = TargetScope(scope)
    except ValueError as exc:
        raise _fail(f"{exc}; expected --client one of {', '.join(c.value for c in AgentClient)} "
                    "and --scope user or project") from None
    try:
        document = import_spec(client_, scope_, root or ("~" if scope_ is TargetScope.USER else "."),
                               name, lambda message: typer.echo(f"warning: {message}", err=True))
    except ReconcilerError as exc:
        raise _report(exc) from None
    try:
        AgentConfig.model_validate(document)
    except Exception as exc:
        raise _fail(f"the imported files do not make a valid AgentConfig: {exc}") from None
    typer.echo(to_yaml(document), nl=False)


@emulator_app.command("egen")
def emulator_egen(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8089,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    count: Annotated[int, typer.Option(help="Records in the synthetic registry.")] = 81464,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data set.")] = 20251201,
    changed_fraction: Annotated[float, typer.Option(help="Share of records changed, added and removed "
                                                    "(a day of changes).")] = 0.0,
    dirty_fraction: Annotated[float, typer.Option(
        help="Share of records with problems for validation.")] = 0.0,
    fault: Annotated[list[str] | None, typer.Option(help="Misbehaviour, repeatable: quota:page=3, "
                                                    "http500:page=2,times=10, slow:page=4,seconds=2, "
                                                    "truncate:page=5, empty, unregistered-key, …")] = None,
) -> None:
    """Serve an emulator of the national AED open API (data.go.kr B552657) over HTTP."""
    from reconciler.emulator.egen import serve

    try:
        serve(port=port, host=host, count=count, seed=seed, changed_fraction=changed_fraction,
              dirty_fraction=dirty_fraction, faults=list(fault or []))
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _duration(text: str, option: str) -> float:
    from pydantic import TypeAdapter, ValidationError

    from reconciler.models.common import Duration

    try:
        return float(TypeAdapter(Duration).validate_python(text).total_seconds())
    except ValidationError:
        raise _fail(f"{option}: expected a duration such as 30s or 5m, got {text!r}") from None


def _secret_env(name: str, option: str) -> str:
    import os

    from reconciler.redaction import remember

    value = os.environ.get(name)
    if not value:
        raise _fail(f"{option} {name}: the environment variable is not set")
    remember(value)
    return value


@app.command()
def serve(
    specs: Annotated[Path | None, typer.Option("--specs", help="A folder of specs to serve.")] = None,
    git: Annotated[str | None, typer.Option("--git",
                                            help="A git repository URL (or path) to follow.")] = None,
    git_credentials: Annotated[str | None, typer.Option(
        help="Credentials for an HTTP(S) --git URL: env:NAME or file:PATH holding USER:TOKEN "
             "(or a token alone).")] = None,
    branch: Annotated[str, typer.Option(help="The branch to follow.")] = "main",
    path: Annotated[str, typer.Option(help="The folder of specs inside the repository.")] = ".",
    write_back: Annotated[str | None, typer.Option(
        "--write-back", help="With --git: push accepted proposals' commits to this branch of the remote "
        "(never the watched --branch). Without it they stay on a local branch for you to push.")] = None,
    poll: Annotated[str, typer.Option(help="How often to fetch the branch (a duration).")] = "30s",
    host: Annotated[str, typer.Option(help="Address of the HTTP API.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the HTTP API.")] = 8080,
    admin_token_env: Annotated[list[str] | None, typer.Option(
        help="Env var holding an admin API token (repeatable).")] = None,
    viewer_token_env: Annotated[list[str] | None, typer.Option(
        help="Env var holding a viewer API token (repeatable).")] = None,
    webhook_secret_env: Annotated[str | None, typer.Option(
        help="Env var holding the git webhook secret (HMAC or GitLab token).")] = None,
    grace: Annotated[str, typer.Option(help="How long running applies may finish on SIGTERM.")] = "60s",
) -> None:
    """Run the daemon: scheduler, spec watcher (folder or git), HTTP API and events."""
    from reconciler.access import Role, TokenTable
    from reconciler.daemon import DaemonOptions
    from reconciler.daemon import serve as run_daemon
    from reconciler.logs import LogBuffer, configure

    if (specs is None) == (git is None):
        raise _fail("serve needs exactly one of --specs PATH or --git URL")
    if write_back is not None and git is None:
        raise _fail("--write-back goes with --git URL")
    if write_back is not None and write_back == branch:
        raise _fail(f"--write-back {write_back}: that is the watched branch (--branch); accepted proposals "
                    "are pushed to another branch, the watched branch's history is never rewritten")
    tokens = TokenTable()
    for name in admin_token_env or []:
        tokens.add(_secret_env(name, "--admin-token-env"), Role.ADMIN)
    for name in viewer_token_env or []:
        tokens.add(_secret_env(name, "--viewer-token-env"), Role.VIEWER)
    if not tokens.digests:
        typer.echo("note: no API token configured: only /healthz, /readyz and /metrics answer", err=True)
    settings = _settings()
    logs = LogBuffer()
    configure(fmt=settings.log_format, level=settings.log_level, buffer=logs)
    if git_credentials and git is None:
        raise _fail("--git-credentials goes with --git URL")
    options = DaemonOptions(specs=specs, git_url=git, git_credentials=git_credentials, branch=branch,
                            path=path, write_back=write_back,
                            poll_seconds=_duration(poll, "--poll"), host=host, port=port, tokens=tokens,
                            webhook_secret=_secret_env(webhook_secret_env, "--webhook-secret-env")
                            if webhook_secret_env else None, grace_seconds=_duration(grace, "--grace"))
    try:
        run_daemon(settings, options, logs)
    except ReconcilerError as exc:
        raise _report(exc) from None


@app.command("run")
def run_object(
    target: Annotated[str, typer.Argument(help="KIND/NAME (a SyncJob runs its target with its mode).")],
    path: Annotated[Path, typer.Option("--specs", help="Where the object's spec is.")] = Path("specs"),
    mode: Annotated[ModeOption | None, typer.Option(help="full or incremental.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only.")] = False,
    even_if_suspended: Annotated[bool, typer.Option(
        "--even-if-suspended", help="Run even though the object is suspended (recorded as such).")] = False,
    server: Annotated[str | None, typer.Option(help="Ask a running daemon instead (its URL).")] = None,
    token_env: Annotated[str, typer.Option(help="Env var holding the API token (with --server).")]
    = "RECONCILER_TOKEN",
    wait: Annotated[bool, typer.Option("--wait", help="With --server: wait for the run to end, print its "
                                       "outcome, exit 1 if it failed.")] = False,
    timeout: Annotated[str, typer.Option(help="With --wait: give up waiting after this long (at most 1h); "
                                         "the run goes on.")] = "10m",
) -> None:
    """Run one object now (a forced run, recorded with its trigger)."""
    from reconciler.models import Mode
    from reconciler.structs.runs import Trigger

    if server is not None:
        body = {"dryRun": dry_run, "evenIfSuspended": even_if_suspended,
                **({"mode": mode.value} if mode else {})}
        _run_on_server(server, target, token_env=token_env, wait=wait,
                       timeout=_duration(timeout, "--timeout"), body=body)
        return
    if wait:
        raise _fail("--wait goes with --server (a local run always waits)")
    from reconciler.runtime.control import Controller

    try:
        ref = _targets([target])[0]
        specs = _load(path)
        runtime = _runtime()
    except ReconcilerError as exc:
        raise _report(exc) from None
    try:
        import getpass

        controller = Controller(runtime, specs)
        result = asyncio.run(controller.run_now(
            ref, trigger=Trigger.MANUAL, mode=Mode(mode.value) if mode else None, dry_run=dry_run,
            even_if_suspended=even_if_suspended, actor=f"cli:{getpass.getuser()}"))
    except ReconcilerError as exc:
        raise _report(exc) from None
    finally:
        runtime.close()
    _show_applied([result])
    if _print_failures([result]):
        raise typer.Exit(1)


def _run_on_server(server: str, target: str, *, token_env: str, wait: bool, timeout: float,
                   body: dict[str, Any]) -> None:
    """`run --server`: the daemon's forced run (POST .../run), its id printed; with --wait its
    outcome, exit 1 when it failed or did not end within `timeout`."""
    import httpx

    from reconciler.runtime.control import MAX_RUN_WAIT_SECONDS

    ref = _targets([target])[0]
    if timeout > MAX_RUN_WAIT_SECONDS:
        raise _fail(f"--timeout: expected at most {MAX_RUN_WAIT_SECONDS:.0f}s, got {timeout:.0f}s")
    params: dict[str, Any] = {"namespace": ref.namespace}
    if wait:
        params.update(wait="true", timeout=timeout)
    base = server.rstrip("/")
    try:
        response = httpx.post(f"{base}/api/v1/objects/{ref.kind}/{ref.name}/run", params=params, json=body,
                              headers={"Authorization": f"Bearer {_secret_env(token_env, '--token-env')}"},
                              timeout=httpx.Timeout(30.0, read=timeout + 30.0))
    except httpx.HTTPError as exc:
        raise _fail(f"{server}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise _fail(f"{server}: {response.status_code} {response.json().get('detail', response.text)}")
    answer = response.json()
    run_id = answer.get("runId")
    follow = f"reconciler history --server {server} --run {run_id}"
    if not wait:
        typer.echo(f"{ref.short}: run {run_id} accepted by {server}; follow it with `{follow}`")
        return
    if not answer.get("finished"):
        typer.echo(f"{ref.short}: run {run_id} still running after {timeout:g}s; follow it with `{follow}`",
                   err=True)
        raise typer.Exit(1)
    run = answer.get("run") or {}
    from reconciler.structs.plans import Counts

    summary = Counts(**(run.get("counts") or {})).summary()
    duration = run.get("duration_seconds")
    typer.echo(f"{ref.short}: {answer['outcome']} ({summary})"
               + (f" in {duration:.2f}s" if duration is not None else "") + f" [run {run_id}]")
    for warning in run.get("warnings") or ():
        typer.echo(f"  ! {warning}")
    if not answer.get("ok"):
        typer.echo(f"error: {ref.short}: {answer['outcome']}: {answer.get('error')}", err=True)
        raise typer.Exit(1)


@app.command()
def operator(
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", help="Watch this namespace (repeatable); default: all namespaces.")] = None,
    port: Annotated[int, typer.Option(help="Port of the health, metrics and status API.")] = 8080,
    priority: Annotated[int, typer.Option(help="kopf peering priority; give each replica its own.")] = 0,
    tick: Annotated[str, typer.Option(help="How often SyncJob schedules are checked.")] = "10s",
    peering: Annotated[str, typer.Option(
        help="kopf peering object shared by the replicas (not the one of other kopf operators).")]
    = "default",
    admin_token_env: Annotated[list[str] | None, typer.Option(
        help="Env var with an admin API token.")] = None,
    viewer_token_env: Annotated[list[str] | None, typer.Option(
        help="Env var with a viewer API token.")] = None,
    scan: Annotated[bool, typer.Option(
        help="Watch for namespaces and CRDs appearing later (--no-scan: the given namespaces only, "
        "no cluster-wide list rights needed).")] = True,
) -> None:
    """Run the Kubernetes operator (kopf) with the HTTP API for probes and metrics."""
    from reconciler.access import Role, TokenTable
    from reconciler.operator.running import run_operator

    tokens = TokenTable()
    for name in admin_token_env or []:
        tokens.add(_secret_env(name, "--admin-token-env"), Role.ADMIN)
    for name in viewer_token_env or []:
        tokens.add(_secret_env(name, "--viewer-token-env"), Role.VIEWER)
    run_operator(_settings(), namespaces=list(namespace or []), port=port, priority=priority,
                 tick_seconds=_duration(tick, "--tick"), tokens=tokens, peering=peering, scan=scan)


def _embedded(kind: str) -> bool:
    """What the quickstart runs: kinds registered as running on embedded defaults (targets
    that are local files or SQLite, with the emulator): `KindInfo.embedded`."""
    from reconciler.kinds import REGISTRY

    info = REGISTRY.find(kind)
    return info is not None and info.embedded


@app.command()
def quickstart(
    path: PathArg = Path("specs"),
    port: Annotated[int, typer.Option(help="Port of the AED emulator.")] = 8089,
) -> None:
    """The main job on embedded defaults: start the AED emulator, then plan, apply and show status.

    Unless set, EGEN_SERVICE_KEY is a demo key and AED_DATABASE_URL a SQLite file in the
    state directory; the AgentConfig renders into its sandbox folder. Sources that name the
    local emulator (127.0.0.1:8089) are pointed at --port. An object whose plan fails is
    shown with its error and not applied; the command then exits 1."""
    import os

    from reconciler.emulator.egen import SERVICE_PATH, EgenEmulator
    from reconciler.emulator.pointing import is_emulator, point_at_emulator

    settings = _settings()
    os.environ.setdefault("EGEN_SERVICE_KEY", "quickstart-demo-key")
    os.environ.setdefault("AED_DATABASE_URL", f"sqlite:///{settings.state_dir / 'aed.db'}")
    emulator: EgenEmulator | None
    emulator = EgenEmulator(port=port)
    try:
        emulator_url = emulator.start()
        typer.echo(f"AED emulator: {emulator_url}")
    except OSError as exc:
        emulator = None
        emulator_url = f"http://127.0.0.1:{port}{SERVICE_PATH}"
        if not is_emulator(emulator_url):
            raise _fail(f"port {port} is busy ({exc.strerror}) and what answers there is not the AED "
                        "emulator; give a free port with --port") from None
        typer.echo(f"note: port {port} is busy; using the AED emulator already there ({emulator_url})",
                   err=True)
    planned: list[RunResult] = []
    results: list[RunResult] = []
    try:
        from reconciler.status import object_statuses

        pointed = point_at_emulator(_load(path), emulator_url)
        for ref in pointed.moved:
            typer.echo(f"{ref.short}: source pointed at the emulator on port {port}")
        runnable = []
        for obj in pointed.specs:
            if _embedded(obj.KIND):
                runnable.append(str(obj.ref))
            elif obj.KIND != "SyncJob":  # e.g. an RbacMapping needs a DICOM archive of its own
                typer.echo(f"note: {obj.ref.short} skipped: {obj.KIND} does not run on the embedded "
                           "defaults (see examples/README.md)", err=True)
        if not runnable:
            raise _fail("no object in the specs can run on the embedded defaults")
        typer.echo("\n== plan ==")
        planned = _reconcile(path, runnable, ModeOption.full, dry_run=True, specs=pointed.specs)
        _show_plans(planned, PlanFormat.text, 5)
        failed = [r for r in planned if not r.outcome.ok]
        for result in failed:
            typer.echo(f"{result.target.short}: plan failed: {result.error}")
        typer.echo("\n== apply ==")
        applicable = [str(r.target) for r in planned if r.outcome.ok]
        if applicable:
            results = _reconcile(path, applicable, ModeOption.full, dry_run=False, specs=pointed.specs)
        _show_applied(results)
        for result in failed:
            typer.echo(f"{result.target.short}: not applied: its plan failed")
        typer.echo("\n== status ==")
        runtime = _runtime()
        try:
            rows = object_statuses(runtime.store, pointed.specs, now=datetime.now(UTC))
        finally:
            runtime.close()
        _show_status(rows, OutputFormat.table)
    except ReconcilerError as exc:
        raise _report(exc) from None
    finally:
        if emulator is not None:
            emulator.stop()
    if _print_failures([*planned, *results]):
        raise typer.Exit(1)


def _all_kinds() -> tuple[Any, ...]:
    """Every registered kind's model: the built-ins, plus plugin kinds when plugins are set."""
    from reconciler.assembly import load_drivers
    from reconciler.kinds import REGISTRY

    load_drivers(_settings())  # imports RECONCILER_PLUGINS, which may register kinds
    return tuple(info.load_model() for info in REGISTRY.all())


def _write_generated(files: dict[str, str], out: Path, check: bool) -> None:
    stale = [
        name
        for name, content in files.items()
        if not (out / name).exists() or (out / name).read_text(encoding="utf-8") != content
    ]
    if check:
        if stale:
            _fail(f"{len(stale)} generated file(s) in {out} differ from the models: {', '.join(stale)}")
        typer.echo(f"{len(files)} file(s) in {out} are up to date")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")
    typer.echo(f"wrote {len(files)} file(s) to {out} ({len(stale)} changed)")


CheckOpt = Annotated[bool, typer.Option("--check", help="Only verify the files are up to date.")]


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("specs/schemas"), check: CheckOpt = False
) -> None:
    """Write the JSON Schemas of every kind (for editors)."""
    from reconciler.artifacts import render_json_schemas

    _write_generated(render_json_schemas(_all_kinds()), out, check)


@app.command()
def crds(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("charts/reconciler/crds"),
    check: CheckOpt = False,
) -> None:
    """Write the CustomResourceDefinitions of every kind."""
    from reconciler.artifacts import render_crds

    _write_generated(render_crds(_all_kinds()), out, check)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's schema (Alembic migrations)."""
    from reconciler.store.migrating import HEAD_REVISION, upgrade
    from reconciler.store.repository import Store

    settings = _settings()
    try:
        store = Store.open(settings.store_url(), migrate=False)
        before = upgrade(store.engine)
        store.close()
    except ReconcilerError as exc:
        raise _report(exc) from None
    typer.echo(f"store at revision {HEAD_REVISION} (was {before or 'empty'})")


@db_app.command("prune")
def db_prune(
    keep: Annotated[int | None, typer.Option("--keep", min=1,
                                             help="Keep the newest N runs of each object.")] = None,
    older_than: Annotated[str | None, typer.Option("--older-than", help="Remove runs older than this "
                                                   "(30d, 12h), beyond the --keep newest.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Show what would be removed; remove nothing.")] = False,
) -> None:
    """Remove old runs with their changes, events and snapshots (history retention).

    Without options, the configured retention (RECONCILER_HISTORY_RETENTION_*) applies;
    with --keep or --older-than, those options alone decide. The newest run of each
    object is always kept."""
    import getpass
    from datetime import UTC, datetime, timedelta

    from reconciler.store.pruning import RetentionPolicy, prune_history
    from reconciler.store.repository import Store

    settings = _settings()
    if keep is None and older_than is None:
        policy = settings.history_retention()
    else:
        max_age = timedelta(seconds=_duration(older_than, "--older-than")) if older_than else None
        policy = RetentionPolicy(keep=keep or 0, max_age=max_age)
    if not policy.enabled:
        raise _fail("no retention configured: give --keep N or --older-than DURATION, or set "
                    "RECONCILER_HISTORY_RETENTION_KEEP / RECONCILER_HISTORY_RETENTION_MAX_AGE")
    try:
        store = Store.open(settings.store_url())
        try:
            report = prune_history(store, policy=policy, now=datetime.now(UTC), dry_run=dry_run,
                                   actor=f"cli:{getpass.getuser()}")
        finally:
            store.close()
    except ReconcilerError as exc:
        raise _report(exc) from None
    typer.echo(f"keeping {policy.describe()}")
    for line in report.lines():
        typer.echo(line)


def main() -> None:
    """The console entry point: run the command, then leave without interpreter teardown.

    Every command closes what it opened (store, files) before it returns, so the exit
    skips only the garbage collection of imported modules (about 70 ms of a 0.45 s
    no-op apply, as Mercurial does for its CLI). Output is flushed first.
    """
    import os

    # No pydantic plugins are used here: skip pydantic's scan of every installed
    # distribution's entry points for them (its documented switch).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    code: int = 0
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    except Exception as exc:  # a bug: a plain traceback, never locals, secrets and URL userinfo masked
        from reconciler.redaction import redacted_traceback

        print(redacted_traceback(exc), file=sys.stderr, end="")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
