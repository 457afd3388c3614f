"""Settings read from FLEETAPP_* environment variables, and nothing else.

The deploy kit writes one env file per host; this module is the single place that turns it into
typed settings. Every variable is documented in docs/app-contract.md (a test keeps the two in sync).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

ENVIRONMENTS = ("development", "testing", "production")

# Development fallbacks. Production refuses the secret outright and has no DB default at all.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEV_DATABASE_URL = "sqlite:///fleetapp-dev.db"
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised at start-up when the environment cannot produce a valid configuration."""


@dataclass(frozen=True)
class Settings:
    """The app's configuration, read once from the environment and checked."""

    env: str
    secret_key: str
    database_url: str
    migration_database_url: str
    cache_redis_url: str
    broker_url: str
    result_backend: str
    release_id: str
    log_level: str
    beat_schedule_file: str
    heartbeat_interval: float
    heartbeat_max_age: float
    cache_ttl: int
    login_rate_limit: int
    login_rate_window: int
    max_content_length: int
    import_max_batch: int
    task_time_limit: int
    task_soft_time_limit: int
    digest_interval: float
    cleanup_interval: float
    retention_days: int
    proxy_hops: int
    session_cookie_secure: bool
    redis_timeout: float
    db_connect_retries: int

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_testing(self) -> bool:
        return self.env == "testing"


class _Reader:
    """Typed access to FLEETAPP_* variables; every error names the offending variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def number(self, name: str, default: float, *, minimum: float = 0) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if parsed < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")
        return parsed

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if parsed < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def _environment(reader: _Reader) -> str:
    env = reader.string("FLEETAPP_ENV", "development").lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"FLEETAPP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    return env


def _database_url(reader: _Reader, env: str) -> str:
    url = reader.raw("FLEETAPP_DATABASE_URL")
    if url is None:
        if env == "production":
            raise ConfigError("FLEETAPP_DATABASE_URL is required when FLEETAPP_ENV=production")
        return DEV_DATABASE_URL
    return url


@dataclass(frozen=True)
class MigrationSettings:
    url: str
    connect_retries: int


def load_migration_settings(environ: Mapping[str, str] | None = None) -> MigrationSettings:
    """What alembic needs: the DDL user's URL if configured (else the app's) and the retry count.

    Deliberately independent of the full settings so that a migration run needs only the
    database variables, not the secret key.
    """
    reader = _Reader(os.environ if environ is None else environ)
    url = reader.raw("FLEETAPP_MIGRATION_DATABASE_URL") or _database_url(
        reader, _environment(reader)
    )
    return MigrationSettings(
        url=url, connect_retries=reader.integer("FLEETAPP_DB_CONNECT_RETRIES", 5, minimum=1)
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, refusing unsafe production configurations."""
    reader = _Reader(os.environ if environ is None else environ)
    env = _environment(reader)
    production = env == "production"

    secret_key = reader.raw("FLEETAPP_SECRET_KEY")
    if secret_key is None:
        if production:
            raise ConfigError("FLEETAPP_SECRET_KEY is required when FLEETAPP_ENV=production")
        secret_key = DEV_SECRET_KEY
    elif production and (
        secret_key == DEV_SECRET_KEY or len(secret_key) < MIN_SECRET_KEY_LENGTH
    ):
        raise ConfigError(
            f"FLEETAPP_SECRET_KEY must be a random value of at least {MIN_SECRET_KEY_LENGTH} "
            "characters (not the development default) when FLEETAPP_ENV=production"
        )

    database_url = _database_url(reader, env)
    log_level = reader.string("FLEETAPP_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"FLEETAPP_LOG_LEVEL must be a logging level name, got {log_level!r}")

    task_time_limit = reader.integer("FLEETAPP_TASK_TIME_LIMIT", 300, minimum=1)
    task_soft_time_limit = reader.integer(
        "FLEETAPP_TASK_SOFT_TIME_LIMIT", max(1, task_time_limit - 30), minimum=1
    )
    if task_soft_time_limit >= task_time_limit:
        # The soft limit exists so a task can roll back and record its failure before the hard
        # limit kills the process; one at or above the hard limit would never fire.
        raise ConfigError("FLEETAPP_TASK_SOFT_TIME_LIMIT must be below FLEETAPP_TASK_TIME_LIMIT")

    return Settings(
        env=env,
        secret_key=secret_key,
        database_url=database_url,
        migration_database_url=reader.raw("FLEETAPP_MIGRATION_DATABASE_URL") or database_url,
        cache_redis_url=reader.string("FLEETAPP_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        broker_url=reader.string("FLEETAPP_BROKER_URL", "redis://127.0.0.1:6379/1"),
        result_backend=reader.string("FLEETAPP_RESULT_BACKEND", "redis://127.0.0.1:6379/2"),
        release_id=reader.string("FLEETAPP_RELEASE_ID", "dev"),
        log_level=log_level,
        beat_schedule_file=reader.string(
            "FLEETAPP_BEAT_SCHEDULE_FILE",
            os.path.join(tempfile.gettempdir(), "fleetapp-celerybeat-schedule"),
        ),
        heartbeat_interval=reader.number("FLEETAPP_HEARTBEAT_INTERVAL", 5.0, minimum=1),
        heartbeat_max_age=reader.number("FLEETAPP_HEARTBEAT_MAX_AGE", 30.0),
        cache_ttl=reader.integer("FLEETAPP_CACHE_TTL", 60, minimum=1),
        login_rate_limit=reader.integer("FLEETAPP_LOGIN_RATE_LIMIT", 10, minimum=1),
        login_rate_window=reader.integer("FLEETAPP_LOGIN_RATE_WINDOW", 60, minimum=1),
        max_content_length=reader.integer("FLEETAPP_MAX_CONTENT_LENGTH", 1_048_576, minimum=1024),
        import_max_batch=reader.integer("FLEETAPP_IMPORT_MAX_BATCH", 200, minimum=1),
        task_time_limit=task_time_limit,
        task_soft_time_limit=task_soft_time_limit,
        digest_interval=reader.number("FLEETAPP_DIGEST_INTERVAL", 3600.0, minimum=1),
        cleanup_interval=reader.number("FLEETAPP_CLEANUP_INTERVAL", 86400.0, minimum=1),
        retention_days=reader.integer("FLEETAPP_RETENTION_DAYS", 30, minimum=1),
        proxy_hops=reader.integer("FLEETAPP_PROXY_HOPS", 1),
        session_cookie_secure=reader.boolean("FLEETAPP_SESSION_COOKIE_SECURE", production),
        redis_timeout=reader.number("FLEETAPP_REDIS_TIMEOUT", 2.0, minimum=0.1),
        db_connect_retries=reader.integer("FLEETAPP_DB_CONNECT_RETRIES", 5, minimum=1),
    )
