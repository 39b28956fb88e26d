"""Posting the plan to a pull request: one sticky comment (or several), and a commit status.

Every push to a pull request produces a new plan. Posting it as a new comment each time
buries the conversation, so the plan is *sticky*: `post_plan` finds the comments it wrote
before (by the hidden marker on their first line, see `comments`), edits them in place
when their text changed, adds the parts a longer plan needs and deletes those a shorter
one no longer does. A comment without our marker (a reviewer's, another bot's) is never
edited or deleted. A commit status (`reconciler/plan` by default) on the head commit then
says what the plan means: `success` when nothing would stop an apply, `failure` when a
guard would trip, `error` when the plan has errors (or no summary to tell).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from reconciler.review.comments import COMMENT_LIMIT, DEFAULT_MARKER, find_parts, parse_summary, split_comment
from reconciler.review.github import STATUS_CONTEXT, GitHub, GitHubError, StatusState, clip_description

log = structlog.get_logger("reconciler.review")


@dataclass(frozen=True, slots=True)
class PostResult:
    """What `post_plan` did: the plan's comments, in order, and the status it set."""

    comment_ids: tuple[int, ...]
    created: int
    updated: int
    deleted: int
    unchanged: int
    state: StatusState
    description: str
    sha: str
    url: str
    """`html_url` of the first part: where the status's Details link points by default."""


def plan_status(summary: Mapping[str, Any]) -> tuple[StatusState, str]:
    """The commit status for a plan's summary figures: its state and a one-line description.

    `error` when the plan has errors, `failure` when a guard would trip, else `success`.
    A plan without a summary says nothing about its guards, so it is not a `success`.
    """
    if not summary:
        return "error", "the plan carries no summary: cannot tell whether a guard would trip"
    changed, guards, errors, warnings = (
        _count(summary, key) for key in ("changed", "guardsTripped", "errors", "warnings")
    )
    parts = [f"{changed} target{'s' if changed != 1 else ''} would change" if changed
             else "no target would change"]
    if guards:
        parts.append(f"{guards} guard{'s' if guards != 1 else ''} would trip")
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    state: StatusState = "error" if errors else "failure" if guards else "success"
    return state, clip_description(", ".join(parts))


def _count(summary: Mapping[str, Any], key: str) -> int:
    value = summary.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the plan's summary has {key}={value!r}, expected a whole number >= 0")
    return value


def post_plan(
    gh: GitHub,
    *,
    pr: int,
    markdown: str,
    marker: str = DEFAULT_MARKER,
    sha: str | None = None,
    target_url: str | None = None,
    context: str = STATUS_CONTEXT,
    limit: int = COMMENT_LIMIT,
) -> PostResult:
    """Post `markdown` to pull request `pr` as sticky comment parts, then set the commit status.

    The status goes on `sha`, or on the pull request's head commit; its Details link is
    `target_url`, or the plan's first comment. `limit` is the length of one part (tests
    use small ones). Raises `GitHubError` when GitHub cannot be asked, `ValueError` for a
    malformed summary or marker, before anything is written.
    """
    state, description = plan_status(parse_summary(markdown))
    bodies = split_comment(markdown, limit=limit, marker=marker)
    # Our earlier parts in the order GitHub shows them (ids grow with time), not by the index
    # they claim: reusing them in that order keeps the parts in reading order even after a
    # failed run left a duplicate or a gap.
    ours = sorted(find_parts(gh.list_issue_comments(pr), marker), key=lambda part: part.comment_id)
    ids: list[int] = []
    urls: list[str] = []
    created = updated = unchanged = deleted = 0
    # New parts are written before surplus ones are deleted: a run that fails half way leaves
    # the whole new plan readable (perhaps followed by stale parts, deleted by the next run).
    for index, body in enumerate(bodies):
        old = ours[index] if index < len(ours) else None
        if old is not None and old.body.replace("\r\n", "\n") == body:
            unchanged += 1
            ids.append(old.comment_id)
            urls.append(old.html_url)
            continue
        comment: dict[str, Any] | None = None
        if old is not None:
            try:
                comment = gh.update_issue_comment(old.comment_id, body)
                updated += 1
            except GitHubError as exc:
                if exc.status != 404:  # deleted by hand since we listed it: post it anew
                    raise
        if comment is None:
            comment = gh.create_issue_comment(pr, body)
            created += 1
        ids.append(int(comment["id"]))
        urls.append(str(comment.get("html_url") or ""))
    for surplus in ours[len(bodies):]:
        try:
            gh.delete_issue_comment(surplus.comment_id)
        except GitHubError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise
        deleted += 1
    head = sha if sha is not None else gh.pull_head_sha(pr)
    gh.create_status(head, state=state, description=description, context=context,
                     target_url=target_url or urls[0] or None)
    log.info("plan posted", repo=gh.repo, pr=pr, parts=len(ids), created=created, updated=updated,
             deleted=deleted, unchanged=unchanged, state=state)
    return PostResult(
        comment_ids=tuple(ids), created=created, updated=updated, deleted=deleted, unchanged=unchanged,
        state=state, description=description, sha=head, url=urls[0],
    )
