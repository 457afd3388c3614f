from flask import Blueprint, abort, redirect, render_template, request, url_for

from .models import Heartbeat, Job, db
from .tasks import process_job

bp = Blueprint("board", __name__)


@bp.get("/")
def index():
    jobs = db.session.scalars(db.select(Job).order_by(Job.id.desc()).limit(20)).all()
    beat = db.session.get(Heartbeat, "beat")
    return render_template("index.html", jobs=jobs, beat=beat)


@bp.post("/jobs")
def create_job():
    title = request.form.get("title", "").strip()
    if not title or len(title) > 200:
        abort(400)
    job = Job(title=title)
    db.session.add(job)
    db.session.commit()
    process_job.delay(job.id)
    return redirect(url_for("board.index"))


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
