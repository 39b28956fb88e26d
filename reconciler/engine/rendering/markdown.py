"""Markdown for pull-request comments: a counts table, then one `<details>` per target."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.engine.rendering import format_value
from reconciler.engine.rendering.text import WHOLE_TEXT_ITEMS, summary_line
from reconciler.structs.plans import Action, Plan

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fence(body: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}diff\n{body}\n{ticks}"


def render_markdown(plans: Sequence[Plan], *, max_changes: int = 100) -> str:
    lines = ["### reconciler plan", ""]
    if not plans:
        return "\n".join([*lines, "No objects to plan."])
    lines += [
        "| Target | Create | Update | Delete | Unchanged | Invalid | Warnings |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for plan in plans:
        c = plan.counts
        warn = "⚠️ " + "; ".join(_cell(w) for w in plan.warnings) if plan.warnings else ""
        lines.append(f"| `{plan.target.short}` | {c.created} | {c.updated} | {c.deleted} | "
                     f"{c.unchanged} | {c.invalid} | {warn} |")
    for plan in plans:
        if not plan.changes and not plan.warnings and plan.in_sync:
            continue
        lines += ["", plan_details(plan, max_changes=max_changes)]
    return "\n".join(lines)


def plan_details(plan: Plan, *, max_changes: int = 100, title: str | None = None) -> str:
    """One collapsible block: the changes (first `max_changes`, then the count left out), a
    unified diff per file, drift and warnings."""
    body: list[str] = []
    for change in plan.changes[:max_changes]:
        body.append(f"{_SIGN[change.action]} {change.item} {change.key}")
        if change.action is Action.UPDATE and change.item not in WHOLE_TEXT_ITEMS:
            body += [f"!     {f.path or '(value)'}: {format_value(f.before)} → "
                     f"{format_value(f.after)}" for f in change.fields]
    shown = min(len(plan.changes), max_changes)
    hidden = plan.counts.changed - shown
    title = title or f"<code>{plan.target.short}</code>"
    lines = [f"<details><summary>{title}: {summary_line(plan)}</summary>", ""]
    if body:
        lines.append(_fence("\n".join(body)))
    for file in plan.presentation.files:
        lines += ["", f"<details><summary><code>{file.path}</code></summary>", "",
                  _fence(file.diff.rstrip("\n")), "", "</details>"]
    for key in plan.drift:
        lines.append(f"\n> ≠ drift: `{key}` was changed outside the reconciler")
    for key in plan.takeovers:
        lines.append(f"\n> ⇄ takeover: `{key}` exists but was never written by the reconciler")
    for line in plan.weakens:
        lines.append(f"\n> ✗ weakens: {line}")
    for key in plan.pending:
        lines.append(f"\n> … pending: `{key}` is declared by the spec and left unwritten by policy")
    if hidden > 0:
        lines.append(f"\n… and {hidden:,} more changes (first {shown:,} shown).")
    for warning in plan.warnings:
        lines.append(f"\n> ⚠️ {warning}")
    lines += _rejects(plan)
    lines += ["", "</details>"]
    return "\n".join(lines)


def _rejects(plan: Plan) -> list[str]:
    """The rejected items a plan shows: key, rule, column and why; never the item's content."""
    rejects = plan.presentation.rejects
    if not rejects:
        return []
    lines = ["", f"Rejected ({len(rejects)} shown of {plan.counts.invalid:,}):", "",
             "| Key | Stage | Rule | Column | Why |", "|---|---|---|---|---|"]
    for r in rejects:
        cells = [r.key or "", r.stage, r.rule, r.column, r.message]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines
