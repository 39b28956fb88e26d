"""Who may call the HTTP API and the dashboard: bearer tokens from secret references, two roles.

`viewer` may read, `admin` may also change (run, suspend, resume, schedule). Tokens are
resolved once at start-up from secret references (`{env: NAME}` or `{file: PATH}`) and
kept only as SHA-256 digests; the audit log names a caller by role and the first
characters of that digest, never by the token. Without a token nothing but the health
endpoints answers. A dashboard user who logged in (reconciler/web/sessions.py) is a caller
too, named `user:NAME` in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    role: Role
    fingerprint: str  # first characters of the token's digest ("session" for a logged-in user)
    user: str | None = None  # the dashboard user (reconciler/web/users.py), when logged in

    @property
    def actor(self) -> str:
        return f"user:{self.user}" if self.user else f"{self.role}:{self.fingerprint}"


@dataclass(slots=True)
class TokenTable:
    """Token digests → role."""

    digests: dict[str, Role] = field(default_factory=dict)

    def add(self, token: str, role: Role) -> None:
        if not token:
            raise ValueError("an empty API token")
        self.digests[digest(token)] = role

    def check(self, token: str | None) -> Caller | None:
        if not token:
            return None
        wanted = digest(token)
        for known, role in self.digests.items():
            if hmac.compare_digest(known, wanted):
                return Caller(role, known[:8])
        return None

    def role_of(self, token: str | None) -> str | None:
        caller = self.check(token)
        return str(caller.role) if caller else None
