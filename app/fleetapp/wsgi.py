"""WSGI entry point for gunicorn: `gunicorn fleetapp.wsgi:app`."""

from fleetapp import create_app

app = create_app()
