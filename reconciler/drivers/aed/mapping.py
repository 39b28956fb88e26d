"""From API items to typed rows: the column mapping and its transforms (pure).

Each mapped column names the API field it is filled from and a list of transforms,
applied in order: `trim`, `placeholderToNull` (필요 / 신규 / 미정 / 없음 and the spec's own
list become NULL), `parseNumber`, `parseDate`, `sidoShortName` / `sidoLongName`
(서울특별시 ↔ 서울), `prefixAddress` (the full-download address lacks the sido and gugun:
they are prepended when missing). Then the value is converted to the column's type.

A `Mapper` turns one item into a `Row`: the key, the values in column order, and the
problems found on the way (stage 1 of validation: required fields, types, lengths),
each naming the column and the rule. Field names are matched case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.drivers.aed.regions import address_region, long_sido, short_sido
from reconciler.models.aed import AedOperation, AedSourceBindingSpec, ColumnMapping, ColumnType, Transform

_DATE = re.compile(r"^(\d{4})[-./]?(\d{2})[-./]?(\d{2})$")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row is rejected: the stage, the rule, the column, what was wrong."""

    stage: str  # format | business | database
    rule: str  # required | types | lengths | duplicateKeys | bounds | sidoGugun | constraints | ...
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    key: str | None
    values: tuple[Any, ...]  # in the mapping's column order
    problems: tuple[Problem, ...] = ()
    raw: Mapping[str, str] | None = None  # the item, kept only for rejected rows


def _number(text: str) -> Decimal:
    value = Decimal(text.replace(",", ""))
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


def _date(text: str) -> date:
    match = _DATE.match(text)
    if not match:
        raise ValueError(f"expected a date such as 2025-12-01 or 20251201, got {text!r}")
    return date(int(match[1]), int(match[2]), int(match[3]))


