"""Terraform-like text: `+` create, `~` update with field diffs, `-` delete."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.engine.rendering import format_value
from reconciler.structs.plans import Action, Change, Plan

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
    if change.item in WHOLE_TEXT_ITEMS:
        return lines  # shown as a unified diff of the file instead
    if change.action is Action.UPDATE:
        for f in change.fields:
            lines.append(_paint(f"      {f.path or '(value)'}: {format_value(f.before)} → "
                                f"{format_value(f.after)}", "yellow", color))
    elif change.action is Action.CREATE and isinstance(change.after, dict):
        for key, value in change.after.items():
            lines.append(_paint(f"      {key}: {format_value(value)}", "green", color))
    return lines


WHOLE_TEXT_ITEMS = ("file", "block")
"""Items whose value is a text: plans show their file's unified diff, not before/after."""

_DIFF_STYLE = {"+": "green", "-": "red", "@": "cyan"}


def diff_lines(plan: Plan, color: bool) -> list[str]:
    """The unified diffs of the files a plan writes (its presentation), indented."""
    out: list[str] = []
    for file in plan.presentation.files:
        for line in file.diff.splitlines():
            style = _DIFF_STYLE.get(line[:1], "")
            if line.startswith(("+++", "---")):
                style = "bold"
            out.append(_paint("    " + line, style, color) if style else "    " + line)
    return out


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
        if plan.sampled:
            out.append(f"  … {plan.counts.changed - len(plan.changes)} more changes not listed "
                       "(the counts above are complete)")
        out += diff_lines(plan, color)
        changed = {change.key for change in plan.changes}
        for key in plan.drift:
            what = "will be reverted to the spec" if key in changed else "left as it is by policy"
            out.append(_paint(f"  ≠ drift {key}: changed outside the reconciler; {what}", "magenta",
                              color))
        for key in plan.takeovers:
            out.append(_paint(f"  ⇄ takeover {key}: exists but was never written by the reconciler; "
                              "the spec takes it over", "magenta", color))
        for line in plan.weakens:
            out.append(_paint(f"  ✗ weakens {line}", "red", color))
        for key in plan.pending:
            out.append(_paint(f"  … pending {key}: declared by the spec, left unwritten by policy",
                              "magenta", color))
        for proposal in plan.presentation.proposals:
            note = f" ({proposal.note})" if proposal.note else ""
            out.append(_paint(f"  ? proposed spec patch for {proposal.key}: spec.{proposal.canonical} = "
                              f"{format_value(proposal.proposed)}{note}", "magenta", color))
        for warning in plan.warnings:
            out.append(_paint(f"  ! {warning}", "magenta", color))
    if not plans:
        out.append("No objects to plan.")
    elif not any(totals) and all(p.in_sync for p in plans):
        out.append("No changes. The targets match the specs.")
    elif not any(totals):
        out.append("No changes to make, but the targets do not match the specs: drift or pending "
                   "keys (see above).")
    else:
        out.append(f"Plan: {totals[0]} to create, {totals[1]} to update, "
                   f"{totals[2]} to delete.")
    return "\n".join(out)
