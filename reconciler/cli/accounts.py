"""`reconciler users add|passwd|remove|list`: the dashboard's local users (see web/users.py).

A password is read from a prompt (twice, not echoed) or, with `--password-stdin`, from the
first line of standard input: never from an argument, which `ps` and shell history show.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.common import abort, current_settings

if TYPE_CHECKING:
    from reconciler.web.users import UserStore

users_app = typer.Typer(help="Dashboard users (argon2-hashed passwords, roles admin and viewer).",
                        no_args_is_help=True, pretty_exceptions_show_locals=False)


class RoleOption(StrEnum):
    admin = "admin"
    viewer = "viewer"


StdinOption = Annotated[bool, typer.Option("--password-stdin",
                                           help="Read the password from the first line of standard input.")]


def _store() -> UserStore:
    from reconciler.web.users import UserStore

    settings = current_settings()
    return UserStore(settings.users_file or settings.state_dir / "users.json")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(name: Annotated[str, typer.Argument(help="The user name.")],
        role: Annotated[RoleOption, typer.Option(
            help="admin (may change) or viewer (reads).")] = RoleOption.viewer,
        password_stdin: StdinOption = False) -> None:
    """Add a user; the password is asked for (or read from stdin)."""
    from reconciler.web.users import UserError

    store = _store()
    try:
        from reconciler.access import Role

        store.add(name=name, password=_password(password_stdin), role=Role(role.value))
    except UserError as exc:
        raise abort(str(exc)) from None
    typer.echo(f"user {name} added ({role.value}) to {store.path}")


@users_app.command("passwd")
def passwd(name: Annotated[str, typer.Argument(help="The user name.")],
           password_stdin: StdinOption = False) -> None:
    """Set a user's password."""
    from reconciler.web.users import UserError

    store = _store()
    try:
        store.passwd(name=name, password=_password(password_stdin))
    except UserError as exc:
        raise abort(str(exc)) from None
    typer.echo(f"password of {name} changed")


@users_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The user name.")]) -> None:
    """Remove a user (their sessions end at their next request)."""
    from reconciler.web.users import UserError

    store = _store()
    try:
        store.remove(name=name)
    except UserError as exc:
        raise abort(str(exc)) from None
    typer.echo(f"user {name} removed")


@users_app.command("list")
def list_users() -> None:
    """The users and their roles (never a hash)."""
    store = _store()
    for user in store.users().values():
        typer.echo(f"{user.name}\t{user.role}")
