"""Splitting a Markdown plan into GitHub comments, and finding the comments posted before.

A GitHub comment holds at most 65,536 characters, and a plan for many targets can be
longer. The plan renderer marks the places where it may be cut: a line that is exactly
`<!-- reconciler:block -->` separates two top-level blocks (the counts table, one
`<details>` per target, ...). `split_comment` packs those blocks greedily, in order, into
as few parts as fit, and drops the separator lines (they are only split points). A block
is never cut in two: that would break its `<details>` or code fence across comments. Only
a block that cannot fit even a comment of its own is cut, at a line boundary, with a
visible note saying so; the fence and `<details>` tags it leaves open are closed, so the
comment still renders.

Every part opens with a hidden line that names it, `<!-- reconciler-plan part 2/3 -->`
(the marker is a parameter, so that several plans can share one pull request), and, when
there are several parts, ends with a visible footer line. The marker is how the next run
finds its own comments among everyone else's (`find_parts`) and edits them in place: only
a comment whose *first line* is our marker is ours, so a reply quoting it is not.

The renderer may also write one `<!-- reconciler:summary {JSON} -->` line with the plan's
figures (`changed`, `guardsTripped`, `errors`, `warnings`); it is kept, hidden, right
after the first part's marker line, wherever it stood in the plan, so the figures are
always in part 1 (`parse_summary` reads them back). The length limit counts every
character of a part, marker, summary and footer included (GitHub counts characters, as
Python's `len` does).

Everything here is pure: text in, text out. Posting the parts is `github.post_plan`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

COMMENT_LIMIT = 65536
"""GitHub's limit on the body of an issue or pull-request comment, in characters."""

DEFAULT_MARKER = "reconciler-plan"
BLOCK_SEPARATOR = "<!-- reconciler:block -->"

_FOOTER_CONTINUED = "_Part {index} of {total}: continued in the next comment._"
_FOOTER_LAST = "_Part {index} of {total}._"
_SUMMARY = re.compile(r"<!-- reconciler:summary (?P<json>.*) -->")
_MARKER_NAME = re.compile(r"[A-Za-z0-9]+(?:[._:-][A-Za-z0-9]+)*")  # no `--`: it would end the comment
_FENCE = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_DETAILS_OPEN = re.compile(r"<details(?:\s[^>]*)?>", re.IGNORECASE)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlanComment:
    """A comment that is one part of a plan posted earlier, as `find_parts` recognised it."""

    index: int
    total: int
    comment_id: int
    body: str
    html_url: str


def part_header(marker: str, index: int, total: int) -> str:
    """The hidden first line of part `index` of `total`: `<!-- reconciler-plan part 1/3 -->`."""
    return f"<!-- {marker} part {index}/{total} -->"


def part_footer(index: int, total: int) -> str:
    """The visible last line of a part when there are several."""
    return (_FOOTER_CONTINUED if index < total else _FOOTER_LAST).format(index=index, total=total)


def truncation_note(length: int) -> str:
    return f"… (truncated: this block is {length} characters, more than one comment holds)"


def parse_summary(markdown: str) -> dict[str, Any]:
    """The figures of the plan's `<!-- reconciler:summary {JSON} -->` line; `{}` without one.

    Raises `ValueError` when the line is there but does not hold a JSON object: that is a
    renderer bug, and a plan read as "no summary" would be reported as harmless.
    """
    for line in markdown.splitlines():
        found = _SUMMARY.fullmatch(line.strip())
        if found is None:
            continue
        try:
            summary = json.loads(found["json"])
        except json.JSONDecodeError as exc:
            raise ValueError(f"the plan's summary line is not valid JSON: {exc}") from None
        if not isinstance(summary, dict):
            raise ValueError(f"the plan's summary line holds {type(summary).__name__}, not a JSON object")
        return summary
    return {}


def split_comment(markdown: str, *, limit: int = COMMENT_LIMIT, marker: str = DEFAULT_MARKER) -> list[str]:
    """The plan as comment bodies of at most `limit` characters each, in order.

    Raises `ValueError` for a marker that cannot sit in an HTML comment, or a limit too small
    to hold a part's marker, footer and a truncation note.
    """
    _check_marker(marker)
    summary, blocks = _blocks(markdown)
    total = 1
    while True:
        packed = _pack(blocks, total=total, summary=summary, limit=limit, marker=marker)
        # Every part's marker and footer name the number of parts, known only once the blocks
        # are packed: pack again for that number until its digits (all that changes the room
        # taken by the marker and footer) are no more than those the packing assumed.
        if len(packed) == 1 or (total > 1 and len(str(len(packed))) <= len(str(total))):
            break
        total = len(packed)
    count = len(packed)
    return [
        _assemble(marker=marker, index=i, total=count, summary=summary, blocks=part)
        for i, part in enumerate(packed, start=1)
    ]


