from datetime import UTC, datetime

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def utcnow():
    return datetime.now(UTC).replace(tzinfo=None)


class Job(db.Model):
    __tablename__ = "jobs"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    status = db.Column(db.String(20), nullable=False, default="queued")
    result = db.Column(db.String(200))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class Heartbeat(db.Model):
    __tablename__ = "heartbeats"

    name = db.Column(db.String(50), primary_key=True)
    beat_at = db.Column(db.DateTime, nullable=False)
