"""A kind registered by a plugin is a kind like the built-ins: a SyncJob schedules it in
`reconciler serve` (a real process), and the registry's entry points list the built-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from runtime.test_serve import free_port, wait

REPO = Path(__file__).parents[2]
SPECS = """\
apiVersion: reconciler.dev/v1alpha1
kind: KeyValueStore
metadata: {{name: kv}}
spec: {{file: "{file}", data: {{a: "1"}}}}
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: kv-often}}
spec:
  targetRef: {{kind: KeyValueStore, name: kv}}
  interval: 1s
"""


def test_a_plugin_kind_is_scheduled_by_a_syncjob_in_the_daemon(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "kv.yaml").write_text(SPECS.format(file=tmp_path / "kv.json"))
    port = free_port()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "RECONCILER_PLUGINS": "kvstore_driver",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
           "VIEWER_T": "viewer-token"}
    env.pop("RECONCILER_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs),
                             "--port", str(port), "--viewer-token-env", "VIEWER_T"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def scheduled() -> list[dict]:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/objects/KeyValueStore/kv/history",
                                   headers={"Authorization": "Bearer viewer-token"}, timeout=5)
            except httpx.HTTPError:
                return []
            runs = answer.json() if answer.status_code == 200 else []
            return [r for r in runs if r.get("trigger") == "schedule" and r.get("outcome") != "running"]

        runs = wait(scheduled, timeout=60)
        assert runs[0]["outcome"] in ("succeeded", "noop"), (tmp_path / "serve.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_the_built_in_kinds_are_registered_through_the_entry_point_group() -> None:
    from importlib.metadata import distribution

    from reconciler.kinds import BUILTINS, ENTRY_POINT_GROUP

    points = [p for p in distribution("reconciler").entry_points if p.group == ENTRY_POINT_GROUP]
    assert {p.name: p.load() for p in points} == {info.kind: info for info in BUILTINS}
