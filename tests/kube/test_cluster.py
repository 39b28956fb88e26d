"""The operator as it runs in a cluster: `operate()` (kopf, the store, the API) against kmock's
Kubernetes emulator over real HTTP, logged in through a kubeconfig as outside a pod.

Objects are created, patched, annotated and deleted with plain HTTP calls, as kubectl
sends them; assertions are on the runs in the store, the objects in the emulator and the
request log (Events are asserted there: kmock cannot store two of them, §6.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import pytest_asyncio
import redis
from ruamel.yaml import YAML
from runtime import Webhook

from kube.apiserver import ApiServer, kubeconfig, register_crds
from kube.structural import problems, status_schema
from reconciler.access import TokenTable
from reconciler.artifacts.crds import render_crds
from reconciler.errors import SecretError
from reconciler.operator.handlers import FINALIZER, RUN_NOW
from reconciler.operator.running import operate
from reconciler.operator.secrets import SecretReader
from reconciler.settings import Settings
from reconciler.store import Store

REDIS_URL = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.asyncio
BASE = "/apis/reconciler.dev/v1alpha1/namespaces/ns1"


class Cluster:
    """The emulator, an HTTP client playing kubectl, and the operator's store."""

    def __init__(self, server: ApiServer, client: httpx.AsyncClient, store: Store) -> None:
        self.server, self.client, self.store = server, client, store

    async def create(self, plural: str, body: dict[str, Any]) -> None:
        (await self.client.post(f"{BASE}/{plural}", json=body)).raise_for_status()

    async def patch(self, plural: str, name: str, body: dict[str, Any]) -> None:
        response = await self.client.patch(f"{BASE}/{plural}/{name}", json=body,
                                           headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        response = await self.client.get(f"{BASE}/{plural}/{name}")
        return response.json() if response.status_code == 200 else None

    def runs(self, trigger: str | None = None) -> list[Any]:
        runs = self.store.runs(limit=100)
        return [r for r in runs if trigger is None or r.trigger == trigger]

    def status_patches(self) -> list[tuple[str, dict[str, Any]]]:
        """(plural, status) of every status patch the operator sent (from the request log)."""
        return [(r.resource.plural, r.data["status"]) for r in self.server
                if r.method == kmock.method.PATCH and r.resource is not None
                and isinstance(r.data, dict) and isinstance(r.data.get("status"), dict)]

    def events(self) -> list[dict[str, Any]]:
        """The Events the operator posted (from the request log)."""
        return [r.data for r in self.server if r.method == kmock.method.POST
                and r.resource is not None and r.resource.plural == "events"]


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                          plugins: str = "", extra: tuple[Any, ...] = (),
                          **settings_given: Any) -> AsyncIterator[Cluster]:
    async with ApiServer() as server, kmock.Server(server):
        register_crds(server, extra)
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(str(server.url)))
        monkeypatch.setenv("KUBECONFIG", str(config))
        settings = Settings(state_dir=tmp_path / "state", plugins=plugins, **settings_given)
        # The operator runs in its own thread and event loop, as in a pod (kopf cancels the
        # tasks of its loop when it stops, which would include the test's own).
        stop = threading.Event()
        thread = threading.Thread(target=asyncio.run, daemon=True, args=(operate(
            settings, namespaces=["ns1"], port=0, priority=0, tick_seconds=0.5, tokens=TokenTable(),
            stop=stop, host="127.0.0.1", scan=False),))
        store = Store.open(settings.store_url())  # created and migrated before the operator opens it
        thread.start()
        try:
            async with httpx.AsyncClient(base_url=str(server.url)) as client:
                yield Cluster(server, client, store)
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, 15)
            store.close()
            assert not thread.is_alive(), "the operator did not stop within 15 s"


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, monkeypatch) as found:
        yield found


def agent(root: Path, policy: str = "Orphan") -> dict[str, Any]:
    return {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig",
            "metadata": {"name": "team", "namespace": "ns1"},
            "spec": {"mcpServers": {"github": {"command": "npx", "args": ["-y", "gh-mcp"]}},
                     "targets": [{"client": "claude-code", "scope": "project", "root": str(root)}],
                     "deletionPolicy": policy}}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return item
    return None


