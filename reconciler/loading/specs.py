"""Loading a set of specs from a folder or a git revision: all or nothing.

A spec set is every `*.yaml` / `*.yml` document under a path. Loading collects every
problem of every file before it reports (fixing one error at a time is tedious), and a set
with a single problem is refused whole: a folder with one bad file applies nothing. The
same object (kind, namespace, name) declared twice is an error naming both places.

`load_specs(path)` reads the working tree; `load_specs(path, repo=..., rev=...)` reads the
same path as it was in a git revision (gitpython), without touching the working tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from reconciler.errors import SpecError, SpecProblem
from reconciler.loading.decoding import decode_spec
from reconciler.loading.documents import SpecDocument, parse_documents
from reconciler.loading.limits import LoaderLimits
from reconciler.loading.validation import validate_document
from reconciler.models import ObjectRef, Resource

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an object was declared."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class SpecSet:
    """A validated set of objects, in declaration order, with where each came from."""

    objects: tuple[Resource, ...] = ()
    origins: dict[ObjectRef, Origin] = field(default_factory=dict)
    revision: str | None = None

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def get(self, ref: ObjectRef) -> Resource | None:
        return next((o for o in self.objects if o.ref == ref), None)

    def of_kind(self, kind: str) -> tuple[Resource, ...]:
        return tuple(o for o in self.objects if kind == o.KIND)

    def replacing(self, *objs: Resource) -> SpecSet:
        """The same set with these objects in place of those of the same ref (declared where
        they were); an object the set does not hold is not added."""
        by_ref = {o.ref: o for o in objs}
        return SpecSet(tuple(by_ref.get(o.ref, o) for o in self.objects), self.origins, self.revision)


def build_spec_set(documents: Iterable[SpecDocument], *, revision: str | None = None) -> SpecSet:
    """Validate documents into a spec set; raise `SpecError` with every problem found."""
    problems: list[SpecProblem] = []
    objects: list[Resource] = []
    origins: dict[ObjectRef, Origin] = {}
    try:
        for doc in documents:
            obj, found = validate_document(doc)
            problems += found
            if obj is None:
                continue
            origin = Origin(doc.source, doc.line, doc.column)
            if obj.ref in origins:
                problems.append(
                    SpecProblem(doc.source, doc.line, doc.column, "metadata.name",
                                f"{obj.ref.short} is declared twice: first at {origins[obj.ref]}")
                )
                continue
            origins[obj.ref] = origin
            objects.append(obj)
    except SpecError as exc:
        raise SpecError([*problems, *exc.problems]) from None
    if problems:
        raise SpecError(problems)
    return SpecSet(objects=tuple(objects), origins=origins, revision=revision)


# A spec file as found: its name, its size in bytes, and how to read its first n bytes.
SpecFile = tuple[str, int, Callable[[int], bytes]]


def _documents_from_files(files: Iterable[SpecFile], *, limits: LoaderLimits) -> Iterator[SpecDocument]:
    """Decode and parse each file; collect every file's problems instead of stopping.

    Only `max_bytes + 1` bytes of a file are ever read: enough to say where it is too big."""
    problems: list[SpecProblem] = []
    for source, size, read in files:
        try:
            text = decode_spec(read(limits.max_bytes + 1), source=source, limits=limits, size=size)
            yield from parse_documents(text, source=source, limits=limits)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)


def _read_file(file: Path) -> Callable[[int], bytes]:
    def read(count: int) -> bytes:
        try:
            with file.open("rb") as stream:
                return stream.read(count)
        except OSError as exc:
            raise SpecError([SpecProblem(str(file), None, None, "",
                                         f"cannot read: {exc.strerror or exc}")]) from None
    return read


def _working_tree_files(path: Path) -> Iterator[SpecFile]:
    if not path.exists():
        raise SpecError([SpecProblem(str(path), None, None, "", "no such file or directory")])
    if path.is_file():
        candidates = [path]
    else:
        candidates = sorted(
            p for p in path.rglob("*")
            if p.suffix in SPEC_SUFFIXES and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    for file in candidates:
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise SpecError([SpecProblem(str(file), None, None, "",
                                         f"cannot read: {exc.strerror or exc}")]) from None
        yield str(file), size, _read_file(file)


def _git_files(repo_path: Path, rev: str, path: str) -> tuple[str, Iterator[SpecFile]]:
    import git  # gitpython: imported here so that plain folder loading does not pay for it

    try:
        repo = git.Repo(repo_path, search_parent_directories=True)
        commit = repo.commit(rev)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SpecError([SpecProblem(str(repo_path), None, None, "", "not a git repository")]) from None
    except (git.BadName, ValueError):
        raise SpecError([SpecProblem(str(repo_path), None, None, "",
                                     f"unknown git revision {rev!r}")]) from None
    rel = path.strip("/")
    if rel in ("", "."):
        tree = commit.tree
    else:
        try:
            tree = commit.tree / rel
        except KeyError:
            raise SpecError([SpecProblem(f"{rev}:{rel}", None, None, "",
                                         "no such path in this revision")]) from None

    def files() -> Iterator[SpecFile]:
        # traverse() is typed as also yielding (parent, item) edges, which only as_edge=True does.
        blobs = [tree] if tree.type == "blob" else [
            b for b in cast("Iterator[git.Tree | git.Blob | git.Submodule]", tree.traverse())
            if b.type == "blob"
            and Path(b.path).suffix in SPEC_SUFFIXES
            and not any(p.startswith(".") for p in Path(b.path).parts)
        ]
        for blob in sorted(blobs, key=lambda b: str(b.path)):  # a str, typed as str | PathLike
            yield f"{rev}:{blob.path}", blob.size, blob.data_stream.read

    return commit.hexsha, files()


def resolve_revision(rev: str, *, repo: str | Path = ".") -> str:
    """The commit SHA of `rev` (a branch, tag, `HEAD~1`, a SHA) in the repository at `repo`."""
    sha, _ = _git_files(Path(repo), rev, "")
    return sha


def load_specs(path: str | Path, *, repo: str | Path | None = None, rev: str | None = None,
               limits: LoaderLimits | None = None) -> SpecSet:
    """Load and validate every spec under `path`, from the working tree or a git revision.

    With `rev`, `path` is relative to the root of the repository at `repo` (default: the
    current directory), and the returned set records the commit SHA as its revision.
    `limits` bound what each file may cost (`Settings.loader_limits()`; defaults otherwise).
    """
    limits = limits or LoaderLimits()
    if rev is None:
        return build_spec_set(_documents_from_files(_working_tree_files(Path(path)), limits=limits))
    sha, files = _git_files(Path(repo or "."), rev, str(path))
    return build_spec_set(_documents_from_files(files, limits=limits), revision=sha)
