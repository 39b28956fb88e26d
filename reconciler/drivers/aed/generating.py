"""One Python function per binding that maps an item to a row: generated from the mapper.

`Mapper.checked_row` maps an item one column at a time: a loop over the columns, each
with its converter, its required and length checks and its problem messages. Written
that way it costs about 10 µs an item with the 36 columns of a full binding, a fifth of a
first load. The work of a clean item is always the same straight line, so, as dataclasses
and cattrs do for their classes, the mapper writes that line out once per binding as the
source of one function and compiles it: one local per column, the usual converters
inline (`strip() or None`, the placeholder test, a number), no loop and no tuple
unpacking per column.

The generated function does only the clean case. Whenever anything is off (a converter
raises, a required column comes out empty, a text is longer than allowed) it hands the
item to `checked_row`, which maps it again and names every problem: the problems and
their messages exist in one place, and rejected rows are rare. Its values are those of
`checked_row` for every item (tests/drivers/aed/test_mapping_fused.py holds both to the
step-by-step chain, hypothesis included).

What reaches the source text is only indices and names made here (`s3`, `v3`); every
value from the spec (field names, lengths, placeholders, converters) is bound in the
function's namespace, never spelled into its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

from reconciler.models.aed import ColumnMapping, ColumnType, Transform

if TYPE_CHECKING:
    from reconciler.drivers.aed.mapping import Mapper, Row

RowFunction = Callable[[Mapping[str, str]], "Row"]


def _inline(mapping: ColumnMapping) -> str | None:
    """The expression converting the string `r` for the usual chains (those `_specialised`
    writes as lambdas), or None to call the column's converter."""
    transforms, type_ = tuple(mapping.transforms), mapping.type
    trim, null = Transform.TRIM, Transform.PLACEHOLDER_TO_NULL
    if type_ is ColumnType.TEXT and transforms == (trim,):
        return "(r.strip() or None)"
    if type_ is ColumnType.TEXT and transforms == (trim, null):
        return "(None if not (t := r.strip()) or t in placeholders else t)"
    if type_ is ColumnType.NUMERIC and transforms == (trim, Transform.PARSE_NUMBER):
        return "(number(t) if (t := r.strip()) else None)"
    return None


def row_function(mapper: Mapper, *, name: str = "binding") -> RowFunction:
    """Compile the mapper's plan into one function `item -> Row` (see the module docstring)."""
    from reconciler.drivers.aed.mapping import Row, _number

    namespace: dict[str, Any] = {
        "Row": Row, "InvalidOperation": InvalidOperation, "checked": mapper.checked_row,
        "field": mapper.field, "placeholders": mapper.placeholders, "number": _number,
    }
    body: list[str] = []
    checks: list[str] = []
    for index, (source, known, fast, chain, required, max_length, mapping) in enumerate(mapper.plan):
        namespace[f"s{index}"], namespace[f"f{index}"], namespace[f"c{index}"] = source, fast, chain
        body.append(f"r = get(s{index})")
        if not known:
            namespace[f"n{index}"] = mapping.source_field
            body.append(f"if r is None: r = field(item, n{index})")
        inline = _inline(mapping) if fast is not chain else None
        on_text = inline or f"f{index}(r, item)"
        body.append(f"v{index} = None if r is None else {on_text} if r.__class__ is str "
                    f"else c{index}(r, item)")
        if required and mapper.check_required:
            checks.append(f"v{index} is None")
        if max_length is not None:
            namespace[f"m{index}"] = max_length
            checks.append(f"(isinstance(v{index}, str) and len(v{index}) > m{index})")
    values = ", ".join(f"v{index}" for index in range(len(mapper.plan)))
    lines = ["def row(item):", "    get = item.get", "    try:"]
    lines += [f"        {line}" for line in body]
    lines += ["    except (ValueError, InvalidOperation):", "        return checked(item)"]
    if checks:
        lines += [f"    if {' or '.join(checks)}:", "        return checked(item)"]
    lines += [f"    key = v{mapper.key_index}",
              f"    return Row(None if key is None else str(key), ({values},))"]
    code = compile("\n".join(lines) + "\n", f"<row function of {name}>", "exec")
    exec(code, namespace)  # our own source: indices and names only (module docstring)
    function: RowFunction = namespace["row"]
    return function