async def test_create_change_annotate_and_delete(cluster: Cluster, tmp_path: Path) -> None:
    project = tmp_path / "p"
    await cluster.create("agentconfigs", agent(project))

    # created → one run, status with conditions for generation 1, the finalizer
    obj = await eventually(lambda: _ready(cluster, generation=1))
    assert (project / ".mcp.json").exists()
    assert [r.trigger for r in cluster.runs()] == ["spec"]
    assert obj["status"]["observedGeneration"] == 1 and obj["status"]["lastResult"]["outcome"] == "succeeded"
    assert condition(obj, "Reconciling") is None
    assert FINALIZER in obj["metadata"]["finalizers"]
    # kopf posts events in the background: poll for them.
    await eventually(lambda: {"RunStarted", "RunSucceeded"} <= {e["reason"] for e in cluster.events()})

    # spec changed → a new run for generation 2
    linear = {"mcpServers": {"linear": {"command": "linear-mcp"}}}
    await cluster.patch("agentconfigs", "team", {"spec": linear})
    obj = await eventually(lambda: _ready(cluster, generation=2))
    assert [r.generation for r in cluster.runs("spec")] == [2, 1]
    assert "linear" in json.loads((project / ".mcp.json").read_text())["mcpServers"]

    # kubectl annotate with a new token → exactly one forced run, the token echoed
    await cluster.patch("agentconfigs", "team", {"metadata": {"annotations": {RUN_NOW: "1700000001"}}})
    await eventually(lambda: _status(cluster, "lastHandledRunRequest", "1700000001"))
    assert len(cluster.runs("annotation")) == 1

    # the same token again (and an unrelated change that produces a watch event) → no run
    await cluster.patch("agentconfigs", "team", {"metadata": {"annotations": {RUN_NOW: "1700000001",
                                                                               "team": "platform"}}})
    await eventually(lambda: _annotation_seen(cluster))
    await asyncio.sleep(1.0)
    assert len(cluster.runs("annotation")) == 1
    obj = await cluster.get("agentconfigs", "team")
    assert obj is not None and obj["metadata"]["annotations"][RUN_NOW] == "1700000001"  # never removed

    # deleted under Orphan → the finalizer is released, the object goes, the files stay
    before = (project / ".mcp.json").read_bytes()
    (await cluster.client.delete(f"{BASE}/agentconfigs/team")).raise_for_status()
    await eventually(lambda: _gone(cluster, "team"))
    assert (project / ".mcp.json").read_bytes() == before
    await eventually(lambda: "Orphaned" in [e["reason"] for e in cluster.events()])
    assert not cluster.runs("delete")


