"""Helpers shared by the test modules."""

from __future__ import annotations

import socket
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from fleetapp.auth import hash_password
from fleetapp.extensions import db
from fleetapp.models import User

PASSWORD = "correct horse battery"


def free_port() -> int:
    """A loopback port nothing listens on (used both for servers and for "service down")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_user(app: Flask, email: str, *, admin: bool = False) -> int:
    with app.app_context():
        user = User.create(email=email, password_hash=hash_password(PASSWORD), is_admin=admin)
        db.session.commit()
        return user.id


def login(client: FlaskClient, email: str) -> None:
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()


def paper(number: int, **fields: Any) -> dict[str, Any]:
    """A valid import item; fields override the defaults."""
    item: dict[str, Any] = {
        "title": f"Paper {number} on distributed systems",
        "abstract": f"Abstract {number}.",
        "authors": ["Ada", "Grace"],
        "published_on": f"2026-01-{number % 28 + 1:02d}",
        "doi": f"10.1000/test.{number}",
    }
    item.update(fields)
    return item


def import_batch(client: FlaskClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Import through the API (tasks run eagerly) and return the finished job."""
    response = client.post("/api/papers/import", json={"papers": items})
    assert response.status_code == 202, response.get_json()
    job = client.get(response.headers["Location"]).get_json()["job"]
    return job
