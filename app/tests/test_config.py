"""Environment-only configuration and the production refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetapp import create_app
from fleetapp.config import (
    DEV_DATABASE_URL,
    DEV_SECRET_KEY,
    ConfigError,
    load_migration_settings,
    load_settings,
)

CONFIG_SOURCE = Path(__file__).resolve().parents[1] / "fleetapp" / "config.py"
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "app-contract.md"
GOOD_SECRET = "k" * 40
PRODUCTION = {
    "FLEETAPP_ENV": "production",
    "FLEETAPP_SECRET_KEY": GOOD_SECRET,
    "FLEETAPP_DATABASE_URL": "mysql+pymysql://app:pw@db/fleetapp?charset=utf8mb4",
}


def test_development_defaults() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.database_url == DEV_DATABASE_URL
    assert settings.migration_database_url == DEV_DATABASE_URL
    assert settings.cache_redis_url.endswith("/0")
    assert settings.broker_url.endswith("/1")
    assert settings.result_backend.endswith("/2")
    assert settings.session_cookie_secure is False
    assert settings.proxy_hops == 1


def test_production_settings() -> None:
    settings = load_settings({**PRODUCTION, "FLEETAPP_MIGRATION_DATABASE_URL": "mysql://ddl@db/x"})
    assert settings.is_production
    assert settings.session_cookie_secure is True
    assert settings.migration_database_url == "mysql://ddl@db/x"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("FLEETAPP_SECRET_KEY", "FLEETAPP_SECRET_KEY is required when FLEETAPP_ENV=production"),
        ("FLEETAPP_DATABASE_URL", "FLEETAPP_DATABASE_URL is required when FLEETAPP_ENV=production"),
    ],
)
def test_production_refuses_to_start_without(missing: str, message: str) -> None:
    environ = {name: value for name, value in PRODUCTION.items() if name != missing}
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app(environ)
    # A blank value counts as missing.
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app({**PRODUCTION, missing: "  "})


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "short-secret"])
def test_production_refuses_weak_secret(secret: str) -> None:
    with pytest.raises(ConfigError, match="FLEETAPP_SECRET_KEY must be a random value"):
        load_settings({**PRODUCTION, "FLEETAPP_SECRET_KEY": secret})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FLEETAPP_ENV", "staging", "FLEETAPP_ENV must be one of"),
        ("FLEETAPP_CACHE_TTL", "soon", "FLEETAPP_CACHE_TTL must be an integer, got 'soon'"),
        ("FLEETAPP_CACHE_TTL", "0", "FLEETAPP_CACHE_TTL must be >= 1"),
        ("FLEETAPP_HEARTBEAT_MAX_AGE", "x", "FLEETAPP_HEARTBEAT_MAX_AGE must be a number"),
        ("FLEETAPP_HEARTBEAT_INTERVAL", "0.5", "FLEETAPP_HEARTBEAT_INTERVAL must be >= 1"),
        ("FLEETAPP_SESSION_COOKIE_SECURE", "maybe", "FLEETAPP_SESSION_COOKIE_SECURE must be"),
        ("FLEETAPP_LOG_LEVEL", "chatty", "FLEETAPP_LOG_LEVEL must be a logging level"),
        ("FLEETAPP_TASK_SOFT_TIME_LIMIT", "300", "must be below FLEETAPP_TASK_TIME_LIMIT"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({name: value})


def test_boolean_and_log_level_parsing() -> None:
    settings = load_settings(
        {"FLEETAPP_SESSION_COOKIE_SECURE": "yes", "FLEETAPP_LOG_LEVEL": "debug"}
    )
    assert settings.session_cookie_secure is True
    assert settings.log_level == "DEBUG"
    assert load_settings({"FLEETAPP_SESSION_COOKIE_SECURE": "off"}).session_cookie_secure is False


def test_migration_settings_need_only_database_variables() -> None:
    # No secret key: migrations must still run with just the DB user.
    settings = load_migration_settings(
        {"FLEETAPP_ENV": "production", "FLEETAPP_DATABASE_URL": "mysql://app@db/x"}
    )
    assert (settings.url, settings.connect_retries) == ("mysql://app@db/x", 5)
    ddl = load_migration_settings(
        {"FLEETAPP_ENV": "production", "FLEETAPP_MIGRATION_DATABASE_URL": "mysql://ddl@db/x"}
    )
    assert ddl.url == "mysql://ddl@db/x"
    with pytest.raises(ConfigError, match="FLEETAPP_DATABASE_URL is required"):
        load_migration_settings({"FLEETAPP_ENV": "production"})


def test_every_variable_is_documented_in_the_app_contract() -> None:
    names = set(re.findall(r"FLEETAPP_[A-Z_]+", CONFIG_SOURCE.read_text()))
    documented = set(re.findall(r"FLEETAPP_[A-Z_]+", CONTRACT.read_text()))
    assert names - documented == set()
