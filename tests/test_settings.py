"""Settings from `RECONCILER_*` environment variables (reconciler/settings.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from reconciler.settings import Settings


def test_fields_come_from_the_environment_in_any_case(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("reconciler_lock_timeout_seconds", "12.5")
    monkeypatch.setenv("RECONCILER_HISTORY_RETENTION_MAX_AGE", "30d")
    monkeypatch.setenv("RECONCILER_ALERT_ON_GUARD", "false")
    monkeypatch.setenv("RECONCILER_NOT_A_SETTING", "ignored")
    settings = Settings()
    assert settings.state_dir == tmp_path and settings.lock_timeout_seconds == 12.5
    assert settings.history_retention_max_age == timedelta(days=30)
    assert settings.alert_on_guard is False
    assert not hasattr(settings, "not_a_setting")


def test_values_given_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_LOG_LEVEL", "debug")
    assert Settings().log_level == "debug"
    assert Settings(log_level="error").log_level == "error"


def test_a_bad_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_SPEC_MAX_DEPTH", "lots")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("spec_max_depth",)
