"""Resolving secret references at run time, and keeping their values out of every output.

A spec holds only references. At run time a driver asks the run's `SecretResolver` for a
value; the resolver reads it from the environment, a file, the OS keyring (through the
`keyring` library: macOS Keychain, Windows Credential Locker, the Secret Service on Linux;
`reconciler secrets set` stores an entry) or (in a cluster) a Kubernetes Secret, wraps it
in a `Secret` that prints as `***`, and remembers it. Everything the run writes for people
(plans, errors, events, logs) is passed through `scrub`, so a value that slipped into an
error message from a driver or a database library is masked too. A resolved value is also
registered with `reconciler.redaction`, which masks it in every log
line and traceback of the process, inside a run or not.

Outside specs (command-line options such as `serve --git-credentials`), a reference is
written `env:NAME`, `file:PATH` or `keyring:SERVICE/USERNAME`, the same text
`SecretRef.describe()` prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SecretError
from reconciler.models import SecretRef
from reconciler.redaction import remember

MASK = "***"

KubernetesSecretLookup = Callable[[str, str, str], str]
"""(namespace, secret name, key) -> value; provided by the operator in a cluster."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A resolved secret value that never prints itself."""

    _value: str = field(repr=False)
    reference: str = ""

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.reference or MASK})"


def parse_reference(text: str, *, option: str) -> SecretRef:
    """`env:NAME` or `file:PATH` (a command-line option's value) as a `SecretRef`."""
    kind, sep, rest = text.partition(":")
    if sep and rest and kind in ("env", "file", "keyring"):
        service, slash, username = rest.partition("/")
        value: Any = {"service": service, "username": username} if kind == "keyring" else rest
        try:
            if kind != "keyring" or slash:
                return SecretRef.model_validate({kind: value})
        except ValueError:
            pass
    raise SecretError(f"{option}: expected a secret reference env:NAME (an environment variable "
                      "name), file:PATH (a file holding the value) or keyring:SERVICE/USERNAME (an OS "
                      "keyring entry); got something else (not shown: it may be the secret itself)")


class SecretResolver:
    """Resolves references for one run and scrubs their values out of text."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        kubernetes: KubernetesSecretLookup | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._kubernetes = kubernetes
        self._revealed: set[str] = set()

    def resolve(self, ref: SecretRef, *, namespace: str = "default") -> Secret:
        value = self._read(ref, namespace)
        if value:
            self._revealed.add(value)
            remember(value)
        return Secret(value, ref.describe())

    def _read(self, ref: SecretRef, namespace: str) -> str:
        if ref.env is not None:
            if ref.env not in self._environ:
                raise SecretError(f"secret {ref.describe()}: environment variable {ref.env} is not set")
            return self._environ[ref.env]
        if ref.file is not None:
            path = Path(os.path.expandvars(ref.file)).expanduser()
            try:
                return path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise SecretError(f"secret {ref.describe()}: cannot read {path}: {exc.strerror}") from None
        if ref.keyring is not None:
            return read_keyring(ref)
        assert ref.secret_ref is not None
        if self._kubernetes is None:
            raise SecretError(
                f"secret {ref.describe()}: secretRef is resolved by the Kubernetes operator; "
                "outside a cluster use {env: NAME}, {file: PATH} or {keyring: {service, username}}"
            )
        return self._kubernetes(namespace, ref.secret_ref.name, ref.secret_ref.key)

    def scrub(self, text: str) -> str:
        """Replace every value this resolver has handed out with `***`."""
        # Longest first, so that a secret containing another is masked whole.
        for value in sorted(self._revealed, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    @property
    def has_secrets(self) -> bool:
        return bool(self._revealed)


# --- the OS keyring ---------------------------------------------------------------------------


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:  # pragma: no cover - a dependency
        raise SecretError("keyring references need the `keyring` package") from None
    return keyring


def read_keyring(ref: SecretRef) -> str:
    """The value of a `{keyring: {service, username}}` reference."""
    assert ref.keyring is not None
    lib = _keyring()
    try:
        value = lib.get_password(ref.keyring.service, ref.keyring.username)
    except Exception as exc:  # no backend (a headless machine), a locked keyring
        raise SecretError(f"secret {ref.describe()}: cannot read the OS keyring: {exc}") from None
    if value is None:
        raise SecretError(f"secret {ref.describe()}: no such entry in the OS keyring; store it with "
                          f"`reconciler secrets set {ref.keyring.service} {ref.keyring.username}`")
    return str(value)


def store_keyring(service: str, username: str, value: str) -> str:
    """Store `value` in the OS keyring; the backend's name (for the confirmation)."""
    if not value:
        raise SecretError("expected a non-empty secret value; nothing was stored")
    lib = _keyring()
    remember(value)
    try:
        lib.set_password(service, username, value)
    except Exception as exc:
        raise SecretError(f"cannot store keyring:{service}/{username}: {exc}") from None
    return type(lib.get_keyring()).__name__


def delete_keyring(service: str, username: str) -> None:
    lib = _keyring()
    try:
        lib.delete_password(service, username)
    except lib.errors.PasswordDeleteError:
        raise SecretError(f"no OS keyring entry keyring:{service}/{username}; nothing was deleted") from None
    except Exception as exc:
        raise SecretError(f"cannot delete keyring:{service}/{username}: {exc}") from None
