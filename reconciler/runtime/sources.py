"""Where a daemon's specs come from: a folder, or a branch of a git repository.

A `FolderSource` reloads the folder (a change of a file is a new set). A `GitSource` keeps
a bare clone in the state directory, fetches the branch every `poll` seconds (or when a
push webhook says so), and loads the specs of `path` at the new commit, which becomes the
revision recorded on every run. A commit whose specs do not load is reported and skipped:
the daemon keeps the last good set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from reconciler.loading import load_specs
from reconciler.loading.specs import SpecSet


@dataclass(slots=True)
class FolderSource:
    path: Path

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> SpecSet:
        return load_specs(self.path)

    def head(self) -> str | None:
        """A fingerprint of the folder's files (changes when a spec file does)."""
        digest = hashlib.sha256()
        for file in sorted(self.path.rglob("*")) if self.path.is_dir() else [self.path]:
            if file.is_file() and file.suffix in (".yaml", ".yml"):
                digest.update(str(file).encode())
                digest.update(file.read_bytes())
        return digest.hexdigest()


@dataclass(slots=True)
class GitSource:
    url: str
    branch: str
    path: str
    workdir: Path

    def describe(self) -> str:
        return f"{self.url}#{self.branch}:{self.path}"

    def _repo(self):
        import git

        clone = self.workdir / hashlib.sha256(self.url.encode()).hexdigest()[:16]
        if not clone.exists():
            clone.parent.mkdir(parents=True, exist_ok=True)
            return git.Repo.clone_from(self.url, clone, bare=True, branch=self.branch)
        return git.Repo(clone)

    def head(self) -> str | None:
        """Fetch, then the branch's commit SHA."""
        repo = self._repo()
        repo.git.fetch("origin", f"+refs/heads/{self.branch}:refs/heads/{self.branch}", "--prune")
        return str(repo.commit(self.branch).hexsha)

    def load(self, sha: str | None = None) -> SpecSet:
        repo = self._repo()
        return load_specs(self.path, repo=repo.git_dir, rev=sha or self.branch)
