"""Commands that plan or change targets: validate, plan, pr-comment, apply, rollback, run."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.apps import app
from reconciler.cli.common import (
    ModeOpt,
    ModeOption,
    OutputFormat,
    PathArg,
    PlanFormat,
    TargetOpt,
    abort,
    applied_json,
    cli_state,
    current_settings,
    load_spec_set,
    open_cli_runtime,
    parse_duration_option,
    parse_targets,
    print_failures,
    reconcile_specs,
    report_error,
    say_error,
    secret_from_env,
    show_applied,
    show_plans,
)
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.structs.runs import RunResult


@app.command()
def validate(path: PathArg = Path("specs")) -> None:
    """Check specs: syntax, schema, references. Exit 1 with file:line:col on problems."""
    try:
        specs = load_spec_set(path)
    except ReconcilerError as exc:
        raise report_error(exc) from None
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
        results = reconcile_specs(path, target, mode, dry_run=True, verify=verify)
    except ReconcilerError as exc:
        raise report_error(exc) from None
    plans = show_plans(results, fmt, max_changes)
    if print_failures(results) or (verify and not _show_proofs(results)):
        raise typer.Exit(1)
    if detailed_exitcode and not all(p.in_sync for p in plans):
        raise typer.Exit(2)


def _show_proofs(results: list[RunResult]) -> bool:
    """One line per target on stderr (stdout may be JSON); True when every plan was proven."""
    proven = True
    for result in results:
        verification = result.plan.presentation.verification if result.plan else None
        if verification is None:
            line, proven = "not verified (see the plan's warnings)", proven and result.plan is None
        elif verification.converged:
            line = "proven: after applying the plan in a rolled-back transaction, a second diff is empty"
        else:
            line, proven = f"NOT proven: {verification.remaining} change(s) left after applying", False
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
        raise abort("--base and --head go together: plan what changed from --base to --head")
    try:
        cli_state["drivers"] = load_drivers(current_settings())
        diff = compare_revisions(base=base, head=head, path=path, limits=current_settings().loader_limits())
    except ReconcilerError as exc:
        raise report_error(exc) from None
    runtime = open_cli_runtime()
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
            say_error(f"{target.change.ref.short}: {target.result.error}")
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

    token = secret_from_env(token_env, "--token-env")
    try:
        markdown = from_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise abort(f"--from {from_file}: cannot read: {exc.strerror}") from None
    try:
        with GitHub(repo=repo, token=token, base_url=api_url) as gh:
            result = post_plan(gh, pr=pr, markdown=markdown, marker=marker, sha=sha, target_url=target_url)
    except ValueError as exc:
        raise abort(str(exc)) from None
    except ReconcilerError as exc:
        raise report_error(exc) from None
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
        results = reconcile_specs(path, target, mode, dry_run=dry_run, refuse_drift=refuse_drift)
    except ReconcilerError as exc:
        raise report_error(exc) from None
    if output is OutputFormat.json:
        for result in results:
            typer.echo(json.dumps(applied_json(result), ensure_ascii=False))
    else:
        show_applied(results)
    if print_failures(results):
        raise typer.Exit(1)


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
        ref = parse_targets([target])[0]
        specs = load_spec_set(path)
        obj = next((o for o in specs if o.ref == ref or (o.KIND, o.metadata.name) == (ref.kind, ref.name)),
                   None)
        if obj is None:
            raise ReconcilerError(f"{target}: no such object in {path}")
        runtime = open_cli_runtime()
    except ReconcilerError as exc:
        raise report_error(exc) from None
    try:
        import getpass

        from reconciler.runtime.control import Controller

        point = runtime.orchestrator.rollback_point(obj.ref, to)
        result = asyncio.run(Controller(runtime, specs).run_now(
            obj.ref, trigger=Trigger.ROLLBACK, dry_run=dry_run, even_if_suspended=True,
            actor=f"cli:{getpass.getuser()}", rollback_to=point))
    except ReconcilerError as exc:
        raise report_error(exc) from None
    finally:
        runtime.close()
    if result.plan is not None:
        typer.echo(render([result.plan], "text"))
    typer.echo(f"{obj.ref.short}: rollback to run {point}: {result.outcome} [run {result.run_id}]")
    if print_failures([result]):
        raise typer.Exit(1)


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
                       timeout=parse_duration_option(timeout, "--timeout"), body=body)
        return
    if wait:
        raise abort("--wait goes with --server (a local run always waits)")
    from reconciler.runtime.control import Controller

    try:
        ref = parse_targets([target])[0]
        specs = load_spec_set(path)
        runtime = open_cli_runtime()
    except ReconcilerError as exc:
        raise report_error(exc) from None
    try:
        import getpass

        controller = Controller(runtime, specs)
        result = asyncio.run(controller.run_now(
            ref, trigger=Trigger.MANUAL, mode=Mode(mode.value) if mode else None, dry_run=dry_run,
            even_if_suspended=even_if_suspended, actor=f"cli:{getpass.getuser()}"))
    except ReconcilerError as exc:
        raise report_error(exc) from None
    finally:
        runtime.close()
    show_applied([result])
    if print_failures([result]):
        raise typer.Exit(1)


def _run_on_server(server: str, target: str, *, token_env: str, wait: bool, timeout: float,
                   body: dict[str, Any]) -> None:
    """`run --server`: the daemon's forced run (POST .../run), its id printed; with --wait its
    outcome, exit 1 when it failed or did not end within `timeout`."""
    from reconciler.cli.remote import Server
    from reconciler.runtime.control import MAX_RUN_WAIT_SECONDS

    ref = parse_targets([target])[0]
    if timeout > MAX_RUN_WAIT_SECONDS:
        raise abort(f"--timeout: expected at most {MAX_RUN_WAIT_SECONDS:.0f}s, got {timeout:.0f}s")
    params: dict[str, Any] = {"namespace": ref.namespace}
    if wait:
        params.update(wait="true", timeout=timeout)
    answer = Server(server, token_env=token_env).post(f"/api/v1/objects/{ref.kind}/{ref.name}/run",
                                                      params=params, body=body, read_timeout=timeout + 30.0)
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
        say_error(f"{ref.short}: {answer['outcome']}: {answer.get('error')}")
        raise typer.Exit(1)
