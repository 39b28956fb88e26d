"""The controller keeps the specs its runs plan with (runtime/control.py, in process).

An AgentConfig under last-write-wins in a spec folder, two clients at project scope. A
client's edit is written back into the spec file by a run; every later run of the daemon,
including one that was asked for before that run ended, plans with the written spec, and a
spec set read from the folder before the write-back does not undo it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.assembly import open_runtime
from reconciler.loading import load_specs
from reconciler.loading.specs import SpecSet
from reconciler.models import ObjectRef
from reconciler.runtime.control import Controller
from reconciler.settings import Settings
from reconciler.structs.runs import Outcome, Trigger

SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata:
  name: team
spec:
  mcpServers:
    github:
      command: npx
      args: ["-y", "server-github"]
  targets:
    - {{client: claude-code, scope: project, root: {root}}}
    - {{client: qwen-code, scope: project, root: {root}}}
  conflictPolicy:
    default: last-write-wins
"""
TEAM = ObjectRef("AgentConfig", "default", "team")
FILES = (".mcp.json", ".qwen/settings.json")
EDITED = ["-y", "server-github", "--edit1"]


def args(root: Path, file: str) -> Any:
    return json.loads((root / file).read_text())["mcpServers"]["github"]["args"]


def edit_claude(root: Path) -> None:
    path = root / ".mcp.json"
    data = json.loads(path.read_text())
    data["mcpServers"]["github"]["args"].append("--edit1")
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Controller, Path, Path]]:
    root, specs = tmp_path / "proj", tmp_path / "specs"
    root.mkdir()
    specs.mkdir()
    (specs / "a.yaml").write_text(SPEC.format(root=root))
    runtime = open_runtime(Settings(state_dir=tmp_path / "state"))
    try:
        yield Controller(runtime, SpecSet()), root, specs
    finally:
        runtime.close()


def everywhere(controller: Controller, root: Path, specs: Path) -> None:
    """The edit is in the spec file, in every client and in the controller's spec."""
    assert "--edit1" in (specs / "a.yaml").read_text()
    for file in FILES:
        assert args(root, file) == EDITED, file
    spec: Any = controller.get(TEAM)
    assert spec.spec.mcp_servers["github"].args == EDITED


def test_a_run_queued_behind_a_write_back_plans_with_the_written_spec(world) -> None:
    controller, root, specs = world

    async def scenario() -> None:
        await controller.take(load_specs(specs), trigger=Trigger.MANUAL)
        edit_claude(root)
        # Both asked for at once (two file-watch batches): the second waits for the target's
        # lock while the first writes the edit back.
        first = controller.start_run(TEAM, trigger=Trigger.FILE_WATCH)
        second = controller.start_run(TEAM, trigger=Trigger.FILE_WATCH)
        done = await asyncio.gather(first.task, second.task)
        assert [r.outcome if r else None for r in done] == [Outcome.SUCCEEDED, Outcome.NOOP], done

    asyncio.run(scenario())
    everywhere(controller, root, specs)


def test_a_spec_set_read_before_a_write_back_does_not_undo_it(world) -> None:
    controller, root, specs = world

    async def scenario() -> None:
        await controller.take(load_specs(specs), trigger=Trigger.MANUAL)
        since = controller.write_backs
        stale = load_specs(specs)  # the spec folder read just before the run wrote to it
        edit_claude(root)
        result = await controller.start_run(TEAM, trigger=Trigger.FILE_WATCH).task
        assert result is not None and result.outcome is Outcome.SUCCEEDED, result
        assert await controller.take(stale, trigger=Trigger.MANUAL, since=since) == []

    asyncio.run(scenario())
    everywhere(controller, root, specs)


def test_an_edit_saved_while_a_write_back_was_written_is_newer_than_the_spec(world) -> None:
    """Last-write-wins compares an edit's time with the spec's. The spec a run wrote back
    carries the time of the edit it took, not of the write: Qwen's save, made after Claude's
    edit but before the run wrote the spec file, is the newest edit and wins the next run."""
    controller, root, specs = world

    async def scenario() -> None:
        await controller.take(load_specs(specs), trigger=Trigger.MANUAL)
        now = time.time()  # the spec written 30 s ago, Claude edited 20 s ago, Qwen 10 s ago
        os.utime(specs / "a.yaml", (now - 30, now - 30))
        edit_claude(root)
        os.utime(root / ".mcp.json", (now - 20, now - 20))
        first = await controller.start_run(TEAM, trigger=Trigger.FILE_WATCH).task
        assert first is not None and first.outcome is Outcome.SUCCEEDED, first
        qwen = root / ".qwen/settings.json"
        data = json.loads(qwen.read_text())
        data["mcpServers"]["github"]["args"] = ["-y", "server-github", "--later"]
        qwen.write_text(json.dumps(data, indent=2) + "\n")
        os.utime(qwen, (now - 10, now - 10))
        second = await controller.start_run(TEAM, trigger=Trigger.FILE_WATCH).task
        assert second is not None and second.outcome is Outcome.SUCCEEDED, second
        assert any("accepted" in w for w in second.warnings), second.warnings

    asyncio.run(scenario())
    assert "--later" in (specs / "a.yaml").read_text()
    for file in FILES:
        assert args(root, file) == ["-y", "server-github", "--later"], file
