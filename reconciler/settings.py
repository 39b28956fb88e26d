"""Process-wide settings, read once from the environment and passed down explicitly.

Nothing in the code reads environment variables for its own configuration except through
:class:`Settings`; front ends build one and hand it (or the pieces it configures) to the
engine, which is also how tests inject a throw-away store.

Each field is read from `RECONCILER_<FIELD>` (any case), and values given to the
constructor win over the environment; pydantic validates the strings (numbers, durations,
paths, choices), so a bad value is a `ValidationError` naming the field. Every field is a
scalar, so this is all pydantic-settings would do here: it is not used, because importing
it (dotenv, argparse, the cloud secret providers) cost about 25 ms of every CLI start.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.models.common import Duration

if TYPE_CHECKING:
    from reconciler.loading.limits import LoaderLimits
    from reconciler.store.pruning import RetentionPolicy


def default_state_dir() -> Path:
    """Follow the XDG base-directory convention: `$XDG_STATE_HOME/reconciler`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reconciler"


ENV_PREFIX = "RECONCILER_"


class Settings(BaseModel):
    """Settings of one reconciler process (`RECONCILER_*` environment variables)."""

    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(type(self).model_fields), **values})

    state_dir: Path = Field(default_factory=default_state_dir)
    database_url: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    plugins: str = ""
    lock_timeout_seconds: float = 600.0
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    """The SQLite store's `PRAGMA synchronous` (WAL journal): `normal` syncs at checkpoints,
    never corrupts, and survives a crash of the process; after a power loss or an OS crash
    the last runs' records may be missing. `full` syncs every commit (about 0.1 s more per
    CLI run here). PostgreSQL stores are not affected."""
    # History retention (`history.retention`): `reconciler db prune` and the daemon, every
    # interval, remove the runs kept by no rule (see reconciler/store/pruning.py).
    history_retention_keep: int = Field(default=1000, ge=0)
    """The newest runs kept per object; 0: no count rule."""
    history_retention_max_age: Duration | None = None
    """Runs started within this duration are kept (`30d`, `12h`)."""
    history_retention_interval: Duration = timedelta(minutes=15)
    """How often the daemon prunes."""
    # The HTTP API reads at most this many bytes of a request body (413 beyond); the git
    # webhook, which authenticates by an HMAC of its body, has its own bound.
    api_max_body_bytes: int = Field(default=64 * 1024, gt=0)
    api_webhook_max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # The dashboard (reconciler/web): its users file (default: users.json in the state
    # directory) and how long a login session may sit idle.
    users_file: Path | None = None
    session_idle_timeout: Duration = timedelta(minutes=30)
    # Events out of the daemon (`reconciler serve`); None disables each.
    redis_url: str | None = None
    redis_stream: str = "reconciler:events"
    redis_stream_maxlen: int = 100_000
    redis_batch_size: int = 100
    redis_flush_interval_seconds: float = 0.5
    redis_max_backlog: int = 10_000
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    mqtt_prefix: str = "reconciler"
    mqtt_heartbeat_seconds: float = 30.0
    alert_webhook_url: str | None = Field(default=None, repr=False)
    alert_consecutive_failures: int = 3
    alert_long_run_seconds: float | None = 3600.0  # critical; 0 turns it off
    alert_slow_run_seconds: float | None = 2700.0  # warning; 0 turns it off
    alert_on_guard: bool = True
    # The daily summary's time of day (HH:MM) and zone; set, it also holds the warnings
    alert_summary_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    alert_summary_time_zone: str = "UTC"
    # What one spec file may cost to load (see reconciler/loading/limits.py). The depth is
    # capped: the loader recurses once per level.
    spec_max_bytes: int = Field(default=1_048_576, ge=1)
    spec_max_nodes: int = Field(default=100_000, ge=1)
    spec_max_alias_nodes: int = Field(default=10_000, ge=0)
    spec_max_depth: int = Field(default=64, ge=1, le=200)

    def model_post_init(self, context: object, /) -> None:
        """The credentials these settings carry are masked in every output of the process."""
        from reconciler.redaction import remember, remember_url

        remember_url(self.database_url)
        remember_url(self.redis_url)
        remember(self.alert_webhook_url)

    def store_url(self) -> str:
        """The store's SQLAlchemy URL: the configured one, or SQLite in the state directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'reconciler.db'}"

    def history_retention(self) -> RetentionPolicy:
        from reconciler.store.pruning import RetentionPolicy

        return RetentionPolicy(keep=self.history_retention_keep, max_age=self.history_retention_max_age)

    def loader_limits(self) -> LoaderLimits:
        from reconciler.loading.limits import LoaderLimits  # the loader's package is heavy

        return LoaderLimits(max_bytes=self.spec_max_bytes, max_nodes=self.spec_max_nodes,
                            max_alias_nodes=self.spec_max_alias_nodes, max_depth=self.spec_max_depth)

    def plugin_modules(self) -> list[str]:
        return [m.strip() for m in self.plugins.split(",") if m.strip()]


def _from_environment(fields: dict[str, Any]) -> dict[str, str]:
    """`RECONCILER_<FIELD>` variables (the name in any case) for the fields that exist."""
    found: dict[str, str] = {}
    for key, value in os.environ.items():
        name = key.upper()
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() in fields:
            found[name[len(ENV_PREFIX):].lower()] = value
    return found
