"""Turning a spec file's bytes into text, or saying exactly where it cannot be.

A spec file is UTF-8 and at most `max_bytes` long; it holds only characters YAML allows
(tab, line breaks and printable characters: no NUL, no escape sequences, no other C0/C1
controls). Each refusal names the line and column of the first offending byte, counted in
characters like every other location the loader reports. An oversized file is read only
up to its limit: the refusal points at the first byte beyond it.
"""

from __future__ import annotations

import re
from functools import cache

from reconciler.errors import SpecError, SpecProblem
from reconciler.loading.limits import SETTING_OF, LoaderLimits

# YAML 1.2 §5.1: the printable characters. Everything else is refused, with its location.
_NOT_PRINTABLE_ASCII = re.compile("[^\t\n\r\x20-\x7e]")


@cache
def _not_printable() -> re.Pattern[str]:
    """The whole class, for a text that is not ASCII (compiling it takes about 4 ms, which
    a CLI start pays only when a spec needs it)."""
    return re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _position(text: str) -> tuple[int, int]:
    """1-based line and column just after `text` (the prefix before a problem)."""
    line = text.count("\n") + 1
    return line, len(text) - (text.rfind("\n") + 1) + 1


def _prefix_text(data: bytes) -> str:
    """The longest decodable prefix of some bytes (a limit may cut a character in two)."""
    return data.decode("utf-8", errors="ignore")


def decode_spec(data: bytes, *, source: str, limits: LoaderLimits, size: int | None = None) -> str:
    """The text of a spec file read as at most `max_bytes + 1` bytes; raise `SpecError`.

    `size` is the file's real size when known (only `max_bytes + 1` bytes need be read)."""
    if len(data) > limits.max_bytes:
        line, column = _position(_prefix_text(data[:limits.max_bytes]))
        total = f"{size:,} bytes" if size is not None else "larger"
        raise SpecError([SpecProblem(
            source, line, column, "",
            f"file too large: {total}, more than {limits.max_bytes:,} bytes (the limit, "
            f"{SETTING_OF['max_bytes']}); refused from here on")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(_prefix_text(data[:exc.start]))
        raise SpecError([SpecProblem(
            source, line, column, "",
            f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded ({exc.reason})")]) from None
    bad = (_NOT_PRINTABLE_ASCII if text.isascii() else _not_printable()).search(text)
    if bad is not None:
        line, column = _position(text[:bad.start()])
        raise SpecError([SpecProblem(
            source, line, column, "",
            f"control character U+{ord(bad.group()):04X} is not allowed in YAML "
            "(write it as an escape inside a double-quoted string)")])
    return text