def find_parts(comments: Iterable[Mapping[str, Any]], marker: str = DEFAULT_MARKER) -> list[PlanComment]:
    """The comments that are parts of a plan posted with `marker`, ordered by part index.

    `comments` are issue comments as GitHub's REST API returns them (`id`, `body`,
    `html_url`). Two comments claiming the same index (a run that failed half way, two runs
    at once) are both returned, the older first.
    """
    header = re.compile(rf"<!-- {re.escape(marker)} part (?P<index>[0-9]+)/(?P<total>[0-9]+) -->")
    found: list[PlanComment] = []
    for comment in comments:
        body = comment.get("body") or ""
        first = body.split("\n", 1)[0].rstrip("\r")
        match = header.fullmatch(first)
        if match is None:
            continue
        found.append(
            PlanComment(
                index=int(match["index"]),
                total=int(match["total"]),
                comment_id=int(comment["id"]),
                body=body,
                html_url=str(comment.get("html_url") or ""),
            )
        )
    return sorted(found, key=lambda part: (part.index, part.comment_id))


# --- packing ---------------------------------------------------------------------------------

def _check_marker(marker: str) -> None:
    if not _MARKER_NAME.fullmatch(marker):
        raise ValueError(
            "a comment marker must be letters and digits joined by single '.', '_', ':' or '-', "
            f"got {marker!r}"
        )


def _blocks(markdown: str) -> tuple[str | None, list[str]]:
    """The summary line (if any) and the non-empty blocks between separator lines."""
    summary: str | None = None
    blocks: list[str] = []
    current: list[str] = []
    for line in markdown.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped == BLOCK_SEPARATOR:
            blocks.append(_trim_blank_lines(current))
            current = []
        elif summary is None and _SUMMARY.fullmatch(stripped):
            summary = stripped
        else:
            current.append(line)
    blocks.append(_trim_blank_lines(current))
    return summary, [block for block in blocks if block]


def _trim_blank_lines(lines: list[str]) -> str:
    # Only whole blank lines go: the first line's indentation may be an indented code block.
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _assemble(*, marker: str, index: int, total: int, summary: str | None, blocks: list[str]) -> str:
    text = part_header(marker, index, total)
    if index == 1 and summary is not None:
        text += "\n" + summary
    if blocks:
        text += "\n" + "\n\n".join(blocks)
    if total > 1:
        text += "\n\n" + part_footer(index, total)
    return text


def _pack(blocks: list[str], *, total: int, summary: str | None, limit: int, marker: str) -> list[list[str]]:
    def budget(index: int) -> int:
        parts = max(total, index)
        overhead = len(part_header(marker, index, parts)) + 1
        if index == 1 and summary is not None:
            overhead += len(summary) + 1
        if parts > 1:
            # The "continued" footer for every part, as which part is the last is not known yet.
            overhead += 2 + len(_FOOTER_CONTINUED.format(index=index, total=parts))
        return limit - overhead

    parts: list[list[str]] = []
    current: list[str] = []
    used = 0
    for block in blocks:
        room = budget(len(parts) + 1)
        needed = len(block) + (2 if current else 0)  # blocks in a part are joined by a blank line
        if used + needed <= room:
            current.append(block)
            used += needed
            continue
        if current:
            parts.append(current)
            current, used = [], 0
            room = budget(len(parts) + 1)
        if len(block) <= room:
            current, used = [block], len(block)
        else:
            parts.append([_truncate(block, room, limit=limit)])  # fills a part of its own
    if current or not parts:
        parts.append(current)
    return parts


def _truncate(block: str, room: int, *, limit: int) -> str:
    """The longest prefix of whole lines that fits `room` with its closing tags and the note."""
    note = truncation_note(len(block))
    if len(note) > room:
        raise ValueError(f"a comment limit of {limit} characters is too small to hold a part of the plan")
    best = note
    kept = ""
    state = _OpenTags()
    for count, line in enumerate(block.split("\n"), start=1):
        kept = line if count == 1 else f"{kept}\n{line}"
        if len(kept) >= room:
            break
        state.feed(line)
        candidate = f"{kept}\n{state.closing()}{note}"
        if len(candidate) <= room:
            best = candidate
    return best


class _OpenTags:
    """What a prefix of a block leaves open: a code fence, and `<details>` elements outside it."""

    def __init__(self) -> None:
        self.fence: str | None = None
        self.details = 0

    def feed(self, line: str) -> None:
        found = _FENCE.match(line)
        if self.fence is not None:
            # A closing fence: the opening character, at least as many, and nothing after it.
            if found and found["fence"][0] == self.fence[0] and len(found["fence"]) >= len(self.fence) \
                    and not found["info"].strip():
                self.fence = None
            return
        if found and not (found["fence"][0] == "`" and "`" in found["info"]):
            self.fence = found["fence"]
            return
        opened, closed = len(_DETAILS_OPEN.findall(line)), len(_DETAILS_CLOSE.findall(line))
        self.details = max(0, self.details + opened - closed)

    def closing(self) -> str:
        """The lines that close what is open, each ending with a newline, then a blank line."""
        lines = []
        if self.fence is not None:
            lines.append(self.fence)  # the fence first: inside it, `</details>` would be code
        lines += ["</details>"] * self.details
        # A blank line ends the HTML block, so the note after it renders as Markdown.
        return "".join(f"{line}\n" for line in lines) + "\n" if lines else "\n"
