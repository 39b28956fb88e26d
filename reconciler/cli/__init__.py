"""The `reconciler` command: a thin front end over the loader, engine and store.

Each command turns its arguments into one engine call and its result into output and an
exit code; no domain logic lives here. User mistakes (`ReconcilerError`) print one clear
line (or one line per spec problem) and exit 1, never a traceback. Heavy modules are
imported inside the commands that need them to keep start-up fast.

The commands live in modules named for what they do (`reconciling`, `viewing`, `serving`,
`admin`, `reviewing`), over what they share (`common`) and the Typer application
(`apps`); `remote` is the one client of a running daemon's API for every `--server`
option. Importing this package registers every command.
"""

from __future__ import annotations

import copy
import importlib
import sys

import typer
from typer.main import get_command_name

from reconciler.cli.apps import app

# Importing a command module registers its commands; this order is `reconciler --help`'s.
for _module in ("reconciling", "viewing", "serving", "admin"):
    importlib.import_module(f"reconciler.cli.{_module}")

__all__ = ["app", "main", "only_invoked_command"]


def only_invoked_command(typer_app: typer.Typer, args: list[str]) -> typer.Typer:
    """The application with only the command the arguments name, when they name one first.

    Typer builds the Click command of every registered command (signatures, annotations)
    before it parses anything: about 20 ms of a 0.35 s no-op `apply`. When the first
    argument is a command's or a group's exact name, the others cannot be reached, so a copy
    of the application holding only that one behaves the same, its help and errors
    included. Anything else (no argument, a global option first, a misspelt command, which
    gets its "did you mean") keeps the whole application.
    """
    if not args or args[0].startswith("-"):
        return typer_app
    name = args[0]
    commands = [info for info in typer_app.registered_commands
                if (info.name or get_command_name(info.callback.__name__ if info.callback else "")) == name]
    groups = [info for info in typer_app.registered_groups if info.name == name]
    if not commands and not groups:
        return typer_app
    trimmed = copy.copy(typer_app)
    trimmed.registered_commands = commands
    trimmed.registered_groups = groups
    return trimmed


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
    # httpx imports its own command line (`httpx._main`: rich, pygments, click) whenever
    # those are installed, as Typer installs them here: 35-70 ms of every AED run and of
    # the daemon's start, for a command this process never runs. A None entry makes that
    # import fail, which httpx expects (it then defines a `main` asking for its extras).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    code: int = 0
    try:
        only_invoked_command(app, sys.argv[1:])()
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