async def test_delete_policy_prunes_what_the_reconciler_wrote(cluster: Cluster, tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    foreign = {"mcpServers": {"mine": {"command": "my-server"}}}
    (project / ".mcp.json").write_text(json.dumps(foreign))
    await cluster.create("agentconfigs", agent(project, policy="Delete"))
    await eventually(lambda: _ready(cluster, generation=1))
    assert "github" in json.loads((project / ".mcp.json").read_text())["mcpServers"]

    (await cluster.client.delete(f"{BASE}/agentconfigs/team")).raise_for_status()
    await eventually(lambda: _gone(cluster, "team"))
    assert json.loads((project / ".mcp.json").read_text()) == foreign
    assert [r.outcome for r in cluster.runs("delete")] == ["succeeded"]


async def test_syncjobs_schedule_suspend_and_printer_columns(cluster: Cluster, tmp_path: Path) -> None:
    await cluster.create("agentconfigs", agent(tmp_path / "p"))
    await eventually(lambda: _ready(cluster, generation=1))
    job = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob",
           "metadata": {"name": "team-sync", "namespace": "ns1"},
           "spec": {"targetRef": {"kind": "AgentConfig", "name": "team"}, "interval": "1s", "suspend": True}}
    await cluster.create("syncjobs", job)

    # suspended: four ticks go by (0.5 s each) and nothing is scheduled
    await asyncio.sleep(2.0)
    assert cluster.runs("schedule") == []

    # resumed: the due occurrences run, and the printer columns are filled
    await cluster.patch("syncjobs", "team-sync", {"spec": {"suspend": False}})
    await eventually(lambda: cluster.runs("schedule"))
    await eventually(lambda: _status(cluster, "lastResult", None, plural="syncjobs", name="team-sync"))

    crd = YAML(typ="safe").load(render_crds()["syncjobs.reconciler.dev.yaml"])
    columns = [c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
               if c["jsonPath"] != ".spec.schedule"]  # this job has an interval instead

    async def filled() -> dict[str, Any] | None:
        # The operator patches the result and the next run time in separate steps: poll.
        found = await cluster.get("syncjobs", "team-sync")
        empty = [c["name"] for c in columns if found is None or _json_path(found, c["jsonPath"]) is None]
        scheduled = found is not None and _json_path(found, ".status.lastResult.trigger") == "schedule"
        return None if empty or not scheduled else found

    obj = await eventually(filled)
    assert obj["status"]["lastResult"]["outcome"] == "noop"  # the target was already in sync

    # suspended again: the runs stop
    await cluster.patch("syncjobs", "team-sync", {"spec": {"suspend": True}})
    await asyncio.sleep(1.0)  # a tick in flight may still finish
    count = len(cluster.runs("schedule"))
    await asyncio.sleep(2.0)
    assert len(cluster.runs("schedule")) == count
    obj = await cluster.get("syncjobs", "team-sync")
    assert obj is not None and obj["status"].get("nextRunTime") is None  # NEXT RUN shows <none>


async def test_secret_reader_reads_a_key_with_the_operators_credentials(cluster: Cluster) -> None:
    await eventually(lambda: any(r.method == kmock.method.GET for r in cluster.server))  # logged in
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "egen", "namespace": "ns1"},
              "data": {"serviceKey": "c2VudGluZWwta2V5LTQy"}}  # sentinel-key-42
    (await cluster.client.post("/api/v1/namespaces/ns1/secrets", json=secret)).raise_for_status()
    import kopf

    reader = SecretReader()
    reader.connect(kopf.ConnectionInfo(server=str(cluster.server.url), token="t"))
    value = await asyncio.to_thread(reader, "ns1", "egen", "serviceKey")
    assert value == "sentinel-key-42"
    with pytest.raises(SecretError, match="has no key 'other' \\(keys: serviceKey\\)"):
        await asyncio.to_thread(reader, "ns1", "egen", "other")
    with pytest.raises(SecretError, match="Secret ns1/absent does not exist"):
        await asyncio.to_thread(reader, "ns1", "absent", "serviceKey")
    auth = [r.headers.get("Authorization") for r in cluster.server if r.url.path.endswith("/secrets/egen")]
    assert auth and set(auth) == {"Bearer t"}


# --- helpers -------------------------------------------------------------------------------------


async def _ready(cluster: Cluster, generation: int) -> dict[str, Any] | None:
    obj = await cluster.get("agentconfigs", "team")
    ready = condition(obj, "Ready")
    if obj and ready and ready["status"] == "True" and obj["status"].get("observedGeneration") == generation:
        return obj
    return None


async def _status(cluster: Cluster, field: str, value: Any, *, plural: str = "agentconfigs",
                  name: str = "team") -> dict[str, Any] | None:
    obj = await cluster.get(plural, name)
    found = ((obj or {}).get("status") or {}).get(field)
    return obj if (found == value if value is not None else found is not None) else None


async def _annotation_seen(cluster: Cluster) -> bool:
    obj = await cluster.get("agentconfigs", "team")
    return bool(obj) and "team" in (obj or {}).get("metadata", {}).get("annotations", {})


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.get("agentconfigs", name) is None


