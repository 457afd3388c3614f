"""Taskboard: queue jobs from a web page, run them on Celery workers."""

import os

from flask import Flask

from .models import db, migrate

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def create_app():
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_recycle": 3600},
    )
    db.init_app(app)
    # The scripts ship inside the package, so `flask db upgrade` finds them from any directory.
    migrate.init_app(app, db, directory=MIGRATIONS)

    from .views import bp

    app.register_blueprint(bp)
    return app
