"""Secret references: resolution, errors that never show values, scrubbing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reconciler.errors import SecretError
from reconciler.loading.secrets import SecretResolver
from reconciler.models import SecretRef


def test_an_env_reference_resolves_from_the_environment() -> None:
    secret = SecretResolver(environ={"TOKEN": "abc"}).resolve(SecretRef(env="TOKEN"))
    assert secret.reveal() == "abc"


def test_a_resolved_secret_never_prints_its_value() -> None:
    secret = SecretResolver(environ={"TOKEN": "abc"}).resolve(SecretRef(env="TOKEN"))
    assert str(secret) == "***"
    assert "abc" not in repr(secret) and "abc" not in f"{secret}"


def test_a_file_reference_reads_the_file_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n")
    assert SecretResolver().resolve(SecretRef(file=str(tmp_path / "key"))).reveal() == "from-file"


def test_a_missing_variable_is_a_clear_error() -> None:
    with pytest.raises(SecretError, match="environment variable MISSING is not set"):
        SecretResolver(environ={}).resolve(SecretRef(env="MISSING"))


def test_a_secret_ref_needs_the_operator_outside_a_cluster() -> None:
    ref = SecretRef.model_validate({"secretRef": {"name": "db", "key": "url"}})
    with pytest.raises(SecretError, match="resolved by the Kubernetes operator"):
        SecretResolver().resolve(ref)


def test_a_secret_ref_resolves_through_the_kubernetes_lookup() -> None:
    ref = SecretRef.model_validate({"secretRef": {"name": "db", "key": "url"}})
    resolver = SecretResolver(kubernetes=lambda ns, name, key: f"{ns}/{name}/{key}")
    assert resolver.resolve(ref, namespace="prod").reveal() == "prod/db/url"


def test_scrub_masks_every_resolved_value_longest_first() -> None:
    resolver = SecretResolver(environ={"A": "pass", "B": "password123"})
    resolver.resolve(SecretRef(env="A"))
    resolver.resolve(SecretRef(env="B"))
    assert resolver.scrub("user:password123@host pass") == "user:***@host ***"


def test_a_literal_value_is_refused_in_a_spec() -> None:
    with pytest.raises(ValidationError, match="secret values are never written in specs"):
        SecretRef.model_validate("hunter2")


def test_a_reference_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of env, file, keyring or secretRef"):
        SecretRef.model_validate({"env": "A", "file": "/x"})
