"""The entry points the kit configures: fleetapp.wsgi:app and fleetapp.celery_app:celery."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from fleetapp.extensions import wait_for_database

APP_DIR = Path(__file__).resolve().parents[1]


def test_wsgi_and_celery_modules_build_from_the_environment(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wsgi = importlib.reload(importlib.import_module("fleetapp.wsgi"))
    celery_app = importlib.reload(importlib.import_module("fleetapp.celery_app"))
    assert isinstance(wsgi.app, Flask)
    assert wsgi.app.test_client().get("/version").get_json()["release"] == "test-release"
    assert isinstance(celery_app.celery, Celery)
    assert celery_app.celery is celery_app.flask_app.extensions["celery"]
    assert "fleetapp.import_batch" in celery_app.celery.tasks


@pytest.mark.parametrize("module", ["fleetapp.wsgi", "fleetapp.celery_app"])
def test_production_entry_points_refuse_to_start_without_secret(module: str) -> None:
    environ = {
        key: value for key, value in os.environ.items() if not key.startswith("FLEETAPP_")
    }
    environ.update({"FLEETAPP_ENV": "production", "FLEETAPP_DATABASE_URL": "sqlite://"})
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=APP_DIR,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "FLEETAPP_SECRET_KEY is required when FLEETAPP_ENV=production" in result.stderr


def test_wait_for_database_retries_then_gives_up(tmp_path: Path) -> None:
    missing = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    with pytest.raises(OperationalError):
        wait_for_database(missing, attempts=3, first_delay=0.01)
    wait_for_database(create_engine(f"sqlite:///{tmp_path / 'ok.db'}"), attempts=1)
