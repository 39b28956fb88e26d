"""What the commands share: options, the settings, loading specs, opening the runtime,
running the engine and printing its results, and how a user mistake is reported."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.errors import ReconcilerError, SpecError

if TYPE_CHECKING:
    from reconciler.assembly import Runtime
    from reconciler.loading.specs import SpecSet
    from reconciler.settings import Settings
    from reconciler.structs.runs import RunResult


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


cli_state: dict[str, Any] = {}


PathArg = Annotated[Path, typer.Argument(help="A spec file or a folder of specs.")]


TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", help="Only this object (KIND/NAME or KIND/NAMESPACE/NAME); repeatable."),
]


ModeOpt = Annotated[ModeOption, typer.Option(help="full or incremental reconciliation.")]


def current_settings() -> Settings:
    from reconciler.settings import Settings

    return cli_state.get("settings") or Settings()


def say_error(message: str, **fields: Any) -> None:
    """An error for the person at the terminal (`error: …` on stderr) or, with
    `--log-format json`, for the log collector: one JSON event at level error, so that
    stderr stays JSON lines. Secrets are masked either way."""
    from reconciler.redaction import redact

    if current_settings().log_format == "json":
        import structlog

        structlog.get_logger("reconciler.cli").error("command failed", error=message, **fields)
    else:
        typer.echo(f"error: {redact(message)}", err=True)


def abort(message: str, code: int = 1) -> typer.Exit:
    say_error(message)
    raise typer.Exit(code)


def report_error(exc: ReconcilerError) -> typer.Exit:
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            say_error(str(problem))
        summary = f"{len(exc.problems)} problem(s); nothing was applied."
        if current_settings().log_format == "json":
            say_error(summary, problems=len(exc.problems))
        else:
            typer.echo(summary, err=True)
        raise typer.Exit(1)
    return abort(str(exc))


def load_spec_set(path: Path) -> SpecSet:
    from reconciler.assembly import load_drivers
    from reconciler.drivers.agents.specpatch import remember
    from reconciler.loading import load_specs

    cli_state["drivers"] = load_drivers(current_settings())  # plugins may register kinds
    specs = load_specs(path, limits=current_settings().loader_limits())
    remember(specs.origins)  # where each spec lives: write-back of accepted edits
    return specs


def open_cli_runtime() -> Runtime:
    from reconciler.assembly import open_runtime
    from reconciler.loading.secrets import SecretResolver

    environ = cli_state.get("environ")  # the quickstart's demo defaults under the real environment
    if environ is None:
        return open_runtime(current_settings(), drivers=cli_state.get("drivers"))
    return open_runtime(current_settings(), drivers=cli_state.get("drivers"),
                        secrets=lambda: SecretResolver(environ=environ))


def parse_targets(raw: list[str] | None) -> list[Any]:
    from reconciler.models import ObjectRef

    try:
        return [ObjectRef.parse(t) for t in raw or []]
    except ValueError as exc:
        raise ReconcilerError(f"--target: {exc}") from None


def reconcile_specs(path: Path, targets: list[str] | None, mode: ModeOption, dry_run: bool,
               verify: bool = False, refuse_drift: bool = False,
               specs: SpecSet | None = None) -> list[RunResult]:
    from reconciler.engine.batches import reconcile_set, select_targets
    from reconciler.models import Mode
    from reconciler.structs.runs import Trigger

    specs = specs if specs is not None else load_spec_set(path)
    runtime = open_cli_runtime()
    try:
        if not dry_run:  # `status` without a path then shows this folder's SyncJobs too
            from reconciler.status import declare

            declare(runtime.store, specs, whole=False)
        selection = select_targets(specs, runtime.drivers, parse_targets(targets))
        for obj in selection.without_driver:
            typer.echo(
                f"note: {obj.ref.short}: no driver for kind {obj.KIND} in this installation; skipped",
                err=True,
            )
        with progress_bar() as progress:
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
                    guards=refuse_drift_guards() if refuse_drift else (),
                )
            )
    finally:
        runtime.close()


@contextlib.contextmanager
def progress_bar() -> Iterator[Any]:
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


def refuse_drift_guards() -> tuple[Any, ...]:
    from reconciler.engine.guards import RefuseDrift

    return (RefuseDrift(),)


def show_plans(results: list[RunResult], fmt: PlanFormat, max_changes: int) -> list[Any]:
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


def show_applied(results: list[RunResult]) -> None:
    from reconciler.engine.rendering.text import summary_line

    for result in results:
        summary = summary_line(result.plan) if result.plan else "-"
        if result.plan and not result.dry_run and result.outcome.value == "succeeded":
            summary = result.counts.summary()
        typer.echo(
            f"{result.target.short}: {result.outcome} ({summary}) "
            f"in {result.duration_seconds:.2f}s [run {result.run_id}]"
        )
        for warning in result.warnings:
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


def applied_json(result: RunResult) -> dict[str, Any]:
    """One run for `apply -o json`: the run as recorded (`RunRecord.of`, what `history --run
    ID -o json` and the API show: its counts and warnings) and, when planned, its plan's counts."""
    from reconciler.structs.records import RunRecord

    run = RunRecord.of(result)
    return {
        "kind": run.kind, "namespace": run.namespace, "name": run.name, "runId": run.id,
        "outcome": run.outcome, "dryRun": run.dry_run, "mode": run.mode,
        "durationSeconds": round(result.duration_seconds, 3), "counts": run.counts,
        "planned": result.plan.counts.as_dict() if result.plan is not None else None,
        "warnings": run.warnings, "error": run.error, "failure": result.failure,
    }


def print_failures(results: list[RunResult]) -> bool:
    failed = False
    for result in results:
        if not result.outcome.ok:
            failed = True
            say_error(f"{result.target.short}: {result.outcome}: {result.error}",
                      kind=result.target.kind, namespace=result.target.namespace, name=result.target.name)
    return failed


def time_ago(when: datetime | None, now: datetime) -> str:
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


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, width: int = 200) -> None:
    """A borderless table, as `kubectl get` prints one (rich, imported only here)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=width).print(table)


def parse_duration_option(text: str, option: str) -> float:
    from pydantic import TypeAdapter, ValidationError

    from reconciler.models.common import Duration

    try:
        return float(TypeAdapter(Duration).validate_python(text).total_seconds())
    except ValidationError:
        raise abort(f"{option}: expected a duration such as 30s or 5m, got {text!r}") from None


def secret_from_env(name: str, option: str) -> str:
    import os

    from reconciler.redaction import remember

    value = os.environ.get(name)
    if not value:
        raise abort(f"{option} {name}: the environment variable is not set")
    remember(value)
    return value
