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

import importlib
import sys

from reconciler.cli.apps import app

# Importing a command module registers its commands; this order is `reconciler --help`'s.
for _module in ("reconciling", "viewing", "serving", "admin"):
    importlib.import_module(f"reconciler.cli.{_module}")

__all__ = ["app", "main"]


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
