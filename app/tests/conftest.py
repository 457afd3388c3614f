"""Fixtures: a real throw-away redis-server, a migrated SQLite template, app and clients."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from helpers import add_user, free_port, login

from fleetapp import create_app, migrate

REDIS_SERVER = os.environ.get("FLEETAPP_TEST_REDIS_SERVER", "/usr/bin/redis-server")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port; its base URL (no DB number)."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.fail(
            f"redis-server not found at {REDIS_SERVER}: install it (apt-get install -y "
            "redis-server) or point FLEETAPP_TEST_REDIS_SERVER at the binary",
            pytrace=False,
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"redis-server did not start on port {port}", pytrace=False)
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "fleetapp.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture()
def db_path(tmp_path: Path, template_db: Path) -> Path:
    path = tmp_path / "fleetapp.db"
    shutil.copyfile(template_db, path)
    return path


@pytest.fixture()
def env(db_path: Path, redis_server: str, tmp_path: Path) -> dict[str, str]:
    redis.Redis.from_url(redis_server).flushall()
    return {
        "FLEETAPP_ENV": "testing",
        "FLEETAPP_DATABASE_URL": f"sqlite:///{db_path}",
        "FLEETAPP_CACHE_REDIS_URL": f"{redis_server}/0",
        "FLEETAPP_BROKER_URL": f"{redis_server}/1",
        "FLEETAPP_RESULT_BACKEND": f"{redis_server}/2",
        "FLEETAPP_RELEASE_ID": "test-release",
        "FLEETAPP_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "FLEETAPP_LOGIN_RATE_LIMIT": "5",
    }


@pytest.fixture()
def make_app(env: dict[str, str]) -> Callable[..., Flask]:
    """Build an app from the test environment plus overrides (FLEETAPP_* names)."""

    def build(**overrides: str) -> Flask:
        return create_app({**env, **overrides})

    return build


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def user_client(app: Flask) -> FlaskClient:
    add_user(app, "reader@example.org")
    client = app.test_client()
    login(client, "reader@example.org")
    return client


@pytest.fixture()
def admin_client(app: Flask) -> FlaskClient:
    add_user(app, "admin@example.org", admin=True)
    client = app.test_client()
    login(client, "admin@example.org")
    return client
