"""What the dashboard's pages show, read from the store, the status rows and the log buffer.

Presentation only: totals, sparklines, diffs of recorded changes, filters. Nothing here
decides anything the engine decides; a page shows what a run recorded.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from reconciler.structs.records import ChangeRecord, RunRecord

STATES = ("ready", "failing", "drifted", "suspended")


def state_of(row: dict[str, Any]) -> set[str]:
    states = set()
    if row.get("ready") == "True":
        states.add("ready")
    if row.get("result") in ("failed", "cancelled") or row.get("ready") == "False":
        states.add("failing")
    if row.get("drifted"):
        states.add("drifted")
    if row.get("suspended"):
        states.add("suspended")
    return states


def filtered(rows: list[dict[str, Any]], *, kind: str = "", namespace: str = "",
             state: str = "") -> list[dict[str, Any]]:
    return [r for r in rows if (not kind or r["kind"] == kind)
            and (not namespace or r["namespace"] == namespace) and (not state or state in state_of(r))]


def totals(rows: list[dict[str, Any]], runs: list[RunRecord], *, now: datetime) -> dict[str, Any]:
    day = [r for r in runs if r.started_at >= now - timedelta(hours=24)]
    return {"objects": len(rows), "ready": sum("ready" in state_of(r) for r in rows),
            "failing": sum("failing" in state_of(r) for r in rows),
            "drifted": sum("drifted" in state_of(r) for r in rows),
            "suspended": sum("suspended" in state_of(r) for r in rows),
            "runs24h": len(day), "failures24h": sum(r.outcome in ("failed", "cancelled") for r in day),
            "lastRun": max((r.started_at for r in runs), default=None)}


def sparkline(durations: list[float], *, width: int = 120, height: int = 24) -> str:
    """An SVG polyline's points for `durations` (oldest first)."""
    if not durations:
        return ""
    top = max(durations) or 1.0
    step = width / max(len(durations) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (d / top) * (height - 4):.1f}"
                    for i, d in enumerate(durations))


def spec_yaml(spec: dict[str, Any]) -> str:
    """The spec as YAML; secrets are references ({env: NAME}) in specs, so nothing to hide here."""
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def _text(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines(keepends=True)
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").splitlines(keepends=True)


def change_diff(change: ChangeRecord) -> str:
    """A unified diff of one recorded change's before and after."""
    name = change.key
    return "".join(difflib.unified_diff(_text(change.before), _text(change.after),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


def file_tree(changes: list[ChangeRecord]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """AgentConfig: folder → file → its changes with their diffs (a change's key is FILE#POINTER)."""
    tree: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for c in changes:
        file, _, pointer = c.key.partition("#")
        folder, _, base = file.rpartition("/")
        tree[folder or "."][base].append({"action": c.action, "pointer": pointer or "(whole file)",
                                          "diff": change_diff(c), "fields": c.fields})
    return {k: dict(v) for k, v in sorted(tree.items())}


def rbac_subjects(changes: list[ChangeRecord]) -> dict[str, list[dict[str, Any]]]:
    """RbacMapping: subject (the change's item) → grants (create) and revokes (delete)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in changes:
        verb = {"create": "grant", "delete": "revoke"}.get(c.action, c.action)
        grouped[c.item].append({"verb": verb, "key": c.key, "fields": c.fields})
    return dict(grouped)


def rejects_by_rule(rejects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rejects:
        grouped[f"{r.get('stage', '?')} / {r.get('rule', r.get('reason', '?'))}"].append(r)
    return dict(grouped)


def log_entries(entries: Any, *, obj: str = "", level: str = "", since: datetime | None = None,
                until: datetime | None = None, run_id: str = "", limit: int = 500) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in reversed(entries):
        if level and entry.get("level") != level.lower():
            continue
        if obj and f"{entry.get('kind')}/{entry.get('name')}" != obj:
            continue
        if run_id and entry.get("run_id") != run_id and entry.get("runId") != run_id:
            continue
        if since or until:
            at = logged_at(entry)
            if at is None or (since and at < since) or (until and at > until):
                continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def logged_at(entry: dict[str, Any]) -> datetime | None:
    stamp = entry.get("timestamp")
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.utcoffset() is None else at


def logs_csv(entries: list[dict[str, Any]]) -> str:
    columns = ["timestamp", "level", "event", "kind", "name", "run_id"]
    extra = sorted({k for e in entries for k in e} - set(columns))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns + extra, extrasaction="ignore")
    writer.writeheader()
    for e in entries:
        writer.writerow({k: e.get(k, "") for k in columns + extra})
    return buffer.getvalue()


def run_filter(runs: list[RunRecord], *, obj: str = "", outcome: str = "",
               trigger: str = "") -> list[RunRecord]:
    return [r for r in runs if (not obj or f"{r.kind}/{r.name}" == obj)
            and (not outcome or r.outcome == outcome) and (not trigger or r.trigger == trigger)]

