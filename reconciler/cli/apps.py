"""The `reconciler` Typer application, its command groups and its global options.

The command modules register themselves on these apps; the groups `review` and `users`
come with their own modules (`cli/reviewing.py`, `cli/accounts.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reconciler.cli.accounts import users_app
from reconciler.cli.common import LogFormat, abort, cli_state
from reconciler.cli.reviewing import review_app


def _group(help_text: str, **options: Any) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_show_locals=False, **options)


app = typer.Typer(
    name="reconciler",
    help="Declarative GitOps reconciler: specs in git, targets in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals held resolved keys and store URLs
    add_completion=False,
)
db_app = _group("Manage the store's schema.")
import_app = _group("Start a spec from the native files that exist.")
emulator_app = _group("Emulators of the sources, for tests and the quickstart.")
secrets_app = _group("Secrets in the OS keyring, for {keyring: {service, username}} references.")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(review_app, name="review")
app.add_typer(emulator_app, name="emulator")
app.add_typer(secrets_app, name="secrets")
app.add_typer(users_app, name="users")


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
        abort(f"invalid settings: {exc}")
    configure(fmt=settings.log_format, level=settings.log_level)
    cli_state["settings"] = settings
