"""From archive facts to bindings: filters, templates, and the facts that cannot bind.

A derive rule's subject, role and scope are templates (`dept:{institution}/{department}`,
`{{` and `}}` for literal braces) filled from one distinct fact row at a time. A fact
becomes a binding only when every placeholder it fills is known: NULL, `''` and `'*'` are
unknown (`'*'` is "unrestricted" for access-control IDs and "unknown" for the 5.34 issuer
placeholders), so `'*'` never becomes a scope and no `dept:*/*` group is ever granted
anything. A rendered role must be a declared role; a rendered subject or scope must be
usable as a key (`keys.usable`). Facts dropped for any of these reasons are counted per
reason and shown in the plan, with a few examples, instead of failing the run.

`matches` filters run here (Python regular expressions, as the spec model validates
them, searched anywhere in the value); the other filters already ran in the archive.
Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.drivers.rbac.keys import BindingKey, usable
from reconciler.models.rbac import DeriveRule, FactFilter, FilterOperator

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
SAMPLES = 5


Parts = tuple[tuple[str, bool], ...]
"""A parsed template: (literal text, False) and (placeholder name, True) in order."""


def parse(template: str) -> Parts:
    """Split a template once, so that filling it per fact row is a join, not a regex scan."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        literal = template[position:match.start()] + ("{" if token == "{{" else "}" if token == "}}" else "")
        if literal:
            parts.append((literal, False))
        if match.group(1) is not None:
            parts.append((match.group(1), True))
        position = match.end()
    if template[position:]:
        parts.append((template[position:], False))
    return tuple(parts)


def formatter(parts: Parts) -> str:
    """The parsed template as a `str.format_map` pattern (filled in C, once per fact)."""
    return "".join("{" + text + "}" if named else text.replace("{", "{{").replace("}", "}}")
                   for text, named in parts)


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill `{name}` placeholders from `values` (`{{` / `}}` are literal braces)."""
    return formatter(parse(template)).format_map(values)


def known(value: Any) -> str | None:
    """A fact value as text, or None when it is unknown (NULL, empty, '*')."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return None if text in ("", "*") else text


def _matches(flt: FactFilter, value: str | None) -> bool:
    return value is not None and any(re.search(pattern, value) for pattern in flt.values)


@dataclass(frozen=True, slots=True)
class Derivation:
    """What one rule made of its facts."""

    rule: str
    facts: int
    bindings: frozenset[BindingKey]
    unknown: int = 0  # a placeholder value was unknown ('*', NULL, empty)
    filtered: int = 0  # a matches filter dropped it
    undeclared: int = 0  # the rendered role is not declared
    invalid: int = 0  # the rendered subject or scope cannot be a key
    samples: tuple[str, ...] = ()

    @property
    def skipped(self) -> int:
        return self.unknown + self.undeclared + self.invalid


def derive(rule: DeriveRule, columns: Sequence[str], rows: Iterable[Sequence[Any]],
           roles: frozenset[str]) -> Derivation:
    """The bindings `rule` derives from distinct fact `rows` with `columns`."""
    index = {name: i for i, name in enumerate(columns)}
    placeholders = sorted(rule.placeholders)
    post = [f for f in rule.filters if f.operator is FilterOperator.MATCHES]
    subject_format, role_format = formatter(parse(rule.subject)), formatter(parse(rule.role))
    scope_format = formatter(parse(rule.scope)) if rule.scope is not None else None
    bindings: set[BindingKey] = set()
    counts = {"facts": 0, "unknown": 0, "filtered": 0, "undeclared": 0, "invalid": 0}
    samples: list[str] = []

    def skip(reason: str, message: str) -> None:
        counts[reason] += 1
        if len(samples) < SAMPLES:
            samples.append(message)

    for row in rows:
        counts["facts"] += 1
        if not all(_matches(f, known(row[index[f.field]])) for f in post):
            counts["filtered"] += 1
            continue
        values: dict[str, str] = {}
        for name in placeholders:
            value = known(row[index[name]])
            if value is None:
                break
            values[name] = value
        else:
            subject, role = subject_format.format_map(values), role_format.format_map(values)
            scope = scope_format.format_map(values) if scope_format is not None else None
            if role not in roles:
                skip("undeclared", f"role {role!r} is not declared (subject {subject!r})")
            elif not usable(subject) or (scope is not None and not usable(scope)):
                skip("invalid", f"subject {subject!r} / scope {scope!r} cannot be a key "
                                "(empty, padded, or holding ' → ' or ' @ ')")
            else:
                bindings.add((subject, role, scope))
            continue
        skip("unknown", f"{name} is unknown ('*' or empty) in {dict(zip(columns, row, strict=True))}")
    return Derivation(rule=rule.name, facts=counts["facts"], bindings=frozenset(bindings),
                      unknown=counts["unknown"], filtered=counts["filtered"],
                      undeclared=counts["undeclared"], invalid=counts["invalid"], samples=tuple(samples))
