"""Which objects a change between two git revisions adds, changes or removes.

A pull request is reviewed by object, not by file: the specs under one path are loaded
and validated at both revisions (gitpython, the working tree untouched), and each object
is matched by its identity (kind, namespace, name). An object is changed when its spec,
labels or annotations differ; moving it to another file or reformatting its YAML changes
nothing. Objects that did not change are not planned at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.loading.limits import LoaderLimits
from reconciler.loading.specs import Origin, SpecSet, load_specs, resolve_revision
from reconciler.models import ObjectRef, Resource


class ObjectChange(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class SpecChange:
    """One object that differs between the two revisions."""

    ref: ObjectRef
    change: ObjectChange
    base: Resource | None
    head: Resource | None
    origin: Origin | None  # where it is declared at head (at base when removed)


@dataclass(frozen=True, slots=True)
class RevisionDiff:
    base: str  # commit SHAs
    head: str
    changes: tuple[SpecChange, ...]
    unchanged: tuple[ObjectRef, ...]


def _comparable(obj: Resource) -> dict[str, Any]:
    document = obj.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"status"})
    meta = document.get("metadata", {})
    document["metadata"] = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    return document


def diff_spec_sets(base: SpecSet, head: SpecSet) -> RevisionDiff:
    """The objects added, changed and removed from `base` to `head` (pure)."""
    changes: list[SpecChange] = []
    unchanged: list[ObjectRef] = []
    before = {o.ref: o for o in base}
    for obj in head:
        old = before.get(obj.ref)
        if old is None:
            changes.append(SpecChange(obj.ref, ObjectChange.ADDED, None, obj, head.origins.get(obj.ref)))
        elif _comparable(old) != _comparable(obj):
            changes.append(SpecChange(obj.ref, ObjectChange.CHANGED, old, obj, head.origins.get(obj.ref)))
        else:
            unchanged.append(obj.ref)
    now = {o.ref for o in head}
    for obj in base:
        if obj.ref not in now:
            changes.append(SpecChange(obj.ref, ObjectChange.REMOVED, obj, None, base.origins.get(obj.ref)))
    return RevisionDiff(base.revision or "", head.revision or "", tuple(changes), tuple(unchanged))


def compare_revisions(*, base: str, head: str, path: str | Path = "specs",
                      repo: str | Path = ".", limits: LoaderLimits | None = None) -> RevisionDiff:
    """Load the specs under `path` at both revisions of the repository at `repo`.

    A path missing at `base` counts as empty (the specs were added by the change); a path
    missing at `head` likewise (they were all removed). Invalid specs at either revision
    raise `SpecError` with the revision in the file names."""
    from reconciler.errors import SpecError

    def at(rev: str) -> SpecSet:
        try:
            return load_specs(path, repo=repo, rev=rev, limits=limits)
        except SpecError as exc:
            if len(exc.problems) == 1 and exc.problems[0].message == "no such path in this revision":
                return SpecSet(revision=resolve_revision(rev, repo=repo))
            raise

    return diff_spec_sets(at(base), at(head))
