"""Validating spec documents against the kind models, with errors a person can act on.

pydantic reports each error with a location tuple and a message written for developers
("Input should be a valid integer"). This module turns them into the project's
`SpecProblem`s: file, line and column from the document's position tree, the field path in
YAML naming, and a message of the form "expected X, got Y" — plus "did you mean" for
misspelled field names, found through the model's own JSON Schema.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import SpecProblem
from reconciler.loading.documents import SpecDocument, format_path, locate
from reconciler.models import API_VERSION, KINDS, Resource

_EXPECTED_BY_TYPE = {
    "missing": "required field is missing",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "datetime_type": "expected a date and time (RFC 3339)",
    "datetime_parsing": "expected a date and time (RFC 3339)",
}


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@cache
def _schema(model: type[Resource]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode="validation")


def _allowed_fields(model: type[Resource], path: tuple[str | int, ...]) -> list[str]:
    """The field names allowed at `path` (the mapping that holds an unknown field)."""
    root = _schema(model)
    defs = root.get("$defs", {})

    def resolve(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        branches = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if branches:
            return [r for b in branches for r in resolve(b)]
        return [node]

    nodes = resolve(root)
    for part in path:
        nxt: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int) and "items" in node:
                nxt += resolve(node["items"])
            elif isinstance(part, str) and part in node.get("properties", {}):
                nxt += resolve(node["properties"][part])
            elif isinstance(part, str) and isinstance(node.get("additionalProperties"), dict):
                nxt += resolve(node["additionalProperties"])
        nodes = nxt
    names: list[str] = []
    for node in nodes:
        names += [n for n in node.get("properties", {}) if n not in names]
    return names


def _message(error: ErrorDetails, model: type[Resource] | None, path: tuple) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        field = path[-1] if path else "?"
        allowed = _allowed_fields(model, path[:-1]) if model else []
        message = f"unknown field {field!r}"
        close = difflib.get_close_matches(str(field), allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
        return message
    if kind == "missing":
        return _EXPECTED_BY_TYPE[kind]
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected {expected}; got {_short_repr(value)}"
    if kind in ("value_error", "assertion_error"):
        text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return text if "got" in text else f"{text}; got {_short_repr(value)}"
    if kind in _EXPECTED_BY_TYPE:
        return f"{_EXPECTED_BY_TYPE[kind]}; got {_short_repr(value)}"
    text = error["msg"].replace("Input should be", "expected").replace("String should", "expected")
    return f"{text}; got {_short_repr(value)}"


def problems_from_validation(
    exc: ValidationError, doc: SpecDocument, model: type[Resource] | None
) -> list[SpecProblem]:
    """Translate a pydantic `ValidationError` into located problems, merged per place."""
    merged: dict[tuple, list[str]] = {}
    places: dict[tuple, tuple[int | None, int | None]] = {}
    for error in exc.errors(include_url=False):
        path, line, column = locate(doc.node, tuple(error["loc"]), key=error["type"] == "extra_forbidden")
        message = _message(error, model, path)
        messages = merged.setdefault(path, [])
        if message not in messages:
            messages.append(message)
        places[path] = (line, column)
    return [
        SpecProblem(
            source=doc.source,
            line=places[path][0],
            column=places[path][1],
            path=format_path(path),
            message="; or ".join(messages),
        )
        for path, messages in merged.items()
    ]


def validate_document(doc: SpecDocument) -> tuple[Resource | None, list[SpecProblem]]:
    """Validate one document against the model of its kind."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [
            SpecProblem(doc.source, doc.line, doc.column, "", "expected a mapping with "
                        f"apiVersion, kind, metadata and spec; got {_short_repr(data)}")
        ]
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(KINDS))
        _path, line, column = locate(doc.node, ("kind",))
        if kind is None:
            message = f"required field is missing; expected one of: {known}"
        else:
            message = f"unknown kind {_short_repr(kind)}; expected one of: {known}"
        return None, [SpecProblem(doc.source, line or doc.line, column or doc.column, "kind", message)]
    if data.get("apiVersion") != API_VERSION:
        _path, line, column = locate(doc.node, ("apiVersion",))
        got = data.get("apiVersion")
        return None, [
            SpecProblem(doc.source, line or doc.line, column or doc.column, "apiVersion",
                        f"expected {API_VERSION!r}; got {_short_repr(got)}")
        ]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation(exc, doc, model)