def _json_path(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


async def test_aed_binding_reads_its_secret_refs_from_kubernetes_secrets(cluster: Cluster,
                                                                         tmp_path: Path) -> None:
    import base64
    import sqlite3

    from reconciler.emulator.egen import EgenEmulator

    sentinel = "sentinel-egen-key-5521"
    database = tmp_path / "aed.db"
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "aed-credentials", "namespace": "ns1"},
              "data": {"service-key": base64.b64encode(sentinel.encode()).decode(),
                       "database-url": base64.b64encode(f"sqlite:///{database}".encode()).decode()}}
    (await cluster.client.post("/api/v1/namespaces/ns1/secrets", json=secret)).raise_for_status()
    shipped = (Path(__file__).resolve().parents[2] / "specs" / "aed.yaml").read_text()
    spec = next(d for d in YAML(typ="safe").load_all(shipped) if d["kind"] == "AedSourceBinding")
    emulator = EgenEmulator(count=300)
    emulator.start()
    try:
        spec["metadata"] = {"name": "aed", "namespace": "ns1"}
        key = {"secretRef": {"name": "aed-credentials", "key": "service-key"}}
        spec["spec"]["source"].update(baseUrl=emulator.base_url, serviceKey=key)
        spec["spec"]["target"]["databaseUrl"] = {"secretRef": {"name": "aed-credentials",
                                                               "key": "database-url"}}
        await cluster.create("aedsourcebindings", spec)

        async def ready() -> dict[str, Any] | None:
            obj = await cluster.get("aedsourcebindings", "aed")
            found = condition(obj, "Ready")
            return obj if found and found["status"] == "True" else None

        obj = await eventually(ready, timeout=30)
    finally:
        emulator.stop()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM aed_data").fetchone()[0] > 0
    assert obj["status"]["lastResult"]["counts"]["created"] > 0
    sent = [r for r in cluster.server if r.method in (kmock.method.PATCH, kmock.method.POST)]
    assert sent and all(sentinel not in (r.text or "") for r in sent)  # not in status, Events or patches
    assert all(sentinel not in json.dumps(run.error or "") for run in cluster.runs())


def _assert_patches_survive_pruning(cluster: Cluster) -> None:
    sent = cluster.status_patches()
    assert sent, "the operator sent no status patch"
    found = [p for plural, status in sent for p in problems(status, status_schema(plural))]
    assert not found, found


async def test_syncjob_runs_through_the_shared_scheduler(cluster: Cluster, tmp_path: Path) -> None:
    # A dry-run job: the occurrence is planned, the target keeps a hand edit (nothing written).
    project = tmp_path / "p"
    await cluster.create("agentconfigs", agent(project))
    await eventually(lambda: _ready(cluster, generation=1))
    mcp = project / ".mcp.json"
    mcp.write_text(mcp.read_text().replace("gh-mcp", "edited-by-hand"))
    before = mcp.read_bytes()
    ready_before = condition(await cluster.get("agentconfigs", "team"), "Ready")
    job = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob",
           "metadata": {"name": "team-plan", "namespace": "ns1"},
           "spec": {"targetRef": {"kind": "AgentConfig", "name": "team"}, "interval": "1s", "dryRun": True}}
    await cluster.create("syncjobs", job)
    runs = await eventually(lambda: cluster.runs("schedule"))
    assert all(r.dry_run for r in runs), [(r.trigger, r.dry_run) for r in runs]
    assert mcp.read_bytes() == before
    # A dry run moves no condition and no result (Flux: only real reconciliations do).
    obj = await cluster.get("agentconfigs", "team")
    assert condition(obj, "Ready") == ready_before
    assert obj is not None and obj["status"]["lastResult"]["trigger"] == "spec"

    # kubectl annotate syncjob … run-now: the job's target runs once, as the job says (dry).
    await cluster.patch("syncjobs", "team-plan", {"metadata": {"annotations": {RUN_NOW: "42"}}})
    await eventually(lambda: _status(cluster, "lastHandledRunRequest", "42", plural="syncjobs",
                                     name="team-plan"))
    forced = cluster.runs("annotation")
    assert len(forced) == 1 and forced[0].dry_run and forced[0].name == "team"
    _assert_patches_survive_pruning(cluster)


