"""Alembic revisions: models and migrations agree, upgrades keep data, the CLI paths work."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import create_engine, inspect, text

from fleetapp import migrate
from fleetapp.models import Base

APP_DIR = Path(__file__).resolve().parents[1]


def test_models_match_migrations(template_db: Path) -> None:
    engine = create_engine(f"sqlite:///{template_db}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_upgrade_from_0001_keeps_rows_and_downgrade_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, password_hash, is_admin, created_at) "
                "VALUES ('a@example.org', 'x', 0, '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO papers (title, abstract, authors, published_on, created_at) "
                "VALUES ('T', '', '[]', '2026-01-01', '2026-01-01 00:00:00')"
            )
        )
    migrate.upgrade(url, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT title, doi FROM papers")).one() == ("T", None)
        assert "last_login_at" in {c["name"] for c in inspect(connection).get_columns("users")}
    migrate.downgrade(url, "0001")
    with engine.connect() as connection:
        assert "doi" not in {c["name"] for c in inspect(connection).get_columns("papers")}
        assert connection.execute(text("SELECT count(*) FROM papers")).scalar() == 1
    migrate.downgrade(url, "base")
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == ["alembic_version"]
    engine.dispose()


def test_alembic_command_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    app_db = tmp_path / "app.db"
    ddl_db = tmp_path / "ddl.db"
    env = {
        **os.environ,
        "FLEETAPP_DATABASE_URL": f"sqlite:///{app_db}",
        # The migration URL wins, so DDL runs with the migration user in production.
        "FLEETAPP_MIGRATION_DATABASE_URL": f"sqlite:///{ddl_db}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Running upgrade 0001 -> 0002" in result.stderr
    assert not app_db.exists()
    engine = create_engine(f"sqlite:///{ddl_db}")
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions()
    engine.dispose()


def test_flask_db_commands(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    app: Flask = make_app(FLEETAPP_DATABASE_URL=url)
    runner = app.test_cli_runner()
    behind = runner.invoke(args=["db", "current"])
    assert behind.exit_code == 1
    assert "current: none" in behind.output
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    current = runner.invoke(args=["db", "current"])
    assert current.exit_code == 0, current.output
    assert "current: 0002" in current.output
    down = runner.invoke(args=["db", "downgrade", "0001"])
    assert down.exit_code == 0
    assert "current: 0001" in runner.invoke(args=["db", "current"]).output
