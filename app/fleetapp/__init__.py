"""fleetapp: the Flask Fleet reference app (a small paper tracker)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from fleetapp.assets import init_assets
from fleetapp.config import Settings, load_settings
from fleetapp.errors import register_error_handlers
from fleetapp.extensions import SETTINGS_KEY, db, init_celery, redis_clients
from fleetapp.hooks import RequestIdFilter, register_request_hooks

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [req %(request_id)s] %(message)s"


def configure_logging(level: str) -> None:
    """Log fleetapp.* to stderr (supervisord/journald collect it) with the request id."""
    logger = logging.getLogger("fleetapp")
    logger.setLevel(level)
    if not any(getattr(handler, "fleetapp", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.fleetapp = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
        # Our handler is the only one that knows the request id; don't print twice via root.
        logger.propagate = False


def _flask_config(settings: Settings) -> dict[str, object]:
    return {
        "SECRET_KEY": settings.secret_key,
        "MAX_CONTENT_LENGTH": settings.max_content_length,
        "SESSION_COOKIE_NAME": "fleetapp_session",
        "SESSION_COOKIE_HTTPONLY": True,
        # Lax plus JSON-only POST bodies (a cross-site form cannot send application/json
        # without a CORS preflight) is the CSRF defence of the API.
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.session_cookie_secure,
        "PERMANENT_SESSION_LIFETIME": timedelta(days=14),
        "TESTING": settings.is_testing,
    }


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from FLEETAPP_* variables (os.environ unless a mapping is given)."""
    settings = load_settings(environ)
    configure_logging(settings.log_level)

    app = Flask(__name__)
    app.config.update(_flask_config(settings))
    app.extensions[SETTINGS_KEY] = settings

    db.init_app(app, settings)
    redis_clients.init_app(app, settings)
    init_celery(app, settings)
    init_assets(app)
    register_request_hooks(app)
    register_error_handlers(app)

    # Imported here because the blueprints import the tasks, which need the extensions above.
    from fleetapp.blueprints import api, ops, web
    from fleetapp.cli import register_cli

    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    register_cli(app)

    if settings.proxy_hops:
        # Trust exactly as many X-Forwarded-* hops as there are proxies (nginx on the load
        # balancer): more would let clients spoof their address past the login rate limit.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    return app
