"""Writing a patched spec into its file: only the bytes of the patched fields change.

A spec file is a person's text: comments after list items, quotes they chose, flow
collections (`args: ["-y", "server"]`, `docs: {url: …, transport: http}`), several objects
separated by `---`, anchors and aliases. Loading it into a round-trip tree and dumping the
tree re-spells all of that (ruamel drops the inline comments of items it rewrites, turns
flow lists into block lists, adds a `---` before the first of several documents). So the
spec file is edited the way the clients' YAML files are (`yamlspans`): the text is the
document, and each change replaces one span of it.

**Documents.** The file is cut into its documents at the `---` and `...` lines (YAML
forbids those at the start of a line inside a document, block scalars included); the
document declaring the object is edited on its own and put back between the others' bytes.

**From a patch to spans.** The caller changes a copy of the object's spec read as ruamel's
round-trip values (`change`, see `specpatch.apply_patch`): those carry the file's styles to
what a patch writes (a new rule quoted as the list quotes its rules, a list made in the
flow style of the one it replaces). The old and new specs are then compared, and only what
differs is written: a key that changed is set (a scalar in place, its comment kept), a
new key goes where the new spec puts it, a removed key goes with its lines; a list gets
item edits (its other items keep their bytes) and a rule inside a block list is edited
field by field (`rules[0].content`).

**Anchors.** A value written once with an anchor (`github: &gh {…}`) and used again through
an alias (`github-readonly: *gh`) is one value in two places: a patch of one place never
changes the other. A patch of the alias's place writes the patched value out in full
there (the anchor keeps its value); a patch inside the anchored value is refused, naming the
anchor and its aliases (`yamlspans` refuses edits inside shared nodes), for a person to
decide whether both should change. Every edit is read back as `yamlspans` checks it, and
the whole file after it: the other documents must read as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.drivers.agents.documents import DocumentError, ListEdit
from reconciler.drivers.agents.yamlnodes import Steps, end_of_line, plain, same
from reconciler.drivers.agents.yamlspans import YamlSpanDocument
from reconciler.errors import ReconcilerError
from reconciler.models.common import ObjectRef

# A document marker at the start of a line, and what follows it on that line.
_MARKER = re.compile(r"^(---|\.\.\.)(?=[ \t\r\n]|$)(.*)$", re.MULTILINE)


class PatchError(ReconcilerError):
    """A patch that cannot be applied (an unknown field, no such object in the file, a value
    shared through an anchor)."""


def _documents(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, editable) of each document's text between the markers; a document
    whose `---` line holds content of its own (`--- !tag`) is not editable here."""
    pieces: list[tuple[int, int, bool]] = []
    start, editable = 0, True
    for marker in _MARKER.finditer(text):
        pieces.append((start, marker.start(), editable))
        start = end_of_line(text, marker.start())
        tail = marker.group(2).strip()
        editable = marker.group(1) == "---" and (not tail or tail.startswith("#"))
    pieces.append((start, len(text), editable))
    return pieces


