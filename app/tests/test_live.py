"""Against a real MariaDB and Redis (the sandbox hosts). Deselected by `make test`.

FLEETAPP_TEST_DATABASE_URL: a dedicated, throw-away database, e.g.
    mysql+pymysql://fleet_test:pw@10.0.0.5/fleetapp_test?charset=utf8mb4
FLEETAPP_TEST_REDIS_URL: the Redis server without a database number, e.g.
    redis://:password@10.0.0.6:6379 (databases 13-15 are used and flushed).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from helpers import PASSWORD, login, paper
from sqlalchemy import func, select

from fleetapp import create_app, migrate
from fleetapp.auth import hash_password
from fleetapp.extensions import create_db_engine, db
from fleetapp.models import Base, Paper, User
from fleetapp.services import record_heartbeat

pytestmark = pytest.mark.live


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"live tests need {name}; see the docstring of {__name__}", pytrace=False)
    return value


@pytest.fixture(scope="module")
def live_url() -> str:
    url = _required("FLEETAPP_TEST_DATABASE_URL")
    migrate.upgrade(url)
    return url


@pytest.fixture()
def live_app(live_url: str) -> Iterator[Flask]:
    base = _required("FLEETAPP_TEST_REDIS_URL").rstrip("/")
    for number in (13, 14, 15):
        redis.Redis.from_url(f"{base}/{number}").flushdb()
    yield create_app(
        {
            "FLEETAPP_ENV": "testing",
            "FLEETAPP_DATABASE_URL": live_url,
            "FLEETAPP_CACHE_REDIS_URL": f"{base}/13",
            "FLEETAPP_BROKER_URL": f"{base}/14",
            "FLEETAPP_RESULT_BACKEND": f"{base}/15",
            "FLEETAPP_RELEASE_ID": "live-test",
        }
    )


def test_migrations_are_at_head_and_match_the_models(live_url: str) -> None:
    engine = create_db_engine(live_url)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_import_query_and_readiness_on_real_services(live_app: Flask) -> None:
    token = uuid.uuid4().hex[:12]
    email = f"live-{token}@example.org"
    with live_app.app_context():
        db.session.add(User(email=email, password_hash=hash_password(PASSWORD), is_admin=True))
        db.session.commit()
        record_heartbeat(time.time())
    client = live_app.test_client()
    login(client, email)

    batch = [
        paper(n, title=f"Live {token} ünïcödé {n}", doi=f"10.9999/{token}.{n}") for n in (1, 2)
    ]
    response = client.post("/api/papers/import", json={"papers": batch})
    assert response.status_code == 202, response.get_json()
    job = client.get(response.headers["Location"]).get_json()["job"]
    assert (job["status"], job["task_state"]) == ("done", "SUCCESS")

    first = client.post("/api/papers/query", json={"q": token})
    second = client.post("/api/papers/query", json={"q": token})
    assert first.get_json()["total"] == 2
    assert first.get_json()["items"][0]["title"] == f"Live {token} ünïcödé 2"
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")

    # A batch that collides with a stored DOI leaves nothing behind.
    clash = [paper(3, doi=f"10.9999/{token}.3"), paper(4, doi=f"10.9999/{token}.1")]
    failed = client.post("/api/papers/import", json={"papers": clash})
    assert client.get(failed.headers["Location"]).get_json()["job"]["status"] == "failed"
    with live_app.app_context():
        stored = db.session.scalar(
            select(func.count()).select_from(Paper).where(Paper.doi.like(f"10.9999/{token}.%"))
        )
        assert stored == 2

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()

