"""`flask seed-demo`."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from fleetapp.extensions import db
from fleetapp.models import Keyword, Paper, PaperKeyword, User


def test_seed_demo_is_repeatable(app: Flask) -> None:
    runner = app.test_cli_runner()
    args = ["seed-demo", "--admin-email", "Boss@example.org"]
    first = runner.invoke(args=args, env={"FLEETAPP_SEED_ADMIN_PASSWORD": "demo-password"})
    assert first.exit_code == 0, first.output
    assert "40 papers added" in first.output
    second = runner.invoke(args=[*args, "--admin-password", "demo-password"])
    assert "0 papers added" in second.output
    with app.app_context():
        admin = db.session.scalar(select(User))
        assert (admin.email, admin.is_admin) == ("boss@example.org", True)
        assert db.session.scalar(select(func.count()).select_from(Paper)) == 40
        assert db.session.scalar(select(func.count()).select_from(Keyword)) == 5
        # Every demo paper mentions one demo keyword and is linked to it.
        assert db.session.scalar(select(func.count()).select_from(PaperKeyword)) == 40
    client = app.test_client()
    login = client.post(
        "/api/auth/login", json={"email": "boss@example.org", "password": "demo-password"}
    )
    assert login.status_code == 200


def test_seed_demo_rejects_short_password(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["seed-demo", "--admin-password", "short"])
    assert result.exit_code == 2
    assert "must be at least 8 characters" in result.output
