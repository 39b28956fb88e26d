"""`secretRef` values from Kubernetes Secrets, read with the operator's own credentials.

The operator logs in once (its service account in a pod, the kubeconfig elsewhere) and
keeps the `kopf.ConnectionInfo`; `SecretReader` uses the same server, token and TLS
settings to `GET /api/v1/namespaces/{ns}/secrets/{name}` and decodes one key. A value
goes straight into the run's `SecretResolver`, which masks it in everything the run
writes; errors name the Secret and key, never a value.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

import httpx

from reconciler.errors import SecretError

if TYPE_CHECKING:
    import kopf


class SecretReader:
    """`(namespace, name, key) -> value`, the resolver's Kubernetes lookup."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._connection: kopf.ConnectionInfo | None = None
        self._timeout = timeout

    def connect(self, connection: kopf.ConnectionInfo | None) -> None:
        """Use the credentials the operator logged in with (called by the login handler)."""
        self._connection = connection

    def __call__(self, namespace: str, name: str, key: str) -> str:
        where = f"Secret {namespace}/{name}"
        if self._connection is None:
            raise SecretError(f"{where}: the operator has not logged in to Kubernetes yet")
        info = self._connection
        verify = info.as_ssl_context() if info.server.startswith("https") else False
        try:
            with httpx.Client(base_url=info.server, headers=info.as_http_headers(), verify=verify,
                              timeout=self._timeout) as client:
                response = client.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except httpx.HTTPError as exc:
            raise SecretError(f"{where}: cannot reach the Kubernetes API: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise SecretError(f"{where} does not exist")
        if response.status_code in (401, 403):
            raise SecretError(f"{where}: the operator's service account may not read it "
                              f"(HTTP {response.status_code}); grant `get` on secrets in {namespace}")
        if response.status_code >= 400:
            raise SecretError(f"{where}: the Kubernetes API answered HTTP {response.status_code}")
        body = response.json()
        data = body.get("data") or {}
        if key in data:
            try:
                return base64.b64decode(data[key], validate=True).decode("utf-8").rstrip("\n")
            except (binascii.Error, UnicodeDecodeError):
                raise SecretError(f"{where}: key {key!r} is not base64-encoded UTF-8 text") from None
        if key in (body.get("stringData") or {}):  # what some test servers store as sent
            return str(body["stringData"][key])
        keys = ", ".join(sorted(data)) or "none"
        raise SecretError(f"{where} has no key {key!r} (keys: {keys})")
