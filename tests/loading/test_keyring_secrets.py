"""`{keyring: {service, username}}` secret references and `reconciler secrets set|delete`.

The tests use keyrings.alt's file-backed PlaintextKeyring in a temporary XDG data folder
(PYTHON_KEYRING_BACKEND), for the CLI processes and for the resolver in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import SecretError
from reconciler.loading.secrets import SecretResolver, parse_reference
from reconciler.models import SecretRef

VALUE = "kr-sentinel-5e1a-value"
BACKEND = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def keyring_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    import keyring
    import keyring.core

    data = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.core.load_keyring(BACKEND))
    yield {**os.environ, "XDG_DATA_HOME": str(data), "PYTHON_KEYRING_BACKEND": BACKEND,
           "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    keyring.set_keyring(previous)


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


def test_set_reads_stdin_and_the_resolver_reads_the_keyring(keyring_env: dict[str, str]) -> None:
    done = cli(keyring_env, "secrets", "set", "aed-api", "ops", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert VALUE not in done.stdout + done.stderr
    assert "stored keyring:aed-api/ops" in done.stdout

    ref = SecretRef.model_validate({"keyring": {"service": "aed-api", "username": "ops"}})
    resolver = SecretResolver(environ={})
    secret = resolver.resolve(ref)
    assert secret.reveal() == VALUE  # the trailing newline of stdin dropped
    assert str(secret) == "***" and VALUE not in repr(secret)
    assert resolver.scrub(f"failed with {VALUE}") == "failed with ***"
    assert ref.describe() == "keyring:aed-api/ops"

    gone = cli(keyring_env, "secrets", "delete", "aed-api", "ops")
    assert gone.returncode == 0, gone.stderr
    with pytest.raises(SecretError, match=r"no such entry in the OS keyring; store it with `reconciler "
                                          r"secrets set aed-api ops`"):
        SecretResolver(environ={}).resolve(ref)
    again = cli(keyring_env, "secrets", "delete", "aed-api", "ops")
    assert again.returncode == 1 and "nothing was deleted" in again.stderr


def test_the_value_is_never_an_argument(keyring_env: dict[str, str]) -> None:
    done = cli(keyring_env, "secrets", "set", "svc", "user", VALUE)
    assert done.returncode == 2  # a usage error: no third argument
    import keyring

    assert keyring.get_password("svc", "user") is None
    empty = cli(keyring_env, "secrets", "set", "svc", "user", stdin="")
    assert empty.returncode == 1 and "non-empty" in empty.stderr


def test_keyring_reference_shape_errors_and_option_form() -> None:
    with pytest.raises(ValueError, match="username"):
        SecretRef.model_validate({"keyring": {"service": "x"}})
    with pytest.raises(ValueError, match="exactly one of env, file, keyring or secretRef"):
        SecretRef.model_validate({"env": "A", "keyring": {"service": "x", "username": "y"}})
    ref = parse_reference("keyring:git-host/deploy", option="--git-credentials")
    assert ref.keyring is not None and (ref.keyring.service, ref.keyring.username) == ("git-host", "deploy")
    with pytest.raises(SecretError, match="keyring:SERVICE/USERNAME"):
        parse_reference("keyring:no-user", option="--git-credentials")


def test_agentconfig_reports_a_keyring_reference_as_dropped(keyring_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    body = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": "kr"},
            "spec": {"mcpServers": {"gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": {
                "keyring": {"service": "github", "username": "me"}}}}},
                     "targets": [{"client": "cursor", "scope": "project", "root": str(tmp_path / "p")}]}}
    (specs / "kr.yaml").write_text(json.dumps(body))
    planned = cli(keyring_env, "plan", str(specs))
    assert planned.returncode == 0, planned.stderr
    assert "mcpServers.gh.env.GITHUB_TOKEN dropped: keyring:github/me cannot be written without its value" \
        in planned.stdout