def _readings(text: str) -> list[Any] | None:
    """The documents of a text as a YAML reader sees them (None: it does not read)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError:
        return None


def _declares(value: Any, ref: ObjectRef) -> bool:
    meta = value.get("metadata") if isinstance(value, Mapping) else None
    return (isinstance(meta, Mapping) and value.get("kind") == ref.kind and meta.get("name") == ref.name
            and meta.get("namespace", "default") == ref.namespace)


def _styled(text: str) -> Any:
    """The document's spec as ruamel's round-trip values, quotes and flow styles kept, with
    no value shared between places (a patch of an alias's place must not reach its anchor)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    def unshared(value: Any) -> Any:
        if isinstance(value, CommentedMap):
            out: CommentedMap | CommentedSeq = CommentedMap((k, unshared(v)) for k, v in value.items())
        elif isinstance(value, CommentedSeq):
            out = CommentedSeq(unshared(v) for v in value)
        else:
            return value
        if value.fa.flow_style():
            out.fa.set_flow_style()
        return out

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return unshared(yaml.load(text)["spec"])


def rewrite(text: str, ref: ObjectRef, change: Callable[[Any], None], *, source: str) -> str:
    """The spec file's text with `change` made to `ref`'s spec (see the module docstring);
    the same text when the change changes nothing."""
    found = None
    for start, end, editable in _documents(text):
        readings = _readings(text[start:end]) or []
        if editable and len(readings) == 1 and _declares(readings[0], ref):
            found = (start, end)
    if found is None:
        raise PatchError(f"{source}: no {ref.short} with a spec in this file that can be edited "
                             "in place; nothing was written")
    start, end = found
    piece = text[start:end]
    line = text.count("\n", 0, start)  # the document's first line, counted from 0
    try:
        doc = YamlSpanDocument(piece, source)
        old = doc.get(("spec",))
        if not isinstance(old, dict):
            raise PatchError(f"{source}: {ref.short} has no spec mapping; nothing was written")
        new = _styled(piece)
        change(new)
        _write(doc, ("spec",), old, new)
    except DocumentError as exc:
        where = f"{exc.source}:{(exc.line or 1) + line}" + (f":{exc.column}" if exc.column else "")
        raise PatchError(f"{where}: {exc.reason}; nothing was written") from None
    out = text[:start] + (doc.render() or "") + text[end:]
    before, after = _readings(text), _readings(out)
    if before is not None and (after is None or len(after) != len(before)):
        # The other documents keep their bytes; this says the file still cuts into the same.
        raise PatchError(f"{source}: the patch could not be written without changing the file's other "
                         "documents; nothing was written")
    return out


def _write(doc: YamlSpanDocument, path: Steps, old: Any, new: Any) -> None:
    """Make the value at `path` (now `old`, plain) read as `new` (round-trip values), by as
    small edits as the document allows."""
    if same(old, plain(new)):
        return
    if isinstance(old, dict) and isinstance(new, Mapping) and new and doc.alias(path) is None:
        _write_mapping(doc, path, old, new)
    elif isinstance(old, list) and isinstance(new, list) and new and doc.alias(path) is None:
        _write_list(doc, path, old, new)
    else:  # a scalar, a new shape, or an alias's place: the value written out in full here
        doc.set(path, new)


def _write_mapping(doc: YamlSpanDocument, path: Steps, old: dict[str, Any], new: Mapping[str, Any]) -> None:
    # New keys first, each after the key it follows in the new spec (a rule moved from
    # `deny` to a new `ask` takes deny's place), then the removed ones: a mapping is never
    # emptied on the way (deleting its last key would take the mapping with it).
    order, previous = list(old), None
    for key, value in new.items():
        if key in old:
            _write(doc, (*path, key), old[key], value)
        else:
            position = order.index(previous) + 1 if previous is not None else 0
            doc.set((*path, key), value, position=position)
            order.insert(position, key)
        previous = key
    for key in old:
        if key not in new:
            doc.delete((*path, key))


def _write_list(doc: YamlSpanDocument, path: Steps, old: list[Any], new: list[Any]) -> None:
    wanted = [plain(item) for item in new]
    # Items kept in order, the others removed, new ones appended (an added rule) ...
    kept, removed = 0, []
    for index, item in enumerate(old):
        if kept < len(wanted) and same(item, wanted[kept]):
            kept += 1
        else:
            removed.append(index)
    appended = new[kept:]
    # ... or, for a list of the same length, the items that changed in place (an argument, a rule).
    changed = [i for i in range(len(old)) if not same(old[i], wanted[i])] if len(old) == len(new) else None
    if changed is None or len(changed) > len(removed) + len(appended):
        doc.edit_list(path, ListEdit(remove=frozenset(removed), append=tuple(appended)))
        return
    replace = {}
    for i in changed:
        if isinstance(old[i], dict) and isinstance(new[i], Mapping) and doc.where((*path, i)) is not None:
            _write(doc, (*path, i), old[i], new[i])  # an item of a block list, edited field by field
        else:
            replace[i] = new[i]
    if replace:
        doc.edit_list(path, ListEdit(replace=replace))
