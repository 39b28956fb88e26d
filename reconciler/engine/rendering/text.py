"""Terraform-like text: `+` create, `~` update with field diffs, `-` delete."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.engine.planning import Action, Change, Plan
from reconciler.engine.rendering import format_value

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}
_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red"}


def _paint(text: str, style: str, color: bool) -> str:
    if not color:
        return text
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/{style}]"


def _change_lines(change: Change, color: bool) -> list[str]:
    head = f"  {_SIGN[change.action]} {change.item} {change.key}"
    lines = [_paint(head, _STYLE[change.action], color)]
    if change.action is Action.UPDATE:
        for f in change.fields:
            lines.append(_paint(f"      {f.path or '(value)'}: {format_value(f.before)} → "
                                f"{format_value(f.after)}", "yellow", color))
    elif change.action is Action.CREATE and isinstance(change.after, dict):
        for key, value in change.after.items():
            lines.append(_paint(f"      {key}: {format_value(value)}", "green", color))
    return lines


def summary_line(plan: Plan) -> str:
    c = plan.counts
    return (f"{c.created} to create, {c.updated} to update, {c.deleted} to delete, "
            f"{c.unchanged} unchanged" + (f", {c.invalid} invalid" if c.invalid else ""))


def render_text(plans: Sequence[Plan], *, max_changes: int = 100, color: bool = False) -> str:
    out: list[str] = []
    totals = [0, 0, 0]
    for plan in plans:
        c = plan.counts
        totals = [totals[0] + c.created, totals[1] + c.updated, totals[2] + c.deleted]
        title = f"{plan.target.short}: {summary_line(plan)}"
        out.append(_paint(title, "bold", color))
        for change in plan.changes[:max_changes]:
            out += _change_lines(change, color)
        hidden = len(plan.changes) - max_changes
        if hidden > 0:
            out.append(f"  … and {hidden} more changes")
        for warning in plan.warnings:
            out.append(_paint(f"  ! {warning}", "magenta", color))
    if not plans:
        out.append("No objects to plan.")
    elif not any(totals):
        out.append("No changes. The targets match the specs.")
    else:
        out.append(f"Plan: {totals[0]} to create, {totals[1]} to update, "
                   f"{totals[2]} to delete.")
    return "\n".join(out)
