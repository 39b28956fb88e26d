"""A review as a pull-request comment (Markdown), a document (JSON) or terminal text.

The Markdown is what reviewers read: a summary table per target (kind, name, how the spec
changed, created / updated / deleted / unchanged, warnings such as a guard that would trip
or a translation loss), then one collapsible `<details>` block per target with its field
changes, a unified diff per file and its warnings. Blocks are separated by the line
`<!-- reconciler:block -->`, where `reconciler.review.comments` may split the comment at
GitHub's size limit without breaking a block; `<!-- reconciler:summary {...} -->` carries
the figures the commit status is set from. Secret values were masked in the plans already.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine.rendering.markdown import plan_details
from reconciler.review.reviewing import Review, TargetReview
from reconciler.review.revisions import ObjectChange

BLOCK = "<!-- reconciler:block -->"
SUMMARY = "<!-- reconciler:summary {} -->"
_MARK = {ObjectChange.ADDED: "➕ added", ObjectChange.CHANGED: "✏️ changed",
         ObjectChange.REMOVED: "➖ removed"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(sha: str) -> str:
    return sha[:8] if sha else "?"


def _error(target: TargetReview) -> str:
    """The comment's line for a failed plan. An unexpected error (a bug, a library failure)
    shows only its type: even its first line may quote a row, and the comment is read by
    everyone with access to the repository; the job's log has the details."""
    result = target.result
    if result is None or not result.error:
        return ""
    if result.unexpected:
        return (f"unexpected {result.error_type or 'error'} while planning; the details are in the "
                f"job's log (run {result.run_id})")
    return result.error


def _notes(target: TargetReview) -> str:
    notes: list[str] = []
    if error := _error(target):
        notes.append(f"❌ {error}")
    plan = target.plan
    if plan is not None:
        notes += [f"⚠️ {w}" for w in plan.warnings]
        if plan.drift:
            notes.append(f"≠ {len(plan.drift)} key(s) drifted")
    if target.note:
        notes.append(target.note)
    return _cell("; ".join(notes))


def render_review_markdown(review: Review, *, max_changes: int = 50, path: str = "") -> str:
    diff = review.diff
    where = f" in `{path}`" if path else ""
    counts = {c: sum(1 for t in review.targets if t.change.change is c) for c in ObjectChange}
    head = [f"### reconciler plan: `{_short(diff.base)}` → `{_short(diff.head)}`", ""]
    if not review.targets:
        head.append(f"No object changed{where} ({len(diff.unchanged)} unchanged): nothing to plan.")
        return "\n".join([*head, "", SUMMARY.format(json.dumps(review.summary()))])
    head.append(f"{len(review.targets)} object(s) changed{where}: {counts[ObjectChange.ADDED]} added, "
                f"{counts[ObjectChange.CHANGED]} changed, {counts[ObjectChange.REMOVED]} removed "
                f"({len(diff.unchanged)} unchanged, not planned). Planned against the live targets, "
                "read-only.")
    if review.guards_tripped:
        head.append(f"\n> ⛔ **{review.guards_tripped} target(s) would be stopped by a guard** if this "
                    "were applied as it is.")
    if review.errors:
        head.append(f"\n> ❌ **{review.errors} target(s) could not be planned.**")
    head += ["", "| Change | Kind | Name | Create | Update | Delete | Unchanged | Notes |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for target in review.targets:
        ref = target.change.ref
        name = ref.name if ref.namespace == "default" else f"{ref.namespace}/{ref.name}"
        plan = target.plan
        figures = ["–"] * 4
        if plan is not None:
            c = plan.counts
            figures = [f"{c.created:,}", f"{c.updated:,}", f"{c.deleted:,}", f"{c.unchanged:,}"]
        head.append(f"| {_MARK[target.change.change]} | {ref.kind} | `{name}` | " + " | ".join(figures)
                    + f" | {_notes(target)} |")
    head += ["", SUMMARY.format(json.dumps(review.summary()))]
    blocks = ["\n".join(head)]
    for target in review.targets:
        plan = target.plan
        if plan is None or not (plan.changes or plan.warnings or plan.drift or plan.presentation.files):
            continue
        origin = f" ({target.change.origin.source})" if target.change.origin else ""
        title = f"{_MARK[target.change.change]} <code>{target.change.ref.short}</code>{origin}"
        blocks.append(plan_details(plan, max_changes=max_changes, title=title))
    return f"\n\n{BLOCK}\n\n".join(blocks)


def review_document(review: Review) -> dict[str, Any]:
    from reconciler.engine.rendering.jsonplan import FORMAT_VERSION, plan_document

    objects = []
    for target in review.targets:
        ref, result = target.change.ref, target.result
        objects.append({
            "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
            "change": str(target.change.change),
            "source": target.change.origin.source if target.change.origin else None,
            "outcome": str(result.outcome) if result else None, "error": result.error if result else None,
            "runId": result.run_id if result else None, "note": target.note or None,
            "guardsTripped": list(target.guards_tripped),
            "plan": plan_document(target.plan) if target.plan is not None else None,
        })
    diff = review.diff
    return {"formatVersion": FORMAT_VERSION, "base": diff.base, "head": diff.head, "changed": review.changed,
            "summary": review.summary(), "objects": objects,
            "unchanged": [str(ref) for ref in diff.unchanged]}


def render_review_json(review: Review) -> str:
    from reconciler.structs.jsonable import jsonable

    return json.dumps(jsonable(review_document(review)), sort_keys=True, ensure_ascii=False, indent=2)


def render_review_text(review: Review, *, max_changes: int = 100, color: bool = False) -> str:
    from reconciler.engine.rendering.text import render_text

    diff = review.diff
    lines = [f"Plan for {_short(diff.base)}..{_short(diff.head)}: {len(review.targets)} object(s) changed, "
             f"{len(diff.unchanged)} unchanged (not planned)"]
    for target in review.targets:
        lines += ["", f"{target.change.change}: {target.change.ref.short}"
                  + (f" ({target.change.origin.source})" if target.change.origin else "")]
        if target.note:
            lines.append(f"  {target.note}")
        if error := _error(target):
            lines.append(f"  error: {error}")
        if target.plan is not None:
            lines.append(render_text([target.plan], max_changes=max_changes, color=color))
    return "\n".join(lines)
