"""Splitting a plan into comment parts, and recognising the parts posted before."""

from __future__ import annotations

import json
import re

import pytest

from reconciler.review.comments import (
    BLOCK_SEPARATOR,
    find_parts,
    parse_summary,
    split_comment,
    truncation_note,
)

SUMMARY = '<!-- reconciler:summary {"changed": 3, "guardsTripped": 1, "errors": 0, "warnings": 2} -->'
HEADER = re.compile(r"<!-- reconciler-plan part (\d+)/(\d+) -->")


def target_block(name: str, lines: int) -> str:
    diff = "\n".join(f"+ {name} row {i}" for i in range(lines))
    return f"<details><summary>{name}</summary>\n\n```diff\n{diff}\n```\n</details>"


def plan(*blocks: str, summary: str | None = SUMMARY) -> str:
    head = "### reconciler plan\n" + (f"{summary}\n" if summary else "") + "| Target | Create |\n|---|---:|"
    return f"\n{BLOCK_SEPARATOR}\n".join([head, *blocks]) + "\n"


def body_of(part: str) -> str:
    """A part without its marker line, summary line and footer."""
    lines = part.split("\n")[1:]
    lines = [line for line in lines if not line.startswith("<!-- reconciler:summary")]
    if lines and lines[-1].startswith("_Part "):
        lines = lines[:-2]
    return "\n".join(lines)


BLOCKS = [target_block(f"t{i}", i + 2) for i in range(6)]


def test_a_short_plan_is_one_part_with_its_marker_and_no_footer() -> None:
    parts = split_comment(plan(*BLOCKS[:2]))

    assert len(parts) == 1
    assert parts[0].startswith("<!-- reconciler-plan part 1/1 -->\n")
    assert "_Part" not in parts[0]


def test_separator_lines_are_dropped_and_blocks_are_joined_by_a_blank_line() -> None:
    [part] = split_comment(plan(*BLOCKS[:2]))

    assert BLOCK_SEPARATOR not in part
    assert f"|---|---:|\n\n{BLOCKS[0]}\n\n{BLOCKS[1]}" in part


def test_a_long_plan_becomes_several_parts_none_over_the_limit() -> None:
    parts = split_comment(plan(*BLOCKS), limit=300)

    assert len(parts) > 2
    assert max(len(part) for part in parts) <= 300


def test_every_part_carries_the_marker_with_its_index_and_the_count() -> None:
    parts = split_comment(plan(*BLOCKS), limit=300)

    headers = [HEADER.fullmatch(part.split("\n", 1)[0]) for part in parts]
    expected = [(i, len(parts)) for i in range(1, len(parts) + 1)]
    assert [(int(h[1]), int(h[2])) for h in headers if h] == expected


def test_blocks_stay_whole_and_in_order_across_parts() -> None:
    parts = split_comment(plan(*BLOCKS), limit=300)

    text = "\n\n".join(body_of(part) for part in parts)
    positions = [text.index(block) for block in BLOCKS]
    assert positions == sorted(positions)
    assert all(sum(block in part for part in parts) == 1 for block in BLOCKS)


def test_each_part_but_the_last_says_it_continues() -> None:
    parts = split_comment(plan(*BLOCKS), limit=300)
    n = len(parts)

    assert [part.rsplit("\n", 1)[1] for part in parts] == [
        *(f"_Part {i} of {n}: continued in the next comment._" for i in range(1, n)),
        f"_Part {n} of {n}._",
    ]


def test_the_summary_line_is_kept_in_part_one_even_when_it_stood_in_a_later_block() -> None:
    late = BLOCKS[4] + "\n" + SUMMARY
    parts = split_comment(plan(*BLOCKS[:4], late, summary=None), limit=300)

    assert parts[0].split("\n")[1] == SUMMARY
    assert all(SUMMARY not in part for part in parts[1:])
    assert parse_summary(parts[0]) == {"changed": 3, "guardsTripped": 1, "errors": 0, "warnings": 2}


def test_an_oversize_block_is_cut_at_a_line_with_a_note_and_its_fence_and_details_closed() -> None:
    huge = target_block("huge", 60)
    parts = split_comment(plan(BLOCKS[0], huge, BLOCKS[1]), limit=300)

    [cut] = [part for part in parts if "huge" in part]
    assert len(cut) <= 300
    body = body_of(cut)
    assert body.endswith(f"```\n</details>\n\n{truncation_note(len(huge))}")
    assert body.startswith("<details><summary>huge</summary>\n\n```diff\n+ huge row 0\n")
    assert huge.startswith(body.split("\n```\n</details>\n\n…")[0] + "\n")  # whole lines, from the start
    assert body.count("```") == 2 and body.count("<details>") == body.count("</details>") == 1
    assert BLOCKS[0] in parts[0] and any(BLOCKS[1] in part for part in parts)  # neighbours intact


