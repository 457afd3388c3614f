"""Liveness, readiness failure modes, version and per-request headers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from helpers import free_port
from sqlalchemy import create_engine, text

from fleetapp import migrate
from fleetapp.services import record_heartbeat


def ready(app: Flask) -> tuple[int, dict]:
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def beat(app: Flask, age: float = 0.0) -> None:
    with app.app_context():
        record_heartbeat(time.time() - age)


def test_healthz_answers_without_io(make_app: Callable[..., Flask]) -> None:
    # Everything behind the app is unreachable, liveness must still say ok.
    app = make_app(
        FLEETAPP_DATABASE_URL="sqlite:////nonexistent/dir/x.db",
        FLEETAPP_CACHE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_version_reports_release_and_host(client: FlaskClient) -> None:
    body = client.get("/version").get_json()
    assert body == {"release": "test-release", "host": socket.gethostname()}


def test_readyz_ok_when_everything_answers(app: Flask) -> None:
    beat(app)
    status, body = ready(app)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "database", "migrations", "cache", "broker", "results", "heartbeat"
    }


def test_readyz_database_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_DATABASE_URL="sqlite:////nonexistent/dir/x.db")
    beat(app)
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["database", "migrations"]
    assert "OperationalError" in body["checks"]["database"]
    assert body["error"] == "not ready: database, migrations"


def test_readyz_migrations_behind_head(make_app: Callable[..., Flask], db_path: Path) -> None:
    migrate.downgrade(f"sqlite:///{db_path}", "0001")
    app = make_app()
    beat(app)
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"] == "at 0001, expected 0002"


def test_readyz_schema_ahead_of_the_code(make_app: Callable[..., Flask], db_path: Path) -> None:
    """A newer release migrated the schema: this (older) code stays ready."""
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0003'"))
    engine.dispose()
    app = make_app()
    beat(app)
    status, body = ready(app)
    assert status == 200
    assert body["checks"]["migrations"] == "ahead"


def test_readyz_unmigrated_database(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(FLEETAPP_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    beat(app)
    status, body = ready(app)
    assert status == 503
    assert body["checks"]["migrations"] == "at none, expected 0002"


def test_readyz_cache_redis_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_CACHE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["cache", "heartbeat"]
    assert "ConnectionError" in body["checks"]["cache"]
    assert body["checks"]["heartbeat"] == "unknown: cache unavailable"


def test_readyz_broker_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_BROKER_URL=f"redis://127.0.0.1:{free_port()}/1")
    beat(app)
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["broker"]


def test_readyz_results_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_RESULT_BACKEND=f"redis://127.0.0.1:{free_port()}/2")
    beat(app)
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["results"]


def test_readyz_without_any_heartbeat(app: Flask) -> None:
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["heartbeat"]
    assert "no heartbeat" in body["checks"]["heartbeat"]


def test_readyz_stale_heartbeat(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_HEARTBEAT_MAX_AGE="30")
    beat(app, age=31)
    status, body = ready(app)
    assert status == 503
    assert body["failed"] == ["heartbeat"]
    assert body["checks"]["heartbeat"].startswith("stale: last beat 31s ago")
    beat(app, age=29)
    assert ready(app)[0] == 200


def test_readyz_heartbeat_check_can_be_disabled(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_HEARTBEAT_MAX_AGE="0")
    status, body = ready(app)
    assert status == 200
    assert body["checks"]["heartbeat"] == "disabled"


def test_request_id_is_generated_and_honoured(client: FlaskClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "lb-abc.123"})
    assert echoed.headers["X-Request-ID"] == "lb-abc.123"
    # Header injection attempts are replaced, not echoed.
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id<script>"})
    assert replaced.headers["X-Request-ID"] != "bad id<script>"


def test_timing_and_security_headers(client: FlaskClient) -> None:
    response = client.get("/version")
    assert response.headers["Server-Timing"].startswith("app;dur=")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers


def test_proxy_fix_trusts_one_hop(client: FlaskClient) -> None:
    # nginx terminates TLS and forwards the scheme; HSTS is then sent.
    response = client.get(
        "/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    )
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
