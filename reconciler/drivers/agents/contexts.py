"""Whether Gemini CLI and Qwen Code load the instruction file the rules are written to.

Both clients load `GEMINI.md` / `QWEN.md` unless the user's own settings name other files in
`context.fileName` (a name or a list of names, such as `AGENTS.md`). `import agents` turns that
setting into the target's override of the name (Gemini CLI), and the rules then go to that
file; a spec written by hand for such a machine has no override, and its rules would land in
a file the client never reads. The plan says so (a warning naming the setting and the fix);
nothing is written differently, since the settings are the user's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.drivers.agents import jsonc
from reconciler.drivers.agents.entries import Place
from reconciler.models.agents import AgentClient, AgentConfig

if TYPE_CHECKING:
    from reconciler.drivers.agents.planning import Rendered


def _names(settings_text: str | None) -> list[str]:
    """The `context.fileName` names of a settings file (none when unset or unreadable)."""
    if not settings_text or not settings_text.strip():
        return []
    try:
        data = jsonc.loads(settings_text, grammar=jsonc.JSONC)
    except (jsonc.JsonSyntaxError, ValueError):
        return []  # a broken file is refused where it is written, not here
    context = data.get("context") if isinstance(data, dict) else None
    configured = context.get("fileName") if isinstance(context, dict) else None
    if isinstance(configured, str):
        return [configured]
    if isinstance(configured, list):
        return [name for name in configured if isinstance(name, str)]
    return []


def unloaded_rules(obj: AgentConfig, rendered: Rendered, read: Callable[[str], str | None]) -> list[str]:
    """A warning per Gemini CLI / Qwen Code target whose rules go to a file its settings'
    `context.fileName` does not name. `read(display path)` gives a file's text or None."""
    from reconciler.drivers.agents.clients import gemini, qwen

    files = {entry.file for entry in rendered.entries}
    warnings: list[str] = []
    for target in obj.spec.targets:
        if target.client not in (AgentClient.GEMINI_CLI, AgentClient.QWEN_CODE):
            continue
        place = Place.of(target, obj.metadata.name)
        if target.client is AgentClient.GEMINI_CLI:
            memory, settings = gemini.memory_file(place), gemini.SETTINGS
            fix = f"set the target's override {gemini.CONTEXT_KEY} to {{name!r}} (as `import agents` does)"
        else:
            memory, settings = qwen.memory_file(place), qwen.SETTINGS
            fix = f"add {memory.rsplit('/', 1)[-1]!r} to context.fileName"
        if place.file(memory) not in files:
            continue  # no rules rendered for this target
        names = _names(read(place.file(settings)))
        loaded = memory.rsplit("/", 1)[-1]
        if names and loaded not in names:
            warnings.append(
                f"{target.client.value}: the rules are written to {place.file(memory)}, but "
                f"{place.file(settings)} sets context.fileName to {names}, so {target.client.value} "
                f"does not load that file; " + fix.format(name=names[0]))
    return warnings