def _typed(value: Any, type_: ColumnType) -> Any:
    """The value as the column's type; raises ValueError with a message on failure."""
    if value is None:
        return None
    if type_ is ColumnType.TEXT:
        return str(value)
    if type_ is ColumnType.NUMERIC:
        if isinstance(value, Decimal):
            return value
        try:
            return _number(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if type_ is ColumnType.INTEGER:
        try:
            number = value if isinstance(value, Decimal) else _number(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number != number.to_integral_value():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(number)
    if type_ is ColumnType.DATE:
        return value if isinstance(value, date) else _date(str(value).strip())
    if type_ is ColumnType.TIMESTAMP:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a timestamp such as 2025-12-01T09:00:00, got {value!r}") from None
    if type_ is ColumnType.BOOLEAN:
        text = str(value).strip().upper()
        if text in ("Y", "YES", "TRUE", "1"):
            return True
        if text in ("N", "NO", "FALSE", "0"):
            return False
        raise ValueError(f"expected Y/N or true/false, got {value!r}")
    raise ValueError(f"unknown type {type_}")


class Mapper:
    """Maps items of one binding; built once per run (lookups precomputed)."""

    def __init__(self, spec: AedSourceBindingSpec) -> None:
        self.spec = spec
        self.columns: tuple[ColumnMapping, ...] = tuple(spec.mapping.columns)
        self.names = tuple(m.column for m in self.columns)
        self.key_index = self.names.index(spec.target.key_column)
        self.placeholders = frozenset(spec.mapping.placeholders)
        required = set(spec.validation.format.required.fields)
        self.required = tuple(m.required or m.column in required for m in self.columns)
        fmt = spec.validation.format
        self.check_required = fmt.required.enabled
        self.check_types = fmt.types.enabled
        self.check_lengths = fmt.lengths.enabled
        from reconciler.drivers.aed.parsing import FIELDS, field_name

        # The parser names known fields in camelCase: one dict lookup per column; only an
        # unknown field is looked up case-insensitively.
        self.sources = tuple(field_name(m.source_field) for m in self.columns)
        self.known = tuple(source in FIELDS for source in self.sources)
        self.steps = tuple(self._compile(m) for m in self.columns)
        self._compiled = self.steps  # as compiled from the spec (see `_fuse`)
        if spec.source.operation is AedOperation.MANAGE_INFO:
            self._from_address()
        uses_address = any(Transform.PREFIX_ADDRESS in m.transforms for m in self.columns)
        self.needed_fields: frozenset[str] | None = (
            frozenset(self.sources) | ({"sido", "gugun"} if uses_address else set())
            if all(self.known) else None)
        self.plan = self._fuse()  # after every change to sources and steps
        from reconciler.drivers.aed.generating import RowFunction, row_function

        self.row: RowFunction = row_function(self, name=spec.target.table)
        """Map one item: `checked_row`'s result, by one function generated for this binding."""

    def _compile(self, mapping: ColumnMapping) -> tuple[Callable[[Any, Mapping[str, str]], Any], ...]:
        """The column's transforms and type conversion as a chain of small functions."""
        placeholders = self.placeholders
        table: dict[Transform, Callable[[Any, Mapping[str, str]], Any]] = {
            Transform.TRIM: lambda v, _: str(v).strip() or None,
            Transform.PLACEHOLDER_TO_NULL: lambda v, _: None if str(v).strip() in placeholders else v,
            Transform.PARSE_NUMBER: lambda v, _: _number(str(v).strip()),
            Transform.PARSE_DATE: lambda v, _: _date(str(v).strip()),
            Transform.SIDO_SHORT_NAME: lambda v, _: short_sido(str(v)) or v,
            Transform.SIDO_LONG_NAME: lambda v, _: long_sido(str(v)) or v,
            Transform.PREFIX_ADDRESS: lambda v, item: self._prefixed(str(v), item),
        }
        steps = [table[t] for t in mapping.transforms]
        if mapping.type is not ColumnType.TEXT:
            type_ = mapping.type
            steps.append(lambda v, _: _typed(v, type_))
        return tuple(steps)

    def _from_address(self) -> None:
        """`getEgytAedManageInfoInqire` sends no `sido`/`gugun` fields: its `buildAddress` is the
        full address. Columns mapped from sido or gugun read them from the address instead
        (then go through their own transforms); decided once here, not per row."""
        sources, steps = list(self.sources), list(self.steps)
        for index, source in enumerate(self.sources):
            if source in ("sido", "gugun"):
                part = 0 if source == "sido" else 1
                sources[index] = "buildAddress"
                steps[index] = (_address_part(part), *steps[index])
        self.sources, self.steps = tuple(sources), tuple(steps)

    def _fuse(self) -> tuple[_Column, ...]:
        """Per column, everything `checked_row` needs in one tuple, and one converter for the whole
        chain of steps: a specialised function for the usual chains on a string (the parser
        only ever gives strings), else the steps one by one. Both give the same value and
        raise the same errors; the specialised ones just skip the generic calls."""
        plan: list[_Column] = []
        for index, mapping in enumerate(self.columns):
            steps = self.steps[index]
            chain = _chain(steps)
            fast = (_specialised(mapping, self.placeholders, self._prefixed)
                    if steps is self._compiled[index] else None)
            plan.append((self.sources[index], self.known[index], fast or chain, chain, self.required[index],
                         mapping.max_length if self.check_lengths else None, mapping))
        return tuple(plan)

    @staticmethod
    def field(item: Mapping[str, str], name: str) -> str | None:
        value = item.get(name)
        if value is None:
            lowered = name.lower()
            for key, candidate in item.items():
                if key.lower() == lowered:
                    return candidate
        return value

    def _prefixed(self, address: str, item: Mapping[str, str]) -> str:
        sido = str(item.get("sido") or "").strip()
        gugun = str(item.get("gugun") or "").strip()
        if not sido:
            return address
        first = address.split(" ", 1)[0]
        if short_sido(first) is not None:  # already starts with a sido name
            return address
        prefix = f"{long_sido(sido) or sido} {gugun}".strip()
        return address if address.startswith(prefix) else f"{prefix} {address}"

    def checked_row(self, item: Mapping[str, str]) -> Row:
        """Map one item column by column, naming every problem (stage 1 of validation)."""
        values: list[Any] = []
        problems: list[Problem] | None = None
        check_types, check_required = self.check_types, self.check_required
        for source, known, fast, chain, required, max_length, mapping in self.plan:
            raw = item.get(source)
            if raw is None and not known:
                raw = self.field(item, mapping.source_field)
            unconvertible = False
            if raw is None:
                value: Any = None
            else:
                try:
                    value = fast(raw, item) if raw.__class__ is str else chain(raw, item)
                except (ValueError, InvalidOperation) as exc:
                    if check_types:
                        message = (f"expected a number, got {str(raw).strip()!r}"
                                   if isinstance(exc, InvalidOperation) or not str(exc) else str(exc))
                        problems = problems or []
                        problems.append(Problem("format", "types", mapping.column,
                                                f"{mapping.source_field}: {message}"))
                        unconvertible = True  # one problem for the value, not a second "required"
                    value = None
            if value is None:
                if required and check_required and not unconvertible:
                    problems = problems or []
                    problems.append(Problem("format", "required", mapping.column,
                                            f"{mapping.source_field}: required, got nothing"))
            elif max_length is not None and isinstance(value, str) and len(value) > max_length:
                problems = problems or []
                problems.append(Problem("format", "lengths", mapping.column,
                                        f"{mapping.source_field}: at most {max_length} "
                                        f"characters, got {len(value)}"))
            values.append(value)
        key = values[self.key_index]
        if problems:
            return Row(None if key is None else str(key), tuple(values), tuple(problems), item)
        return Row(None if key is None else str(key), tuple(values))


Step = Callable[[Any, Mapping[str, str]], Any]
_Column = tuple[str, bool, Step, Step, bool, int | None, ColumnMapping]
"""source field, known to the parser, converter for a string, converter for anything,
required, max length (None: not checked), the column's mapping."""


def _address_part(part: int) -> Step:
    """A step reading sido (`part` 0) or gugun (1) from a full address."""
    return lambda v, _: address_region(str(v))[part]


def _chain(steps: tuple[Step, ...]) -> Step:
    """The steps applied in order, stopping at the first None (the generic converter)."""

    def convert(value: Any, item: Mapping[str, str]) -> Any:
        for step in steps:
            if value is None:
                break
            value = step(value, item)
        return value

    return convert


def _specialised(mapping: ColumnMapping, placeholders: frozenset[str],
                 prefixed: Callable[[str, Mapping[str, str]], str]) -> Step | None:
    """One function doing the column's usual chain on a string, or None for any other chain.

    Each is the chain of `Mapper._compile` written out: `trim` is `strip() or None`,
    `placeholderToNull` on a trimmed string is a set lookup, the type conversion of a value
    already converted by `parseNumber` is the value itself, and so on."""
    transforms, type_ = tuple(mapping.transforms), mapping.type
    trim, null = Transform.TRIM, Transform.PLACEHOLDER_TO_NULL
    if type_ is ColumnType.TEXT:
        if transforms == (trim,):
            return lambda v, _: v.strip() or None
        if transforms == (trim, null):
            return lambda v, _: None if not (s := v.strip()) or s in placeholders else s
        if transforms == (trim, null, Transform.SIDO_SHORT_NAME):
            return lambda v, _: None if not (s := v.strip()) or s in placeholders else short_sido(s) or s
        if transforms == (trim, null, Transform.SIDO_LONG_NAME):
            return lambda v, _: None if not (s := v.strip()) or s in placeholders else long_sido(s) or s
        if transforms == (trim, null, Transform.PREFIX_ADDRESS):
            return lambda v, item: None if not (s := v.strip()) or s in placeholders else prefixed(s, item)
        return None
    if type_ is ColumnType.NUMERIC and transforms == (trim, Transform.PARSE_NUMBER):
        return lambda v, _: _number(s) if (s := v.strip()) else None
    if type_ is ColumnType.BOOLEAN and transforms == (trim,):
        return _flag
    return None


_TRUE, _FALSE = frozenset({"Y", "YES", "TRUE", "1"}), frozenset({"N", "NO", "FALSE", "0"})


def _flag(value: str, _: Mapping[str, str]) -> bool | None:
    """`trim` then the boolean type, on a string."""
    text = value.strip()
    if not text:
        return None
    upper = text.upper()
    if upper in _TRUE:
        return True
    if upper in _FALSE:
        return False
    raise ValueError(f"expected Y/N or true/false, got {text!r}")
