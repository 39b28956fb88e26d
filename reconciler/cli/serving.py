"""Commands that keep running: serve (the daemon), operator (kopf), quickstart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.apps import app
from reconciler.cli.common import (
    ModeOption,
    OutputFormat,
    PathArg,
    PlanFormat,
    abort,
    cli_state,
    current_settings,
    load_spec_set,
    open_cli_runtime,
    parse_duration_option,
    print_failures,
    reconcile_specs,
    report_error,
    secret_from_env,
    show_applied,
    show_plans,
)
from reconciler.cli.viewing import show_status
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.structs.runs import RunResult


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
        raise abort("serve needs exactly one of --specs PATH or --git URL")
    if write_back is not None and git is None:
        raise abort("--write-back goes with --git URL")
    if write_back is not None and write_back == branch:
        raise abort(f"--write-back {write_back}: that is the watched branch (--branch); accepted proposals "
                    "are pushed to another branch, the watched branch's history is never rewritten")
    tokens = TokenTable()
    for name in admin_token_env or []:
        tokens.add(secret_from_env(name, "--admin-token-env"), Role.ADMIN)
    for name in viewer_token_env or []:
        tokens.add(secret_from_env(name, "--viewer-token-env"), Role.VIEWER)
    if not tokens.digests:
        typer.echo("note: no API token configured: only /healthz, /readyz and /metrics answer", err=True)
    settings = current_settings()
    logs = LogBuffer()
    configure(fmt=settings.log_format, level=settings.log_level, buffer=logs)
    if git_credentials and git is None:
        raise abort("--git-credentials goes with --git URL")
    options = DaemonOptions(specs=specs, git_url=git, git_credentials=git_credentials, branch=branch,
                            path=path, write_back=write_back,
                            poll_seconds=parse_duration_option(poll, "--poll"), host=host, port=port,
                            tokens=tokens,
                            webhook_secret=secret_from_env(webhook_secret_env, "--webhook-secret-env")
                            if webhook_secret_env else None,
                            grace_seconds=parse_duration_option(grace, "--grace"))
    try:
        run_daemon(settings, options, logs)
    except ReconcilerError as exc:
        raise report_error(exc) from None


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
        tokens.add(secret_from_env(name, "--admin-token-env"), Role.ADMIN)
    for name in viewer_token_env or []:
        tokens.add(secret_from_env(name, "--viewer-token-env"), Role.VIEWER)
    run_operator(current_settings(), namespaces=list(namespace or []), port=port, priority=priority,
                 tick_seconds=parse_duration_option(tick, "--tick"), tokens=tokens, peering=peering,
                 scan=scan)


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

    settings = current_settings()
    # Demo values for the example's secret references, under whatever the environment sets;
    # the process environment itself is left alone.
    cli_state["environ"] = {"EGEN_SERVICE_KEY": "quickstart-demo-key",
                         "AED_DATABASE_URL": f"sqlite:///{settings.state_dir / 'aed.db'}", **os.environ}
    emulator: EgenEmulator | None
    emulator = EgenEmulator(port=port)
    try:
        emulator_url = emulator.start()
        typer.echo(f"AED emulator: {emulator_url}")
    except OSError as exc:
        emulator = None
        emulator_url = f"http://127.0.0.1:{port}{SERVICE_PATH}"
        if not is_emulator(emulator_url):
            raise abort(f"port {port} is busy ({exc.strerror}) and what answers there is not the AED "
                        "emulator; give a free port with --port") from None
        typer.echo(f"note: port {port} is busy; using the AED emulator already there ({emulator_url})",
                   err=True)
    planned: list[RunResult] = []
    results: list[RunResult] = []
    try:
        from reconciler.status import object_statuses

        pointed = point_at_emulator(load_spec_set(path), emulator_url)
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
            raise abort("no object in the specs can run on the embedded defaults")
        typer.echo("\n== plan ==")
        planned = reconcile_specs(path, runnable, ModeOption.full, dry_run=True, specs=pointed.specs)
        show_plans(planned, PlanFormat.text, 5)
        failed = [r for r in planned if not r.outcome.ok]
        for result in failed:
            typer.echo(f"{result.target.short}: plan failed: {result.error}")
        typer.echo("\n== apply ==")
        applicable = [str(r.target) for r in planned if r.outcome.ok]
        if applicable:
            results = reconcile_specs(path, applicable, ModeOption.full, dry_run=False, specs=pointed.specs)
        show_applied(results)
        for result in failed:
            typer.echo(f"{result.target.short}: not applied: its plan failed")
        typer.echo("\n== status ==")
        runtime = open_cli_runtime()
        try:
            rows = object_statuses(runtime.store, pointed.specs, now=datetime.now(UTC))
        finally:
            runtime.close()
        show_status(rows, OutputFormat.table)
    except ReconcilerError as exc:
        raise report_error(exc) from None
    finally:
        if emulator is not None:
            emulator.stop()
    if print_failures([*planned, *results]):
        raise typer.Exit(1)