async def test_a_failing_scheduled_run_is_retried_and_a_job_waits_for_its_target(
        cluster: Cluster, tmp_path: Path) -> None:
    # The job exists before its target: no occurrence is claimed (and used up) meanwhile.
    job = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob",
           "metadata": {"name": "team-sync", "namespace": "ns1"},
           "spec": {"targetRef": {"kind": "AgentConfig", "name": "team"}, "interval": "1h",
                    "retry": {"limit": 3, "backoff": "1s"}}}
    await cluster.create("syncjobs", job)
    waiting = await eventually(lambda: _status(cluster, "conditions", None, plural="syncjobs",
                                               name="team-sync"))
    assert condition(waiting, "Stalled")["reason"] == "TargetNotFound"
    from reconciler.models import ObjectRef

    ref = ObjectRef("SyncJob", "ns1", "team-sync")
    assert cluster.store.schedule_state(ref).last_schedule_time is None and not cluster.runs()

    # The target arrives with a file it cannot parse: the scheduled run fails and is retried.
    project = tmp_path / "p"
    project.mkdir()
    (project / ".mcp.json").write_text("{ not json")
    await cluster.create("agentconfigs", agent(project))
    await eventually(lambda: cluster.runs("schedule"), timeout=30)
    state = await eventually(lambda: (lambda s: s if s.failures >= 1 and s.retry_at else None)(
        cluster.store.schedule_state(ref)), timeout=30)
    assert state.failures >= 1 and state.retry_at is not None
    _assert_patches_survive_pruning(cluster)


async def test_a_plugin_kind_is_watched_and_scheduled_by_the_operator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kvstore_driver

    async with running_cluster(tmp_path, monkeypatch, plugins="kvstore_driver",
                               extra=(kvstore_driver.KeyValueStore,)) as cluster:
        target = tmp_path / "kv.json"
        await cluster.create("keyvaluestores", {
            "apiVersion": "reconciler.dev/v1alpha1", "kind": "KeyValueStore",
            "metadata": {"name": "kv", "namespace": "ns1"},
            "spec": {"file": str(target), "data": {"a": "1"}}})
        await eventually(lambda: target.exists())  # watched: reconciled on create
        await cluster.create("syncjobs", {
            "apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": "kv-often", "namespace": "ns1"},
            "spec": {"targetRef": {"kind": "KeyValueStore", "name": "kv"}, "interval": "1s"}})
        runs = await eventually(lambda: cluster.runs("schedule"))
        assert runs[0].kind == "KeyValueStore"
        _assert_patches_survive_pruning(cluster)


async def test_the_operator_publishes_events_and_sends_alerts_as_serve_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart gives the operator the same Redis and webhook settings as `serve`; it starts
    the same publishers (was: none, so no alert and no event ever left a cluster)."""
    stream = f"reconciler-test:{uuid.uuid4().hex}"
    hook = Webhook()
    hook.thread.start()
    project = tmp_path / "p"
    project.mkdir()
    (project / ".mcp.json").write_text('{"mcpServers": [1, 2]}\n')  # a wrong shape: every run fails
    try:
        async with running_cluster(tmp_path, monkeypatch, redis_url=REDIS_URL, redis_stream=stream,
                                   alert_webhook_url=hook.url, alert_consecutive_failures=1) as cluster:
            await cluster.create("agentconfigs", agent(project))
            await eventually(lambda: any("failed 1 runs in a row" in t for t in hook.texts()), timeout=30)

            def types() -> set[str]:
                with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
                    return {fields["type"] for _id, fields in client.xrange(stream)}

            await eventually(lambda: {"RunStarted", "RunFailed"} <= types(), timeout=30)
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        with redis.Redis.from_url(REDIS_URL) as client:
            client.delete(stream)
