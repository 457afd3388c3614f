import time

from .celery_app import celery
from .models import Heartbeat, Job, db, utcnow


@celery.task(bind=True, max_retries=3)
def process_job(self, job_id):
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    time.sleep(1)  # pretend to work
    job.status = "done"
    job.result = job.title.upper()
    db.session.commit()
    return job.result


@celery.task(expires=10)
def heartbeat():
    row = db.session.get(Heartbeat, "beat")
    if row is None:
        db.session.add(Heartbeat(name="beat", beat_at=utcnow()))
    else:
        row.beat_at = utcnow()
    db.session.commit()
