"""Local dashboard users: a name, an argon2 hash of the password, and a role.

The users live in one JSON file (`RECONCILER_USERS_FILE`, by default `users.json` in the
state directory), written atomically with mode 0600 by `reconciler users add|passwd|remove`
and read by the daemon on each login (a change needs no restart). Passwords are hashed with
argon2id (argon2-cffi); the file never holds a password, and a hash is never printed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from reconciler.access import Role
from reconciler.errors import ReconcilerError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Verified against when a name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not-a-password-of-anyone")


class UserError(ReconcilerError):
    """A users-file operation that cannot be done (bad name, short password, unknown user)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    hash: str


class UserStore:
    """The users file at `path` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[float, dict[str, User]] | None = None

    def users(self) -> dict[str, User]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            raw = json.loads(self.path.read_text())
            found = {u["name"]: User(u["name"], Role(u["role"]), u["hash"]) for u in raw.get("users", [])}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{self.path}: not a users file ({exc})") from None
        self._cache = (stamp, found)
        return found

    def get(self, name: str) -> User | None:
        return self.users().get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs, else None (same work either way)."""
        user = self.get(name)
        try:
            _hasher.verify(user.hash if user else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user

    def add(self, *, name: str, password: str, role: Role) -> User:
        if not NAME.match(name):
            raise UserError(f"user name {name!r}: expected 1-64 letters, digits, '_', '.', '@' or '-'")
        if name in self.users():
            raise UserError(f"user {name!r} already exists (use `reconciler users passwd`)")
        return self._put(User(name, role, _hash(password)))

    def passwd(self, *, name: str, password: str) -> User:
        user = self._existing(name)
        return self._put(User(name, user.role, _hash(password)))

    def remove(self, *, name: str) -> None:
        self._existing(name)
        users = dict(self.users())
        users.pop(name)
        self._write(users)

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UserError(f"no user {name!r} in {self.path}")
        return user

    def _put(self, user: User) -> User:
        self._write({**self.users(), user.name: user})
        return user

    def _write(self, users: dict[str, User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"users": [{"name": u.name, "role": str(u.role), "hash": u.hash}
                                     for u in sorted(users.values(), key=lambda u: u.name)]}, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(body + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._cache = None


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: expected at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)
