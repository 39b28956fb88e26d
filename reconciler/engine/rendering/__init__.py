"""Rendering plans for people and machines: coloured text, Markdown, stable JSON.

All three take the same input, a sequence of `Plan`s (one per target), and are pure
functions returning a string. Values are shown as compact JSON; secrets were already
masked by the orchestrator. Large plans are cut at `max_changes` per target with the
number left out, so a table of 81,000 rows never floods a terminal or a PR comment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from reconciler.structs.plans import Plan

Format = Literal["text", "markdown", "json"]


def format_value(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(plans: Sequence[Plan], fmt: Format, *, max_changes: int = 100, color: bool = False) -> str:
    if fmt == "json":
        from reconciler.engine.rendering.jsonplan import render_json

        return render_json(plans)
    if fmt == "markdown":
        from reconciler.engine.rendering.markdown import render_markdown

        return render_markdown(plans, max_changes=max_changes)
    from reconciler.engine.rendering.text import render_text

    return render_text(plans, max_changes=max_changes, color=color)


__all__ = ["Format", "format_value", "render"]
