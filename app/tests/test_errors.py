"""Every error under /api is JSON with the right status; other paths keep HTML pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import add_user, login, paper
from werkzeug.test import TestResponse

from fleetapp import services


def assert_json_error(response: TestResponse, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "fields", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_400_malformed_json(client: FlaskClient) -> None:
    response = client.post(
        "/api/papers/query", data="{not json", content_type="application/json"
    )
    assert assert_json_error(response, 400)["error"] == "malformed JSON body"


def test_400_not_json(client: FlaskClient) -> None:
    response = client.post("/api/papers/query", data="q=x")
    assert "Content-Type: application/json" in assert_json_error(response, 400)["error"]


def test_400_json_that_is_not_an_object(client: FlaskClient) -> None:
    response = client.post("/api/papers/query", json=[1, 2])
    assert assert_json_error(response, 400)["error"] == "the JSON body must be an object"


def test_401_json(client: FlaskClient) -> None:
    assert_json_error(client.get("/api/stars"), 401)


def test_401_import_needs_login(client: FlaskClient) -> None:
    response = client.post("/api/papers/import", json={"papers": [paper(1)]})
    assert assert_json_error(response, 401)["error"] == "authentication required"


def test_403_import_needs_admin(user_client: FlaskClient) -> None:
    response = user_client.post("/api/papers/import", json={"papers": [paper(1)]})
    assert assert_json_error(response, 403)["error"] == "administrator rights required"


def test_403_job_of_another_user(app: Flask, admin_client: FlaskClient) -> None:
    job_id = admin_client.post("/api/papers/import", json={"papers": [paper(1)]}).get_json()[
        "job"
    ]["id"]
    add_user(app, "other@example.org")
    other = app.test_client()
    login(other, "other@example.org")
    assert_json_error(other.get(f"/api/jobs/{job_id}"), 403)


def test_404_unknown_route_and_missing_objects(user_client: FlaskClient) -> None:
    assert_json_error(user_client.get("/api/nothing-here"), 404)
    assert assert_json_error(user_client.get("/api/papers/999"), 404)["error"] == "paper not found"
    assert_json_error(user_client.get("/api/jobs/999"), 404)


def test_405_keeps_allow_header(client: FlaskClient) -> None:
    response = client.get("/api/papers/query")
    assert_json_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_413_body_too_large(make_app: Callable[..., Flask]) -> None:
    client = make_app(FLEETAPP_MAX_CONTENT_LENGTH="2048").test_client()
    response = client.post("/api/papers/query", json={"q": "x" * 4096})
    assert_json_error(response, 413)


def test_422_names_fields(client: FlaskClient) -> None:
    response = client.post(
        "/api/papers/query", json={"page": 0, "per_page": "ten", "sort": "random", "extra": 1}
    )
    assert assert_json_error(response, 422)["fields"] == {
        "page": "must be between 1 and 10000",
        "per_page": "must be an integer",
        "sort": "must be one of newest, oldest, title",
        "extra": "unknown field",
    }


def test_500_is_json_without_internals(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_filters: dict) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "query_papers", explode)
    response = client.post("/api/papers/query", json={})
    body = assert_json_error(response, 500)
    assert body["error"] == "internal server error"
    assert "boom" not in response.get_data(as_text=True)


def test_non_api_errors_stay_html(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_api_errors_are_never_cached(client: FlaskClient) -> None:
    assert client.get("/api/nothing-here").headers["Cache-Control"] == "no-store"
