"""Housekeeping commands: secrets in the keyring, import, emulators, schemas and CRDs, the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.cli.apps import app, db_app, emulator_app, import_app, secrets_app
from reconciler.cli.common import abort, current_settings, parse_duration_option, report_error
from reconciler.errors import ReconcilerError

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
        raise report_error(exc) from None
    typer.echo(f"stored keyring:{service}/{username} ({backend}); reference it as "
               f"{{keyring: {{service: {service}, username: {username}}}}}")


@secrets_app.command("delete")
def secrets_delete(service: ServiceArg, username: UsernameArg) -> None:
    """Remove a secret from the OS keyring."""
    from reconciler.loading.secrets import delete_keyring

    try:
        delete_keyring(service, username)
    except ReconcilerError as exc:
        raise report_error(exc) from None
    typer.echo(f"deleted keyring:{service}/{username}")


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
        raise abort(f"{exc}; expected --client one of {', '.join(c.value for c in AgentClient)} "
                    "and --scope user or project") from None
    try:
        document = import_spec(client_, scope_, root or ("~" if scope_ is TargetScope.USER else "."),
                               name, lambda message: typer.echo(f"warning: {message}", err=True))
    except ReconcilerError as exc:
        raise report_error(exc) from None
    try:
        AgentConfig.model_validate(document)
    except Exception as exc:
        raise abort(f"the imported files do not make a valid AgentConfig: {exc}") from None
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
        raise abort(str(exc)) from None


def _all_kinds() -> tuple[Any, ...]:
    """Every registered kind's model: the built-ins, plus plugin kinds when plugins are set."""
    from reconciler.assembly import load_drivers
    from reconciler.kinds import REGISTRY

    load_drivers(current_settings())  # imports RECONCILER_PLUGINS, which may register kinds
    return tuple(info.load_model() for info in REGISTRY.all())


def _write_generated(files: dict[str, str], out: Path, check: bool) -> None:
    stale = [
        name
        for name, content in files.items()
        if not (out / name).exists() or (out / name).read_text(encoding="utf-8") != content
    ]
    if check:
        if stale:
            abort(f"{len(stale)} generated file(s) in {out} differ from the models: {', '.join(stale)}")
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

    settings = current_settings()
    try:
        store = Store.open(settings.store_url(), migrate=False,
                           sqlite_synchronous=settings.sqlite_synchronous)
        before = upgrade(store.engine)
        store.close()
    except ReconcilerError as exc:
        raise report_error(exc) from None
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

    settings = current_settings()
    if keep is None and older_than is None:
        policy = settings.history_retention()
    else:
        max_age = timedelta(seconds=parse_duration_option(older_than, "--older-than")) if older_than else None
        policy = RetentionPolicy(keep=keep or 0, max_age=max_age)
    if not policy.enabled:
        raise abort("no retention configured: give --keep N or --older-than DURATION, or set "
                    "RECONCILER_HISTORY_RETENTION_KEEP / RECONCILER_HISTORY_RETENTION_MAX_AGE")
    try:
        store = Store.open(settings.store_url(), sqlite_synchronous=settings.sqlite_synchronous)
        try:
            report = prune_history(store, policy=policy, now=datetime.now(UTC), dry_run=dry_run,
                                   actor=f"cli:{getpass.getuser()}")
        finally:
            store.close()
    except ReconcilerError as exc:
        raise report_error(exc) from None
    typer.echo(f"keeping {policy.describe()}")
    for line in report.lines():
        typer.echo(line)
