"""Where a daemon's specs come from: a folder, or a branch of a git repository.

A `FolderSource` reloads the folder (a change of a file is a new set). A `GitSource` keeps
a bare clone in the state directory, fetches the branch every `poll` seconds (or when a
push webhook says so), and loads the specs of `path` at the new commit, which becomes the
revision recorded on every run. A commit whose specs do not load is reported and skipped:
the daemon keeps the last good set.

Credentials for a private repository over HTTP(S) come from `--git-credentials` (a secret
reference: `USER:TOKEN`, or a token alone, sent as user `x-access-token`) or from the URL's
own userinfo. Either way they are taken out of the URL: git receives them as an
`Authorization` header scoped to the repository URL, through its environment
(`GIT_CONFIG_COUNT`), so they are never on a command line, in the clone's config on disk,
in a log line or in an error. git's own credential helpers work too (nothing given here).
The source describes itself with the URL's userinfo redacted.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from reconciler.errors import ReconcilerError
from reconciler.loading import load_specs
from reconciler.loading.limits import LoaderLimits
from reconciler.loading.specs import SpecSet
from reconciler.redaction import redact_url, remember


@dataclass(slots=True)
class FolderSource:
    path: Path
    limits: LoaderLimits | None = None

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> SpecSet:
        return load_specs(self.path, limits=self.limits)

    def head(self) -> str | None:
        """A fingerprint of the folder's files (changes when a spec file does)."""
        digest = hashlib.sha256()
        for file in sorted(self.path.rglob("*")) if self.path.is_dir() else [self.path]:
            if file.is_file() and file.suffix in (".yaml", ".yml"):
                digest.update(str(file).encode())
                digest.update(file.read_bytes())
        return digest.hexdigest()


def split_credentials(url: str) -> tuple[str, str | None]:
    """An HTTP(S) URL without its userinfo, and that userinfo (`user:token`, decoded) if any."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), unquote(userinfo)


@dataclass(slots=True)
class GitSource:
    url: str
    branch: str
    path: str
    workdir: Path
    credentials: str | None = field(default=None, repr=False)
    """`USER:TOKEN` or a token alone, for an HTTP(S) URL; never shown."""
    limits: LoaderLimits | None = None

    def __post_init__(self) -> None:
        self.url, embedded = split_credentials(self.url)
        self.credentials = self.credentials or embedded
        if self.credentials:
            remember(self.credentials)
            remember(self.credentials.rpartition(":")[2])

    def describe(self) -> str:
        return f"{redact_url(self.url)}#{self.branch}:{self.path}"

    def git_environment(self) -> dict[str, str]:
        """What git's environment adds: the credentials as a header for this URL only, and
        no terminal prompt (a daemon has no one to ask)."""
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if not self.credentials:
            return env
        user, sep, token = self.credentials.rpartition(":")
        basic = base64.b64encode(f"{user if sep else 'x-access-token'}:{token}".encode()).decode()
        remember(basic)
        n = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
        env |= {"GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": f"http.{self.url}.extraHeader",
                f"GIT_CONFIG_VALUE_{n}": f"Authorization: Basic {basic}"}
        return env

    def _repo(self):
        import git

        env = self.git_environment()
        clone = self.workdir / hashlib.sha256(self.url.encode()).hexdigest()[:16]
        if not clone.exists():
            clone.parent.mkdir(parents=True, exist_ok=True)
            try:
                repo = git.Repo.clone_from(self.url, clone, bare=True, branch=self.branch, env=env)
            except git.GitCommandError as exc:
                raise self._failed("clone", exc) from None
        else:
            repo = git.Repo(clone)
        repo.git.update_environment(**env)
        return repo

    def head(self) -> str | None:
        """Fetch, then the branch's commit SHA."""
        import git

        repo = self._repo()
        try:
            repo.git.fetch("origin", f"+refs/heads/{self.branch}:refs/heads/{self.branch}", "--prune")
        except git.GitCommandError as exc:
            raise self._failed("fetch", exc) from None
        return str(repo.commit(self.branch).hexsha)

    def _failed(self, action: str, exc: Exception) -> ReconcilerError:
        """git's own last words (its stderr), with the URL as shown everywhere."""
        stderr = str(getattr(exc, "stderr", "") or "").strip().strip("'").strip()
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else str(exc)
        return ReconcilerError(f"cannot {action} {self.describe()}: {reason}")

    def load(self, sha: str | None = None) -> SpecSet:
        repo = self._repo()
        return load_specs(self.path, repo=repo.git_dir, rev=sha or self.branch, limits=self.limits)
