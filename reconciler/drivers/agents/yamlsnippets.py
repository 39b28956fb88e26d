"""The YAML text the reconciler writes into a person's file, and how strict readers read it.

`yamlspans` never dumps a whole document; it writes snippets (a `key: value` entry, list
items, a flow collection) and splices them into the user's text. Those snippets are
rendered here by ruamel, in block or flow style, with the file's own mapping indentation
and sequence style, `None` as `null` and multi-line strings as literal blocks. A value that
carries a style of its own (a quoted ruamel string, a round-trip list or mapping read in
flow style: what the spec write-back takes from the list it replaces) keeps it.

**Quoting.** A config file is read by more than one YAML reader: the client, and every
tool people point at their dotfiles. PyYAML reads YAML 1.1: `yes`, `on`, `1:20` are not
strings there, and inside a flow collection (`[...]`, `{...}`) a `?`, `,`, `[`, `]`, `{` or
`}` ends a plain scalar, so `{command: rm -rf( .*)?}` is an error to it. ruamel's emitter
follows YAML 1.2, which allows that text, and would write it bare. So a string goes out
plain only when it reads back as the same string in the context it is written in (block,
or inside a flow collection), as a key, an item and a value, in both PyYAML (`safe_load`)
and ruamel; otherwise it is single-quoted (double-quoted when it holds a line break or a
character single quotes cannot hold). `- command: rm -rf( .*)?` stays bare in a block
list, where both read it. Whether a plain scalar reads back is tested by parsing it, not
guessed from a character list (cached per string and context).

**Strict reading.** `strict_reading` is PyYAML's reading of a whole text (None when it
refuses it): `yamlspans` checks after every edit that a file PyYAML could read before still
reads, and changed only where the edit meant to change it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    ScalarString,
    SingleQuotedScalarString,
)


@dataclass(frozen=True, slots=True)
class Style:
    """How the file indents: a child key `mapping` columns in, a dash `offset` columns in."""

    mapping: int = 2
    offset: int = 0


class _Representer(RoundTripRepresenter):
    """Writes None as `null` (ruamel writes nothing, which reads back as null but looks unset)."""


_Representer.add_representer(
    type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))

_UNREADABLE = object()


def _pyyaml(text: str) -> Any:
    import yaml  # only when something is written: a no-op run never pays for the import

    try:
        return yaml.load(text, Loader=yaml.SafeLoader)  # SafeLoader: what yaml.safe_load uses
    except (yaml.YAMLError, RecursionError):
        return _UNREADABLE


@functools.cache
def _ruamel() -> YAML:
    return YAML(typ="safe", pure=True)


def _ruamel_reading(text: str) -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        return _ruamel().load(text)
    except (YAMLError, RecursionError):
        return _UNREADABLE


def strict_reading(text: str) -> Any:
    """PyYAML's reading of the text ({} when empty), or None when PyYAML refuses it."""
    value = _pyyaml(text)
    if value is _UNREADABLE:
        return None
    return {} if value is None else value


# Where a written string may stand, as (document with the string at %s, what it must read as).
_Case = tuple[str, Callable[[str], Any]]
_BLOCK: tuple[_Case, ...] = (("k: %s\n", lambda t: {"k": t}), ("- %s\n", lambda t: [t]),
                             ("%s: v\n", lambda t: {t: "v"}))
_FLOW: tuple[_Case, ...] = (("[%s, x]\n", lambda t: [t, "x"]), ("[%s]\n", lambda t: [t]),
                            ("{k: %s, x: y}\n", lambda t: {"k": t, "x": "y"}),
                            ("{k: %s}\n", lambda t: {"k": t}), ("{%s: v}\n", lambda t: {t: "v"}))


@functools.lru_cache(maxsize=4096)
def plain_reads_back(text: str, *, flow: bool) -> bool:
    """Whether `text`, written as a plain scalar in block (or flow) context, is read as
    `text` wherever it may stand there: a value, an item, a key."""
    if not text or "\n" in text or "\r" in text:
        return False
    for shape, want in _FLOW if flow else _BLOCK:
        doc = shape % text
        for reading in (_pyyaml(doc), _ruamel_reading(doc)):
            if reading is _UNREADABLE or not _same_strings(reading, want(text)):
                return False
    return True


def _same_strings(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return (isinstance(got, dict) and len(got) == len(want)
                and all(type(k) is str and k in want and _same_strings(v, want[k]) for k, v in got.items()))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same_strings, got, want))
    return type(got) is str and got == want


def _flowing(value: Any) -> bool:
    """A round-trip collection that carries the flow style it was read in (`["-y", "x"]`)."""
    return isinstance(value, CommentedMap | CommentedSeq) and bool(value.fa.flow_style())


def _for_dump(value: Any, *, flow: bool) -> Any:
    inner = flow or _flowing(value)
    out: CommentedMap | CommentedSeq | None = None
    if isinstance(value, Mapping):
        out = CommentedMap((_for_dump(k, flow=inner), _for_dump(v, flow=inner)) for k, v in value.items())
    elif isinstance(value, list | tuple):
        out = CommentedSeq(_for_dump(v, flow=inner) for v in value)
    if out is not None:
        if inner and not flow:
            out.fa.set_flow_style()  # a flow value in a block snippet stays one
        return out
    if isinstance(value, str) and not isinstance(value, ScalarString):
        if "\n" in value and flow:
            return DoubleQuotedScalarString(value)  # a flow collection holds no block: escaped
        if "\n" in value:
            # A literal block's end is clipped to one newline: more would swallow the blank
            # lines that follow the snippet (ruamel then picks the style).
            return value if value.endswith("\n\n") else LiteralScalarString(value)
        if not plain_reads_back(value, flow=flow):
            return SingleQuotedScalarString(value)  # ruamel falls back to double quotes
    return value


def dump(value: Any, *, style: Style, flow: bool = False) -> str:
    """`value` as YAML text, block style (the file's indentation) or one flow collection."""
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.width = 4096
    yaml.default_flow_style = flow
    yaml.indent(mapping=style.mapping, sequence=style.offset + 2, offset=style.offset)
    out = io.StringIO()
    yaml.dump(_for_dump(value, flow=flow), out)
    return out.getvalue()


def flow_value(value: Any, *, style: Style) -> str:
    """A value as it stands inside a flow collection (a scalar alone would be a document of
    its own, with a `...` end marker)."""
    return flow_entry("k", value, style=style)[len("k: "):]


def flow_entry(key: str, value: Any, *, style: Style) -> str:
    """`key: value` as it stands inside a flow mapping."""
    return dump({key: value}, style=style, flow=True).strip()[1:-1]


def flow_items(items: list[Any], *, style: Style) -> str:
    """The items as they stand inside a flow sequence, comma-separated."""
    return dump(items, style=style, flow=True).strip()[1:-1]
