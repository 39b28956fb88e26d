"""A Kubernetes API for operator tests: kmock's `KubernetesEmulator` over real HTTP, plus the
few things a real API server assigns that kopf relies on.

kmock stores objects as sent (see gitops-conventions.md §6.2–6.3): it never assigns
`resourceVersion`, `generation`, `uid` or names from `generateName`. Without a changing
`resourceVersion` kopf's consistency check matches stale events (handlers run twice),
and its finalizer JSON patch `test`s a field that is missing (HTTP 500). `ApiServer`
assigns them on create and patch, and bumps `generation` when a patch carries `spec`
(not through `/status`), as the API server does for custom resources with a status
subresource. Its watch takes its place on the event bus in the same lock as the snapshot
it replays, and it replays only objects newer than the `resourceVersion` it was asked to
resume from (the list's), as a real API server does: kmock 0.8 replays every object, so
kopf handles the listed version twice, and subscribes after the replay, so a change made in
between is lost. Everything else is kmock's own behaviour.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import kmock
from ruamel.yaml import YAML

from reconciler.artifacts.crds import render_crds

_versions = itertools.count(1)
_latest = [0]


def _next_version() -> str:
    _latest[0] = next(_versions)
    return str(_latest[0])


class ApiServer(kmock.KubernetesEmulator):
    async def _handle(self, request: kmock.Request) -> Any:  # type: ignore[override]
        if request.resource is not None and request.action == kmock.action.CREATE:
            self._on_create(request.data)
        elif request.resource is not None and request.action == kmock.action.UPDATE and request.name:
            self._on_patch(request)
        return await super()._handle(request)

    async def _serve_list(self, request: kmock.Request) -> Any:  # type: ignore[override]
        listing = await super()._serve_list(request)
        listing["metadata"]["resourceVersion"] = str(_latest[0])
        return listing

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:  # type: ignore[override]
        yield b""
        assert request.resource is not None
        bus = self._buses[request.resource]
        since = int(request.params.get("resourceVersion") or 0)
        async with self._lock:
            marker = await bus.mark()
            objects = self._KubernetesEmulator__get_objs(request, strict=False)  # type: ignore[attr-defined]
            replay = [{"type": "ADDED", "object": o.raw} for o in objects if not o.deleted
                      and int(o.get("metadata", {}).get("resourceVersion") or 0) > since]
        try:
            for event in replay:
                yield event
            async for event in marker:
                meta = event.get("object", {}).get("metadata", {})
                if request.namespace not in (None, meta.get("namespace")):
                    continue
                if request.name not in (None, meta.get("name")):
                    continue
                yield event
        finally:
            await bus.unmark(marker)

    @staticmethod
    def _on_create(data: Any) -> None:
        if not isinstance(data, dict):
            return
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        meta.update(resourceVersion=_next_version(), generation=1, uid=str(uuid.uuid4()),
                    creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def _on_patch(self, request: kmock.Request) -> None:
        version = _next_version()
        if isinstance(request.data, list):  # RFC 6902 (kopf's finalizer patches)
            self._check_version(request)
            request.data.append({"op": "replace", "path": "/metadata/resourceVersion", "value": version})
            return
        if not isinstance(request.data, dict):
            return
        meta = request.data.setdefault("metadata", {})
        meta["resourceVersion"] = version
        if "spec" in request.data and request.subresource != "status":
            try:
                current = self.objects[request.resource, request.namespace, request.name]
                meta["generation"] = int(current.get("metadata", {}).get("generation") or 0) + 1
            except KeyError:
                pass


    def _check_version(self, request: kmock.Request) -> None:
        """A `test` of a stale resourceVersion is a conflict (422), as on a real API server
        (kmock answers 500, which kopf retries instead of deferring)."""
        try:
            current = self.objects[request.resource, request.namespace, request.name]
        except KeyError:
            return
        version = current.get("metadata", {}).get("resourceVersion")
        for op in request.data:
            if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion" \
                    and op.get("value") != version:
                raise kmock.KubernetesError(422, "Invalid", "the object has been modified; please apply "
                                            "your changes to the latest version and try again")


def register_crds(server: kmock.KubernetesEmulator, extra: tuple[Any, ...] = ()) -> dict[str, str]:
    """Serve discovery for the generated CRDs (and core v1 Events, Secrets, Namespaces), with
    those of `extra` models (plugin kinds). Returns plural by kind."""
    yaml = YAML(typ="safe")
    plurals = {}
    texts = [*render_crds().values(), *(render_crds(extra).values() if extra else ())]
    for text in texts:
        crd = yaml.load(text)
        names, group = crd["spec"]["names"], crd["spec"]["group"]
        for version in crd["spec"]["versions"]:
            server.resources[f"{group}/{version['name']}/{names['plural']}"] = kmock.ResourceInfo(
                kind=names["kind"], singular=names["singular"],
                namespaced=crd["spec"]["scope"] == "Namespaced", shortnames=set(names.get("shortNames", [])),
                subresources=set(version.get("subresources", {})),
                verbs={"get", "list", "watch", "create", "patch", "delete"})
        plurals[names["kind"]] = names["plural"]
    core = {"events": ("Event", True), "secrets": ("Secret", True), "namespaces": ("Namespace", False)}
    for plural, (kind, namespaced) in core.items():
        server.resources[f"v1/{plural}"] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs={"get", "list", "watch", "create", "patch", "delete"})
    return plurals


def kubeconfig(url: str) -> str:
    return (f"apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            f"clusters: [{{name: test, cluster: {{server: '{url}'}}}}]\n"
            f"users: [{{name: test, user: {{token: test-token}}}}]\n"
            f"contexts: [{{name: test, context: {{cluster: test, user: test, namespace: ns1}}}}]\n")
