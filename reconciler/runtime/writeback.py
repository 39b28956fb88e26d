"""Git write-back: an accepted proposal becomes a commit, never a rewrite of the watched branch.

In git mode the spec is a file in a branch of a repository, not a file here. Accepting a
proposal (see `drivers/agents/deciding.py`) builds a commit that changes that one file:
its new content is stored as a blob, a tree is made from the base commit's tree with the
blob in the file's place (in a throwaway index file), and the commit is made from that tree
with the base commit as its only parent, by `reconciler <reconciler@localhost>`. None of
this touches the clone's own refs of the watched branch, which the daemon loads its specs
from: the clone is bare, nothing is checked out.

The commit goes on a new local branch of the daemon's clone, `reconciler/proposal-<id>`
(never moved once made: created only when it does not exist), based on the watched
branch's last fetched commit, for a person to push. With `--write-back BRANCH` it is also
pushed to that branch of the remote, without force: the commit is based on the remote
BRANCH's tip when the watched branch's commit is already in it (else on the watched
commit), so a push is a fast-forward or is refused, and history is never rewritten. The
push uses the `GitSource`'s credentials environment. If the push fails, the local branch is
removed again and the caller reports the failure (the proposal stays pending).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.drivers.agents.specpatch import Committed
from reconciler.errors import ReconcilerError
from reconciler.runtime.sources import GitSource

AUTHOR = {"GIT_AUTHOR_NAME": "reconciler", "GIT_AUTHOR_EMAIL": "reconciler@localhost",
          "GIT_COMMITTER_NAME": "reconciler", "GIT_COMMITTER_EMAIL": "reconciler@localhost"}


class WriteBackError(ReconcilerError):
    """The commit or its push failed; nothing was decided."""


@dataclass(slots=True)
class GitWriteBack:
    source: GitSource
    write_back: str | None = None
    """The remote branch accepted patches are pushed to; never the watched branch."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.write_back is not None and self.write_back == self.source.branch:
            raise ReconcilerError(f"--write-back {self.write_back}: that is the watched branch; accepted "
                                  "proposals go to another branch (history is never rewritten)")

    @property
    def watched(self) -> str:
        return self.source.branch

    def _git(self, repo: Any, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> str:
        import git

        try:
            return str(repo.git.execute(["git", *args], env={**os.environ, **self.source.git_environment(),
                                                             **(env or {})}, **kwargs))
        except git.GitCommandError as exc:
            raise self.source._failed(args[0], exc) from None

    def _base(self, repo: Any) -> tuple[str, str]:
        """(commit SHA, its branch name) the new commit is based on."""
        watched = self._git(repo, "rev-parse", "--verify", f"refs/heads/{self.watched}^{{commit}}").strip()
        if self.write_back is None:
            return watched, self.watched
        remote = self._git(repo, "ls-remote", "--heads", "origin", f"refs/heads/{self.write_back}").strip()
        if not remote:
            return watched, self.watched
        tracking = f"refs/reconciler/write-back/{self.write_back}"
        self._git(repo, "fetch", "--no-tags", "origin", f"+refs/heads/{self.write_back}:{tracking}")
        tip = self._git(repo, "rev-parse", "--verify", f"{tracking}^{{commit}}").strip()
        contains = repo.git.execute(["git", "merge-base", "--is-ancestor", watched, tip],
                                    with_exceptions=False, with_extended_output=True)[0] == 0
        return (tip, self.write_back) if contains else (watched, self.watched)

    def commit(self, *, path: str, change: Callable[[str], str], branch: str, message: str) -> Committed:
        """Commit `change(old text)` as `path` on a new `branch` (see the module docstring)."""
        with self._lock:
            repo = self.source._repo()
            base, base_name = self._base(repo)
            try:
                mode, kind, _sha = self._git(repo, "ls-tree", base, "--", path).split(maxsplit=3)[:3]
            except ValueError:
                raise WriteBackError(f"{base_name}:{path} does not exist (any more) at {base[:12]}; "
                                     "nothing was committed") from None
            if kind != "blob":
                raise WriteBackError(f"{base_name}:{path} is not a file; nothing was committed")
            before = self._git(repo, "cat-file", "blob", f"{base}:{path}", strip_newline_in_stdout=False)
            after = change(before)
            if after == before:
                raise WriteBackError(f"{base_name}:{path} at {base[:12]} already holds this change; "
                                     "nothing to commit")
            with tempfile.TemporaryFile() as stdin:  # the new blob's content, read by git
                stdin.write(after.encode("utf-8"))
                stdin.seek(0)
                blob = self._git(repo, "hash-object", "-w", "--stdin", "--path", path, istream=stdin).strip()
            with tempfile.TemporaryDirectory(prefix="reconciler-index-") as tmp:
                index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
                self._git(repo, "read-tree", base, env=index)
                self._git(repo, "update-index", "--cacheinfo", f"{mode},{blob},{path}", env=index)
                tree = self._git(repo, "write-tree", env=index).strip()
            commit = self._git(repo, "commit-tree", tree, "-p", base, "-m", message, env=AUTHOR).strip()
            self._git(repo, "update-ref", f"refs/heads/{branch}", commit, "0" * 40)  # only if new
            if self.write_back is not None:
                try:
                    self._git(repo, "push", "--porcelain", "origin", f"{commit}:refs/heads/{self.write_back}")
                except ReconcilerError:
                    self._git(repo, "update-ref", "-d", f"refs/heads/{branch}", commit)
                    raise
            return Committed(repository=str(repo.git_dir), branch=branch, commit=commit, path=path,
                             base=base_name, pushed_to=self.write_back)

