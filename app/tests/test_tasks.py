"""Celery tasks: configuration, idempotency, all-or-nothing imports, digests, housekeeping."""

from __future__ import annotations

import time
from datetime import timedelta

from celery.signals import worker_process_init
from flask import Flask
from flask.testing import FlaskClient
from helpers import add_user, import_batch, paper
from sqlalchemy import func, select

from fleetapp import services, tasks
from fleetapp.extensions import db, get_celery, redis_clients
from fleetapp.models import Digest, ImportJob, Paper, utcnow


def stored_job(app: Flask, items: list[dict], user_id: int) -> int:
    """An import job written directly, bypassing edge validation."""
    with app.app_context():
        job = services.create_import_job(user_id, items, task_id=f"t-{time.monotonic_ns()}")
        return job.id


def test_celery_is_configured_for_safe_delivery(app: Flask, env: dict[str, str]) -> None:
    conf = app.extensions["celery"].conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (270, 300)
    assert conf.broker_transport_options["visibility_timeout"] == 600
    assert conf.broker_url == env["FLEETAPP_BROKER_URL"]
    assert conf.result_backend == env["FLEETAPP_RESULT_BACKEND"]
    assert conf.beat_schedule_filename == env["FLEETAPP_BEAT_SCHEDULE_FILE"]
    schedule = conf.beat_schedule
    assert schedule["heartbeat"]["task"] == "fleetapp.heartbeat"
    assert schedule["heartbeat"]["schedule"] == 5.0
    assert {entry["task"] for entry in schedule.values()} == {
        "fleetapp.heartbeat",
        "fleetapp.schedule_digests",
        "fleetapp.cleanup",
    }
    # Every scheduled task is registered with the app the worker runs.
    assert {entry["task"] for entry in schedule.values()} <= set(
        app.extensions["celery"].tasks
    )


def test_tasks_run_inside_the_app_context(app: Flask) -> None:
    # Called outside any Flask context, as a worker would; cleanup needs settings and the DB.
    assert tasks.cleanup.apply().get() == {"digests_deleted": 0, "payloads_cleared": 0}


def test_import_is_idempotent_on_redelivery(app: Flask) -> None:
    user_id = add_user(app, "admin@example.org", admin=True)
    job_id = stored_job(app, [paper(1), paper(2)], user_id)
    first = tasks.import_batch.apply(args=[job_id]).get()
    # acks_late means a crash after the commit may deliver the same message again.
    second = tasks.import_batch.apply(args=[job_id]).get()
    assert first == {"job_id": job_id, "status": "done", "imported": 2}
    assert second == {"job_id": job_id, "status": "done", "imported": 2}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Paper)) == 2
        assert db.session.get(ImportJob, job_id).payload is None


def test_integrity_error_mid_batch_rolls_back_everything(app: Flask) -> None:
    user_id = add_user(app, "admin@example.org", admin=True)
    # Two rows with one DOI get past the pre-check and fail on the unique index at flush.
    job_id = stored_job(app, [paper(1), paper(2), paper(3, doi="10.1000/test.1")], user_id)
    result = tasks.import_batch.apply(args=[job_id])
    assert result.state == "FAILURE"
    assert isinstance(result.result, services.ImportRejected)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Paper)) == 0
        job = db.session.get(ImportJob, job_id)
        assert job.status == "failed"
        assert job.error.startswith("batch conflicts with existing data")
        # The failed batch is kept for inspection until cleanup.
        assert len(job.payload) == 3


def test_unexpected_error_marks_job_failed(app: Flask) -> None:
    user_id = add_user(app, "admin@example.org", admin=True)
    job_id = stored_job(app, [paper(1, published_on="not a date")], user_id)
    result = tasks.import_batch.apply(args=[job_id])
    assert result.state == "FAILURE"
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == "failed"
        assert job.error.startswith("ValueError")


def test_missing_job_fails_the_task(app: Flask) -> None:
    result = tasks.import_batch.apply(args=[12345])
    assert result.state == "FAILURE"
    assert str(result.result) == "import job 12345 does not exist"


def test_digest_collects_new_matches_once(app: Flask, admin_client: FlaskClient) -> None:
    admin_client.post("/api/keywords/subscribe", json={"keyword": "raft"})
    assert admin_client.get("/api/digest").get_json() == {"digest": None}
    import_batch(admin_client, [paper(1, title="Raft one"), paper(2, title="Unrelated")])
    user_id = admin_client.get("/api/auth/whoami").get_json()["user"]["id"]

    built = tasks.build_digest.apply(args=[user_id]).get()
    assert built["papers"] == 1
    digest = admin_client.get("/api/digest").get_json()["digest"]
    assert [p["title"] for p in digest["papers"]] == ["Raft one"]
    # Nothing new since: no second digest.
    assert tasks.build_digest.apply(args=[user_id]).get()["papers"] == 0
    assert tasks.build_digest.apply(args=[999]).get()["digest_id"] is None


def test_schedule_digests_fans_out_per_subscriber(app: Flask, admin_client: FlaskClient) -> None:
    admin_client.post("/api/keywords/subscribe", json={"keyword": "raft"})
    import_batch(admin_client, [paper(1, title="Raft one")])
    assert tasks.schedule_digests.apply().get() == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Digest)) == 1


def test_cleanup_drops_old_digests_and_failed_payloads(app: Flask) -> None:
    user_id = add_user(app, "admin@example.org", admin=True)
    job_id = stored_job(app, [paper(1, published_on="bad")], user_id)
    tasks.import_batch.apply(args=[job_id])
    with app.app_context():
        old = utcnow() - timedelta(days=31)
        db.session.add(Digest(user_id=user_id, paper_ids=[], created_at=old))
        db.session.add(Digest(user_id=user_id, paper_ids=[]))
        db.session.get(ImportJob, job_id).finished_at = old
        db.session.commit()
    assert tasks.cleanup.apply().get() == {"digests_deleted": 1, "payloads_cleared": 1}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Digest)) == 1
        assert db.session.get(ImportJob, job_id).payload is None


def test_heartbeat_task_feeds_readiness(app: Flask) -> None:
    assert app.test_client().get("/readyz").status_code == 503
    tasks.heartbeat.apply()
    with app.app_context():
        assert services.heartbeat_age() < 5
        assert redis_clients.cache.ttl(services.HEARTBEAT_KEY) >= 300
        assert get_celery() is app.extensions["celery"]
    assert app.test_client().get("/readyz").status_code == 200


def test_forked_worker_children_get_fresh_pools(app: Flask) -> None:
    engine = app.extensions["fleetapp.engine"]
    with engine.connect():
        pass
    assert engine.pool.checkedin() == 1
    worker_process_init.send(sender=None)
    assert engine.pool.checkedin() == 0
