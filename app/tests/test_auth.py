"""Registration, login, logout, whoami and the Redis-backed login rate limit."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from helpers import PASSWORD, add_user, free_port
from sqlalchemy import select

from fleetapp.extensions import db
from fleetapp.models import User


def test_register_logs_in_and_hashes_password(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/register", json={"email": "New@Example.org", "password": "long enough"}
    )
    assert response.status_code == 201
    assert response.get_json()["user"] == {"id": 1, "email": "new@example.org", "is_admin": False}
    assert client.get("/api/auth/whoami").get_json()["user"]["email"] == "new@example.org"
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash))
    assert stored is not None and "long enough" not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_duplicate_registration_is_409_naming_email(client: FlaskClient) -> None:
    body = {"email": "dup@example.org", "password": "long enough"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    response = client.post("/api/auth/register", json={**body, "email": "DUP@example.org"})
    assert response.status_code == 409
    assert response.get_json()["fields"] == {"email": "is already registered"}


def test_registration_validates_fields(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": "short", "x": 1}
    )
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "email": "has an invalid format",
        "password": "must be at least 8 characters",
        "x": "unknown field",
    }
    wrong_types = client.post("/api/auth/register", json={"email": 5})
    assert wrong_types.get_json()["fields"] == {
        "email": "must be a string",
        "password": "is required",
    }


def test_login_wrong_password_and_unknown_email_look_the_same(
    app: Flask, client: FlaskClient
) -> None:
    add_user(app, "known@example.org")
    wrong = client.post(
        "/api/auth/login", json={"email": "known@example.org", "password": "nope nope"}
    )
    unknown = client.post(
        "/api/auth/login", json={"email": "ghost@example.org", "password": "nope nope"}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.get_json()["fields"] == {"password": "wrong e-mail or password"}
    assert client.get("/api/auth/whoami").status_code == 401


def test_login_records_last_login_and_logout_ends_session(
    app: Flask, client: FlaskClient
) -> None:
    add_user(app, "me@example.org")
    credentials = {"email": "me@example.org", "password": PASSWORD}
    response = client.post("/api/auth/login", json=credentials)
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(User.last_login_at)) is not None
    assert client.get("/api/auth/whoami").status_code == 200
    assert client.post("/api/auth/logout").status_code == 204
    response = client.get("/api/auth/whoami")
    assert response.status_code == 401
    assert response.get_json()["error"] == "authentication required"


def test_login_rate_limit_returns_429_per_client(app: Flask, client: FlaskClient) -> None:
    add_user(app, "me@example.org")
    attempt = {"email": "me@example.org", "password": "wrong password"}
    headers = {"X-Forwarded-For": "198.51.100.7"}
    codes = [client.post("/api/auth/login", json=attempt, headers=headers).status_code
             for _ in range(5)]
    assert codes == [401] * 5
    # Even the right password is refused once the window's budget is spent.
    limited = client.post(
        "/api/auth/login", json={**attempt, "password": PASSWORD}, headers=headers
    )
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "too many login attempts, try again later"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another client address (one proxy hop trusted) has its own budget.
    other = client.post(
        "/api/auth/login",
        json={**attempt, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert other.status_code == 200


def test_rate_limiter_fails_open_without_redis(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        FLEETAPP_CACHE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", FLEETAPP_LOGIN_RATE_LIMIT="1"
    )
    add_user(app, "me@example.org")
    client = app.test_client()
    body = {"email": "me@example.org", "password": PASSWORD}
    assert [client.post("/api/auth/login", json=body).status_code for _ in range(3)] == [200] * 3


def test_session_is_null_when_anonymous_and_the_user_once_signed_in(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/api/auth/session")
    assert response.status_code == 200
    assert response.get_json() == {"user": None}
    add_user(app, "me@example.org")
    client.post("/api/auth/login", json={"email": "me@example.org", "password": PASSWORD})
    assert client.get("/api/auth/session").get_json()["user"]["email"] == "me@example.org"
    client.post("/api/auth/logout")
    assert client.get("/api/auth/session").get_json() == {"user": None}
