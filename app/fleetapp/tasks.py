"""Celery tasks. They receive ids, never ORM objects, and delegate to fleetapp.services.

Delivery is at-least-once (acks_late + reject_on_worker_lost, set on the Celery app), so every
task here is idempotent.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.exc import OperationalError

from fleetapp import services
from fleetapp.extensions import get_settings

# Lost DB connections and lock timeouts are worth a few retries; data errors are not.
_TRANSIENT = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 3,
}


@shared_task(name="fleetapp.import_batch", **_TRANSIENT)
def import_batch(job_id: int) -> dict[str, Any]:
    result = services.run_import(job_id)
    if result["status"] == "done":
        match_import.delay(job_id)
    return result


@shared_task(name="fleetapp.match_import", **_TRANSIENT)
def match_import(job_id: int) -> int:
    return services.match_job(job_id)


@shared_task(name="fleetapp.match_keyword", **_TRANSIENT)
def match_keyword(keyword_id: int) -> int:
    return services.match_keyword(keyword_id)


@shared_task(name="fleetapp.build_digest", **_TRANSIENT)
def build_digest(user_id: int) -> dict[str, Any]:
    return services.build_digest(user_id)


@shared_task(name="fleetapp.schedule_digests")
def schedule_digests() -> int:
    user_ids = services.subscriber_ids()
    for user_id in user_ids:
        build_digest.delay(user_id)
    return len(user_ids)


@shared_task(name="fleetapp.cleanup", **_TRANSIENT)
def cleanup() -> dict[str, int]:
    return services.cleanup(get_settings().retention_days)


@shared_task(name="fleetapp.heartbeat", ignore_result=True)
def heartbeat() -> float:
    # Run by a worker on beat's schedule: a fresh stamp proves beat, broker and a worker alive.
    return services.record_heartbeat()
