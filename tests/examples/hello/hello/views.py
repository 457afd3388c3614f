from flask import Blueprint, render_template

from .db import bump

bp = Blueprint("views", __name__)


@bp.route("/")
def index():
    return render_template("index.html", visits=bump("visits"))
