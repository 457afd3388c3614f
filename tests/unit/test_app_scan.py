"""fleet.app_scan: the contract guessed from an app's files, each guess naming its evidence."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fleet import app_scan, inventory

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEFAULTS = inventory.role_defaults()


def _scan(path: Path, **kwargs) -> app_scan.Scan:
    return app_scan.scan(path, defaults=DEFAULTS, **kwargs)


def _app(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _guess(scan: app_scan.Scan, name: str) -> tuple[object, str]:
    guess = scan.guesses[name]
    return guess.value, guess.why


def test_notes_module_level_app_with_flask_migrate_and_rq():
    scan = _scan(EXAMPLES / "notes")
    assert _guess(scan, "app_name")[0] == "notes"
    value, why = _guess(scan, "app_wsgi")
    assert value == "app:app" and "app.py" in why and "Flask(" in why
    value, why = _guess(scan, "app_requirements")
    assert value == "requirements.txt" and "pinned" in why
    value, why = _guess(scan, "app_migrate_command")
    assert value == "flask --app app:app db upgrade"
    assert "migrations/alembic.ini" in why and "flask_migrate" in why
    assert scan.value("app_migrate_status_command") == "flask --app app:app db current"
    assert scan.value("app_migrate_once") is False
    assert scan.value("app_celery") == ""
    value, why = _guess(scan, "app_programs")
    assert value == [{"name": "rq-worker", "group": "workers", "command": "rq worker"}]
    assert "from rq" in why
    value, why = _guess(scan, "app_extra_env")
    assert value["RQ_REDIS_URL"] == "{{ app_broker_url }}"
    # The app enqueues on REDIS_URL: the worker must read the same Redis.
    assert value["REDIS_URL"] == value["RQ_REDIS_URL"] and "REDIS_URL" in why
    assert _guess(scan, "app_static_dir") == ("static", "static/ next to app.py")
    value, why = _guess(scan, "app_health_path")
    assert value == "/health" and "app.py" in why
    assert scan.value("app_ready_path") == "/health"
    assert scan.value("app_version_path") == ""
    value, why = _guess(scan, "app_env_preset")
    assert value == "common" and "DATABASE_URL" in why and "REDIS_URL" in why
    assert scan.value("app_shared_paths") == []
    assert scan.unmapped == []
    assert any("SQLite" in n and "app.py" in n for n in scan.notices)


def test_hello_factory_with_prefixed_env_and_idempotent_init_db():
    scan = _scan(EXAMPLES / "hello")
    value, why = _guess(scan, "app_wsgi")
    assert value == "hello:create_app()" and "hello/__init__.py" in why and "create_app" in why
    assert scan.value("app_requirements") == "requirements.txt"
    value, why = _guess(scan, "app_migrate_command")
    assert value == "flask --app hello init-db" and "hello/db.py" in why and "init-db" in why
    assert scan.value("app_migrate_status_command") == ""
    value, why = _guess(scan, "app_migrate_once")
    assert value is False and "create_all" in why
    assert scan.value("app_celery") == "" and scan.value("app_programs") == []
    assert scan.value("app_static_dir") == "hello/static"
    for name in ("app_health_path", "app_ready_path"):
        value, why = _guess(scan, name)
        assert value == "/" and why.startswith(app_scan.UNSURE)
    value, why = _guess(scan, "app_env_preset")
    assert value == "flask" and "from_prefixed_env" in why and "FLASK_DATABASE_URL" in why
    value, why = _guess(scan, "app_shared_paths")
    assert value == ["instance"] and "instance" in why
    assert scan.unmapped == []
    assert any("SQLite" in n for n in scan.notices)


def test_tasks_celery_app_with_pyproject_pins_and_packaged_migrations():
    scan = _scan(EXAMPLES / "tasks")
    assert scan.value("app_name") == "tasks"
    value, why = _guess(scan, "app_requirements")
    assert value == "pyproject.toml" and "pinned" in why
    assert scan.value("app_wsgi") == "taskboard:create_app()"
    value, why = _guess(scan, "app_migrate_command")
    # The package hands Flask-Migrate its own directory, so no --directory is needed.
    assert value == "flask --app taskboard db upgrade"
    assert "taskboard/migrations" in why and "directory=" in why
    assert scan.value("app_migrate_status_command") == "flask --app taskboard db current"
    value, why = _guess(scan, "app_celery")
    assert value == "taskboard.celery_app:celery" and "taskboard/celery_app.py" in why
    value, why = _guess(scan, "app_programs")
    assert value is None and "beat_schedule" in why  # the default worker and beat
    assert scan.value("app_static_dir") == "taskboard/static"
    value, why = _guess(scan, "app_health_path")
    assert value == "/healthz" and "taskboard/views.py" in why
    assert scan.value("app_ready_path") == "/healthz"
    value, why = _guess(scan, "app_env_preset")
    assert value == "common" and "CELERY_BROKER_URL" in why and "SECRET_KEY" in why
    assert scan.notices == [] and scan.unmapped == []


def test_the_reference_app_is_recognised_too():
    scan = _scan(Path(__file__).resolve().parents[2] / "app")
    assert scan.value("app_wsgi") == "fleetapp.wsgi:app"
    assert scan.value("app_migrate_command") == "alembic upgrade head"
    assert scan.value("app_celery") == "fleetapp.celery_app:celery"
    assert (scan.value("app_health_path"), scan.value("app_ready_path"),
            scan.value("app_version_path")) == ("/healthz", "/readyz", "/version")
    assert scan.value("app_env_preset") == "fleetapp"


def test_no_python_app_is_refused(tmp_path):
    with pytest.raises(app_scan.ScanError, match="no Python app"):
        _scan(_app(tmp_path, {"README.md": "hello\n", "tests/test_x.py": "x = 1\n"}))
    with pytest.raises(app_scan.ScanError, match="no `app = Flask"):
        _scan(_app(tmp_path, {"tool.py": "print('not a web app')\n"}))


def test_plain_alembic_and_a_flaskenv_target(tmp_path):
    app = _app(tmp_path / "Shop-Front", {
        ".flaskenv": "FLASK_APP=shop.web\n",
        "alembic.ini": "[alembic]\nscript_location = alembic\n",
        "shop/__init__.py": "",
        "shop/web.py": """\
            import os
            from flask import Flask
            server = Flask(__name__)
            server.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
            server.config["S3_BUCKET"] = os.getenv("S3_BUCKET")
            @server.route("/readyz")
            def ready():
                return "ok"
            """,
        "requirements/prod.txt": "Flask==3.1.3\n",
        "requirements/dev.txt": "pytest==9.0.0\n",
    })
    scan = _scan(app)
    assert scan.value("app_name") == "shop_front"
    value, why = _guess(scan, "app_wsgi")
    assert value == "shop.web:server" and ".flaskenv" in why
    assert _guess(scan, "app_migrate_command") == ("alembic upgrade head",
                                                   "alembic.ini in the app directory")
    assert scan.value("app_migrate_status_command") == "alembic current"
    assert scan.value("app_requirements") == "requirements/prod.txt"
    assert (scan.value("app_health_path"), scan.value("app_ready_path")) == ("/readyz",) * 2
    assert scan.value("app_static_dir") == ""  # no shop/static/
    assert scan.unmapped == ["S3_BUCKET"]


def test_init_db_that_drops_tables_runs_once(tmp_path):
    app = _app(tmp_path, {
        "app.py": """\
            import click
            from flask import Flask
            from flask_sqlalchemy import SQLAlchemy
            app = Flask(__name__)
            db = SQLAlchemy(app)
            @app.cli.command("init-db")
            def init_db():
                db.drop_all()
                db.create_all()
            """,
        "requirements.txt": "Flask==3.1.3\nFlask-SQLAlchemy==3.1.1\n",
    })
    scan = _scan(app)
    assert scan.value("app_migrate_command") == "flask --app app:app init-db"
    value, why = _guess(scan, "app_migrate_once")
    assert value is True and "drop" in why


def test_tutorial_schema_sql_with_drop_table_runs_once(tmp_path):
    app = _app(tmp_path, {
        "flaskr/__init__.py": """\
            from flask import Flask
            def create_app():
                app = Flask(__name__)
                from . import db
                db.init_app(app)
                return app
            """,
        "flaskr/db.py": """\
            import click
            @click.command("init-db")
            def init_db_command():
                run_script("schema.sql")
            """,
        "flaskr/schema.sql": "DROP TABLE IF EXISTS user;\nCREATE TABLE user (id INTEGER);\n",
    })
    scan = _scan(app)
    assert scan.value("app_migrate_command") == "flask --app flaskr init-db"
    assert scan.value("app_migrate_once") is True
    value, why = _guess(scan, "app_requirements")
    assert why.startswith(app_scan.UNSURE)  # no requirements at all


def test_an_rq_app_found_by_its_requirements_and_a_celery_app_without_beat(tmp_path):
    rq_app = _app(tmp_path / "rq", {
        "wsgi.py": "from flask import Flask\napplication = Flask(__name__)\n",
        "requirements.txt": "Flask==3.1.3\nrq==3.0.0\n",
    })
    scan = _scan(rq_app)
    assert scan.value("app_wsgi") == "wsgi:application"
    assert scan.value("app_programs")[0]["command"] == "rq worker"
    assert scan.value("app_extra_env") == {"RQ_REDIS_URL": "{{ app_broker_url }}"}
    assert "rq in the requirements" in scan.guesses["app_programs"].why
    celery_app = _app(tmp_path / "cel", {
        "src/jobs/__init__.py": "from flask import Flask\n\ndef create_app():\n"
                                "    return Flask(__name__)\n",
        "src/jobs/worker.py": "from celery import Celery\nqueue = Celery('jobs')\n",
    })
    scan = _scan(celery_app)
    assert scan.value("app_wsgi") == "jobs:create_app()"  # src/ layout
    assert scan.value("app_celery") == "jobs.worker:queue"
    value, why = _guess(scan, "app_programs")
    assert value == app_scan.CELERY_WORKER_ONLY and "no beat_schedule" in why


def test_sqlite_default_and_unknown_configuration_are_said(tmp_path):
    app = _app(tmp_path, {
        "app.py": """\
            from flask import Flask
            app = Flask(__name__, static_folder="public")
            app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///local.db"
            """,
        "public/site.css": "body {}\n",
        "requirements.txt": "Flask>=3\n",
    })
    scan = _scan(app)
    assert any("SQLite" in n and "more than one host" in n for n in scan.notices)
    value, why = _guess(scan, "app_env_preset")
    assert value == "common" and why.startswith(app_scan.UNSURE)
    assert scan.value("app_static_dir") == "public"
    value, why = _guess(scan, "app_requirements")
    assert value == "requirements.txt" and why.startswith(app_scan.UNSURE)


@pytest.mark.parametrize(("raw", "name"), [("My App", "my_app"), ("2048-game", "game"),
                                           ("notes", "notes")])
def test_app_names_are_made_valid(tmp_path, raw, name):
    assert app_scan.app_name(tmp_path, raw) == name


def test_an_unusable_name_is_refused(tmp_path):
    with pytest.raises(app_scan.ScanError, match="--name"):
        app_scan.app_name(tmp_path, "___")
