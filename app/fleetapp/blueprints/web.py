"""The single page. The route only renders the template; all data comes from the JSON API."""

from __future__ import annotations

from flask import Blueprint, render_template

from fleetapp.extensions import get_settings

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", release=get_settings().release_id)
