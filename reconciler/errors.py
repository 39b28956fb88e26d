"""One exception hierarchy for everything the reconciler reports to a user.

Every error a user can cause or meet derives from :class:`ReconcilerError` and carries the
facts needed to act on it: a spec error names the file, line, column and field path; a
guard names itself and its figures; a source error says which request failed and whether
retrying can help. Front ends map each class to one line and an exit code, and nothing
else in the code base catches broadly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ReconcilerError(Exception):
    """The root of every error the reconciler raises on purpose."""


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem in one spec document, located as precisely as the input allows."""

    source: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(ReconcilerError):
    """Specs that cannot be loaded: every problem found, each with its location."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SecretError(ReconcilerError):
    """A secret reference that cannot be resolved. Never carries the secret's value."""


class DriverError(ReconcilerError):
    """A driver failed to observe or apply; the message says what and where."""


class TargetError(DriverError):
    """The target database could not be reached or refused the work (failure class
    `database`). Never carries the database URL's password."""

    failure_class = "database"


class NoDriverError(ReconcilerError):
    """No driver is registered for a kind."""


class SourceError(DriverError):
    """A remote source answered with an error (or did not answer)."""

    def __init__(self, message: str, *, request: str = "", code: str = "", retryable: bool = False):
        self.request = request
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class GuardAborted(ReconcilerError):
    """A guard stopped a run between diff and apply; nothing was written."""

    def __init__(self, guard: str, message: str, **figures: float | int | str) -> None:
        self.guard = guard
        self.figures = dict(figures)
        super().__init__(f"guard {guard} aborted the run: {message}")


class ConflictError(ReconcilerError):
    """A target changed by hand under a policy that asks a person to decide."""


class LockTimeout(ReconcilerError):
    """Another run of the same target held its lock for longer than we would wait."""


class StoreError(ReconcilerError):
    """The store cannot be reached or is not at the expected schema version."""
