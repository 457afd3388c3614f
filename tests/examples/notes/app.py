import os

from flask import Flask, redirect, render_template, request, url_for
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq import Queue

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "dev")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///notes.db")
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.Text, nullable=False)
    word_count = db.Column(db.Integer, nullable=True)
    created_at = db.Column(db.DateTime, server_default=db.func.now())


def get_queue():
    return Queue(connection=Redis.from_url(REDIS_URL))


@app.route("/")
def index():
    notes = Note.query.order_by(Note.id.desc()).limit(50).all()
    return render_template("index.html", notes=notes)


@app.route("/notes", methods=["POST"])
def add_note():
    body = request.form.get("body", "").strip()
    if not body:
        return "a note needs some text", 400
    note = Note(body=body)
    db.session.add(note)
    db.session.commit()
    # By name, so this module does not import tasks.py (which imports this one).
    get_queue().enqueue("tasks.count_words", note.id)
    return redirect(url_for("index"))


@app.route("/health")
def health():
    return "ok"
