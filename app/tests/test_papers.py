"""Import (all-or-nothing), query, listing cache and stars."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import add_user, free_port, import_batch, login, paper
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import func, select

from fleetapp import tasks
from fleetapp.extensions import db, redis_clients
from fleetapp.models import ImportJob, Paper


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def query(client: FlaskClient, **filters: object) -> dict:
    response = client.post("/api/papers/query", json=filters)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_import_happy_path(app: Flask, admin_client: FlaskClient) -> None:
    response = admin_client.post("/api/papers/import", json={"papers": [paper(1), paper(2)]})
    assert response.status_code == 202
    job = response.get_json()["job"]
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    status = admin_client.get(response.headers["Location"]).get_json()["job"]
    assert status["status"] == "done"
    assert status["task_state"] == "SUCCESS"
    assert status["paper_count"] == 2
    assert status["finished_at"] is not None
    assert count(app, Paper) == 2
    titles = [item["title"] for item in query(admin_client)["items"]]
    assert titles == ["Paper 2 on distributed systems", "Paper 1 on distributed systems"]


def test_import_validation_names_fields_and_writes_nothing(
    app: Flask, admin_client: FlaskClient
) -> None:
    batch = [
        paper(1),
        paper(2, title="", published_on="2026-02-30"),
        paper(3, authors="Ada", doi="not-a-doi", colour="red"),
        "not an object",
    ]
    response = admin_client.post("/api/papers/import", json={"papers": batch})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "papers[1].title": "must be at least 1 characters",
        "papers[1].published_on": "must be a date (YYYY-MM-DD)",
        "papers[2].authors": "must be a list of strings",
        "papers[2].doi": "has an invalid format",
        "papers[2].colour": "unknown field",
        "papers[3]": "must be an object",
    }
    assert count(app, Paper) == 0
    assert count(app, ImportJob) == 0


def test_import_rejects_duplicate_doi_in_batch(admin_client: FlaskClient) -> None:
    response = admin_client.post(
        "/api/papers/import", json={"papers": [paper(1), paper(2, doi="10.1000/TEST.1")]}
    )
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "papers[1].doi": "duplicates papers[0].doi in this batch"
    }


@pytest.mark.parametrize("body", [{}, {"papers": []}, {"papers": "many"}])
def test_import_needs_a_non_empty_list(admin_client: FlaskClient, body: dict) -> None:
    response = admin_client.post("/api/papers/import", json=body)
    assert response.status_code == 422
    assert "papers" in response.get_json()["fields"]


def test_import_oversize_batch_is_413(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_IMPORT_MAX_BATCH="3")
    add_user(app, "admin@example.org", admin=True)
    client = app.test_client()
    login(client, "admin@example.org")
    response = client.post("/api/papers/import", json={"papers": [paper(n) for n in range(4)]})
    assert response.status_code == 413
    assert response.get_json()["fields"] == {"papers": "at most 3 papers per batch"}
    assert count(app, ImportJob) == 0


def test_batch_conflicting_with_stored_papers_is_all_or_nothing(
    app: Flask, admin_client: FlaskClient
) -> None:
    assert import_batch(admin_client, [paper(1)])["status"] == "done"
    job = import_batch(admin_client, [paper(10), paper(11), paper(1)])
    assert job["status"] == "failed"
    assert job["task_state"] == "FAILURE"
    assert job["error"] == "papers already imported (doi): 10.1000/test.1"
    assert count(app, Paper) == 1


def test_import_queue_unavailable_is_503_and_job_failed(
    app: Flask, admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_args: object, **_kwargs: object) -> None:
        raise BrokerError("connection refused")

    monkeypatch.setattr(tasks.import_batch, "apply_async", broker_down)
    response = admin_client.post("/api/papers/import", json={"papers": [paper(1)]})
    assert response.status_code == 503
    with app.app_context():
        job = db.session.scalar(select(ImportJob))
        assert job is not None
        assert (job.status, job.error) == ("failed", "could not be queued: broker unavailable")


def test_job_state_unknown_when_result_backend_down(
    make_app: Callable[..., Flask], env: dict[str, str]
) -> None:
    app = make_app()
    add_user(app, "admin@example.org", admin=True)
    client = app.test_client()
    login(client, "admin@example.org")
    job = import_batch(client, [paper(1)])
    broken = make_app(FLEETAPP_RESULT_BACKEND=f"redis://127.0.0.1:{free_port()}/2")
    other = broken.test_client()
    login(other, "admin@example.org")
    status = other.get(f"/api/jobs/{job['id']}").get_json()["job"]
    assert (status["status"], status["task_state"]) == ("done", "UNKNOWN")


def test_query_filters_and_paging(admin_client: FlaskClient) -> None:
    import_batch(
        admin_client,
        [
            paper(1, title="Raft in practice", published_on="2026-01-05"),
            paper(2, title="Paxos made simple", published_on="2026-02-05"),
            paper(3, title="B-trees", abstract="Raft logs on disk", published_on="2026-03-05"),
            paper(4, title="100% coverage_tricks", published_on="2026-04-05"),
        ],
    )
    assert [p["title"] for p in query(admin_client, q="raft")["items"]] == [
        "B-trees",
        "Raft in practice",
    ]
    ranged = query(admin_client, published_from="2026-02-01", published_to="2026-03-31")
    assert ranged["total"] == 2
    oldest = query(admin_client, sort="oldest", per_page=1, page=2)
    assert (oldest["total"], oldest["page"], oldest["per_page"]) == (4, 2, 1)
    assert [p["title"] for p in oldest["items"]] == ["Paxos made simple"]
    # LIKE wildcards in the search text are literal characters.
    assert query(admin_client, q="0% c")["total"] == 1
    assert query(admin_client, q="_")["total"] == 1
    assert [p["title"] for p in query(admin_client, sort="title")["items"]][0] == (
        "100% coverage_tricks"
    )


def test_query_validation(client: FlaskClient) -> None:
    response = client.post(
        "/api/papers/query",
        json={"keywords": ["ok", "", "Bad/Slash"], "published_from": "yesterday", "q": 7},
    )
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "q": "must be a string",
        "keywords[1]": "must be a non-empty string",
        "keywords[2]": "has an invalid format",
        "published_from": "must be a date (YYYY-MM-DD)",
    }


def test_query_unknown_keyword_is_422(user_client: FlaskClient) -> None:
    assert user_client.post("/api/keywords/subscribe", json={"keyword": "raft"}).status_code == 201
    response = user_client.post("/api/papers/query", json={"keywords": ["raft", "zookeeper"]})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"keywords[1]": "unknown keyword"}


def test_listing_is_cached_and_invalidated_by_import(admin_client: FlaskClient) -> None:
    import_batch(admin_client, [paper(1)])
    first = admin_client.get("/api/papers?per_page=5")
    second = admin_client.get("/api/papers?per_page=5")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.get_json() == second.get_json()
    # Different parameters are a different entry.
    assert admin_client.get("/api/papers?per_page=6").headers["X-Cache"] == "MISS"
    # POST queries share the cache with the listing when the filters are the same.
    assert admin_client.post("/api/papers/query", json={"per_page": 5}).headers["X-Cache"] == "HIT"

    import_batch(admin_client, [paper(2)])
    after = admin_client.get("/api/papers?per_page=5")
    assert after.headers["X-Cache"] == "MISS"
    assert after.get_json()["total"] == 2


def test_cache_entries_expire(app: Flask, client: FlaskClient) -> None:
    client.get("/api/papers")
    with app.app_context():
        keys = redis_clients.cache.keys("fleetapp:cache:papers:v0:*")
        assert len(keys) == 1
        assert 0 < redis_clients.cache.ttl(keys[0]) <= 60


def test_listing_validates_query_string(client: FlaskClient) -> None:
    response = client.get("/api/papers?page=-1&per_page=x&limit=3")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"limit": "unknown field"}
    response = client.get("/api/papers?page=0&per_page=x")
    assert response.get_json()["fields"] == {
        "page": "must be between 1 and 10000",
        "per_page": "must be an integer",
    }


def test_listing_survives_cache_outage(make_app: Callable[..., Flask]) -> None:
    app = make_app(FLEETAPP_CACHE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/api/papers")
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "MISS"
    assert response.get_json()["total"] == 0


def test_star_unstar_and_listing(admin_client: FlaskClient, client: FlaskClient) -> None:
    import_batch(admin_client, [paper(1), paper(2)])
    first_id = query(admin_client, sort="oldest")["items"][0]["id"]
    assert admin_client.post(f"/api/papers/{first_id}/star").get_json() == {
        "paper_id": first_id,
        "starred": True,
    }
    # Starring twice is harmless.
    assert admin_client.post(f"/api/papers/{first_id}/star").status_code == 200
    assert [p["id"] for p in admin_client.get("/api/stars").get_json()["items"]] == [first_id]
    assert admin_client.get(f"/api/papers/{first_id}").get_json()["starred"] is True
    assert client.get(f"/api/papers/{first_id}").get_json()["starred"] is False
    assert admin_client.post(f"/api/papers/{first_id}/unstar").get_json()["starred"] is False
    assert admin_client.get("/api/stars").get_json()["items"] == []
    assert admin_client.post("/api/papers/999/star").status_code == 404
    assert client.post(f"/api/papers/{first_id}/star").status_code == 401
