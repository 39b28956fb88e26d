"""Which emulator a local run talks to: specs pointed at the one actually serving.

The shipped specs name the emulator at its default address (`http://127.0.0.1:8089/...`).
When the quickstart serves it on another port (`--port`), every AedSourceBinding whose
`baseUrl` names a local emulator (loopback host, default port) is pointed at the port in
use, the path kept; sources elsewhere (the real service) are left alone. Nothing is
written back to the spec files: the pointed objects live for this run only.

A port that is busy may hold anything: before a run trusts it, `is_emulator` asks it for
one record with the service's own query and accepts only the service's envelope
(`<resultCode>` in a `<response>`), so a run never loads rows from an unrelated server.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

import httpx

from reconciler.loading.specs import SpecSet
from reconciler.models import ObjectRef, Resource
from reconciler.models.aed import AedSourceBinding

DEFAULT_PORT = 8089
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Pointed:
    """The specs with local sources pointed at the emulator, and which objects were."""

    specs: SpecSet
    moved: tuple[ObjectRef, ...]


def _is_local_default(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK and parts.port == default_port


def _pointed_url(url: str, emulator_url: str) -> str:
    """`url` with the scheme, host and port of `emulator_url`; its own path and query kept."""
    parts, to = urlsplit(url), urlsplit(emulator_url)
    return urlunsplit((to.scheme, to.netloc, parts.path, parts.query, parts.fragment))


def point_at_emulator(specs: SpecSet, emulator_url: str, *, default_port: int = DEFAULT_PORT) -> Pointed:
    """Point every AedSourceBinding that names the local emulator at `emulator_url` (pure)."""
    objects: list[Resource] = []
    moved: list[ObjectRef] = []
    for obj in specs:
        if isinstance(obj, AedSourceBinding) and _is_local_default(obj.spec.source.base_url, default_port):
            url = _pointed_url(obj.spec.source.base_url, emulator_url)
            if url != obj.spec.source.base_url:
                source = obj.spec.source.model_copy(update={"base_url": url})
                obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"source": source})})
                moved.append(obj.ref)
        objects.append(obj)
    return Pointed(replace(specs, objects=tuple(objects)), tuple(moved))


def is_emulator(base_url: str, *, timeout: float = 5.0) -> bool:
    """Whether `base_url` answers like the AED service: one record asked for, the service's
    envelope back (or its refusal of the probe's key, when the emulator wants a key of its
    own). False for a refused connection or any other server."""
    try:
        reply = httpx.get(f"{base_url.rstrip('/')}/getAedFullDown", timeout=timeout,
                          params={"serviceKey": "quickstart-probe", "numOfRows": 1, "pageNo": 1})
    except httpx.HTTPError:
        return False
    body = reply.text[:4096]
    answered = "<response>" in body and "<resultCode>" in body
    refused_key = "<OpenAPI_ServiceResponse>" in body and "<returnReasonCode>" in body  # a keyed emulator
    return reply.status_code == 200 and (answered or refused_key)