def test_a_cut_closes_nested_details_and_a_longer_fence() -> None:
    rows = "\n".join(f"row {i}" for i in range(80))
    nested = "<details><summary>outer</summary>\n\n<details>\n<summary>inner</summary>\n\n"
    nested += f"````text\n{rows}\n````\n</details>\n</details>"
    [part] = split_comment(nested, limit=300)

    closing = "\n````\n</details>\n</details>\n\n" + truncation_note(len(nested))
    assert re.fullmatch(r"row \d+", part.removesuffix(closing).rsplit("\n", 1)[1])
    assert len(part) <= 300


def test_a_cut_block_whose_fence_is_closed_before_the_cut_gets_no_extra_fence() -> None:
    text = "```\nshort code\n```\n" + "\n".join(f"prose line {i}" for i in range(60))
    [part] = split_comment(text, limit=300)

    assert part.count("```") == 2
    assert part.endswith("\n\n" + truncation_note(len(text)))


def test_a_limit_too_small_for_a_truncation_note_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_comment(plan(target_block("x", 40)), limit=100)


def test_a_marker_that_could_end_the_html_comment_is_refused() -> None:
    with pytest.raises(ValueError, match="marker"):
        split_comment("plan", marker="plan-->x")


def test_the_marker_names_the_plan_so_several_can_share_a_pull_request() -> None:
    [part] = split_comment("plan", marker="reconciler-plan.staging")

    assert part == "<!-- reconciler-plan.staging part 1/1 -->\nplan"


def test_splitting_is_deterministic() -> None:
    assert split_comment(plan(*BLOCKS), limit=300) == split_comment(plan(*BLOCKS), limit=300)


def test_a_count_of_parts_with_more_digits_still_fits_every_part() -> None:
    # One block per part once the footer counts, two without it: the count of parts goes from
    # 1 to 75 to 150 while packing, and the marker and footer of every part grow with it.
    blocks = [f"block {i:03} " + "x" * 40 for i in range(150)]
    parts = split_comment(f"\n{BLOCK_SEPARATOR}\n".join(blocks), limit=160)

    assert len(parts) >= 100
    assert max(len(part) for part in parts) <= 160
    assert parts[-1].startswith(f"<!-- reconciler-plan part {len(parts)}/{len(parts)} -->")


def test_parse_summary_reads_the_figures_or_gives_an_empty_dict() -> None:
    assert parse_summary(plan()) == {"changed": 3, "guardsTripped": 1, "errors": 0, "warnings": 2}
    assert parse_summary(plan(summary=None)) == {}


def test_parse_summary_refuses_a_summary_line_that_is_not_a_json_object() -> None:
    with pytest.raises(ValueError, match="JSON"):
        parse_summary("<!-- reconciler:summary {changed: 3} -->")
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_summary("<!-- reconciler:summary [3] -->")


def test_find_parts_returns_our_comments_by_part_index_and_ignores_the_rest() -> None:
    comments = [
        {"id": 10, "body": "LGTM", "html_url": "u10"},
        {"id": 11, "body": "<!-- reconciler-plan part 2/2 -->\nsecond", "html_url": "u11"},
        {"id": 12, "body": "> <!-- reconciler-plan part 1/2 -->\n> quoted by a reviewer", "html_url": "u12"},
        {"id": 13, "body": "<!-- other-plan part 1/1 -->\nanother tool's", "html_url": "u13"},
        {"id": 14, "body": "<!-- reconciler-plan part 1/2 -->\r\nfirst", "html_url": "u14"},
        {"id": 15, "body": None, "html_url": "u15"},
    ]

    found = find_parts(comments, "reconciler-plan")

    assert [(p.index, p.total, p.comment_id, p.html_url) for p in found] == [
        (1, 2, 14, "u14"), (2, 2, 11, "u11"),
    ]


def test_find_parts_keeps_both_comments_claiming_one_index_the_older_first() -> None:
    comments = [
        {"id": 21, "body": "<!-- reconciler-plan part 1/1 -->\nnew"},
        {"id": 20, "body": "<!-- reconciler-plan part 1/1 -->\nold"},
    ]

    assert [p.comment_id for p in find_parts(comments)] == [20, 21]


def test_the_parts_split_comment_writes_are_found_again() -> None:
    parts = split_comment(plan(*BLOCKS), limit=300)
    comments = [{"id": 100 + i, "body": body} for i, body in enumerate(parts)]

    assert [(p.index, p.body) for p in find_parts(comments)] == list(enumerate(parts, start=1))


def test_the_markers_are_the_ones_the_review_renderer_writes() -> None:
    from reconciler.review import rendering

    figures = {"objects": 2, "changed": 2, "guardsTripped": 0, "errors": 0, "warnings": 1}
    summary = rendering.SUMMARY.format(json.dumps(figures))
    rendered = f"\n\n{rendering.BLOCK}\n\n".join([f"head\n\n{summary}", "b"])

    assert rendering.BLOCK == BLOCK_SEPARATOR
    assert parse_summary(rendered) == figures
    assert split_comment(rendered)[0].split("\n") == [
        "<!-- reconciler-plan part 1/1 -->", summary, "head", "", "b",
    ]
