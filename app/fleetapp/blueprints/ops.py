"""Operational endpoints for load balancers and the deploy kit."""

from __future__ import annotations

import socket

from flask import Blueprint, Response, jsonify

from fleetapp.extensions import get_settings
from fleetapp.readiness import failed, run_checks

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    # Liveness only: no I/O, so a slow database never gets a healthy process restarted.
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = run_checks()
    failures = failed(checks)
    if failures:
        body = {
            "status": "unavailable",
            "error": f"not ready: {', '.join(failures)}",
            "failed": failures,
            "checks": checks,
        }
        return jsonify(body), 503
    return jsonify({"status": "ready", "checks": checks}), 200


@bp.get("/version")
def version() -> Response:
    return jsonify({"release": get_settings().release_id, "host": socket.gethostname()})
