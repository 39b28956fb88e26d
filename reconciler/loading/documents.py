"""Parsing YAML spec files into documents that remember where every value came from.

ruamel.yaml's round-trip loader keeps the line and column of each key and value; we keep
that tree next to a plain-Python copy of the data. Validation runs on the plain copy and
maps each error's location back through the tree, so that every message can name the
file, line, column and field path. Multi-document files give one document each; empty
documents (a trailing `---`) are skipped.

Parsing is bounded (see `limits.py`): the file's events are charged to a node budget
before anything is composed or expanded, and explicit tags are checked as nodes are
composed (`composing.py`), so hostile input is refused at its location, never built.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from reconciler.errors import SpecError, SpecProblem
from reconciler.loading.composing import bounded_composer
from reconciler.loading.limits import LoaderLimits, NodeBudget, Refused, precheck_events


@dataclass(frozen=True, slots=True)
class SpecDocument:
    """One YAML document: its plain data, its position tree and where it starts."""

    source: str
    index: int
    data: Any
    node: Any
    line: int
    column: int


def to_plain(node: Any) -> Any:
    """Turn ruamel's round-trip containers and scalar subclasses into plain Python values."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, date):
        return node
    return node


def parse_documents(text: str, *, source: str, limits: LoaderLimits | None = None) -> Iterator[SpecDocument]:
    """Yield the non-empty documents of a YAML text; a syntax error, a limit crossed or a
    refused tag raises `SpecError` naming the place."""
    limits = limits or LoaderLimits()
    yaml = YAML(typ="rt")
    yaml.Composer = bounded_composer(NodeBudget(limits))
    try:
        precheck_events(text, limits=limits)
        nodes = list(yaml.load_all(text))
    except Refused as exc:
        raise SpecError([SpecProblem(source, exc.line + 1, exc.column + 1, "", exc.message)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            [
                SpecProblem(
                    source=source,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                    path="",
                    message=f"invalid YAML: {problem}",
                )
            ]
        ) from None
    except YAMLError as exc:
        raise SpecError([SpecProblem(source, None, None, "", f"invalid YAML: {exc}")]) from None
    for index, node in enumerate(nodes):
        if node is None:
            continue
        line, column = node_position(node)
        yield SpecDocument(
            source=source,
            index=index,
            data=to_plain(node),
            node=node,
            line=line or 1,
            column=column or 1,
        )


def node_position(node: Any) -> tuple[int | None, int | None]:
    """1-based line and column where a mapping or sequence node starts."""
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None, None
    return lc.line + 1, lc.col + 1


def locate(node: Any, loc: tuple[str | int, ...], *, key: bool = False) -> tuple[
    tuple[str | int, ...], int | None, int | None
]:
    """Follow a validation location through the position tree.

    Returns the part of `loc` that names real places in the document (pydantic adds
    union-member tags such as `'str'` that are not keys) and the 1-based line and column of
    the deepest place found: the value, or the key itself when `key` is true.
    """
    path: list[str | int] = []
    line, column = node_position(node)
    current = node
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(current, CommentedMap) and part in current:
            k_line, k_col = current.lc.key(part)
            v_line, v_col = current.lc.value(part)
            path.append(part)
            if key and last:
                line, column = k_line + 1, k_col + 1
            else:
                line, column = v_line + 1, v_col + 1
            current = current[part]
        elif isinstance(current, CommentedSeq) and isinstance(part, int) and part < len(current):
            i_line, i_col = current.lc.item(part)
            path.append(part)
            line, column = i_line + 1, i_col + 1
            current = current[part]
        elif last and isinstance(current, dict):
            # A missing field: report the mapping that should hold it.
            path.append(part)
        # else: a tag pydantic added (a union member, a validator name): not a place.
    return tuple(path), line, column


def format_path(path: tuple[str | int, ...]) -> str:
    """`spec.columns[2].from` from `('spec', 'columns', 2, 'from')`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
