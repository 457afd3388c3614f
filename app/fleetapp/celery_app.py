"""Celery entry point: `celery -A fleetapp.celery_app:celery worker` (and `... beat`).

The Celery app is created by the Flask factory, so worker and beat read the same FLEETAPP_*
environment as gunicorn and every task runs inside the Flask app context.
"""

from celery import Celery

from fleetapp import create_app

flask_app = create_app()
celery: Celery = flask_app.extensions["celery"]
