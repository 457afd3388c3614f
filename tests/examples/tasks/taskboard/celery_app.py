"""The Celery app: `celery -A taskboard.celery_app:celery worker` (and `beat`)."""

import os

from celery import Celery, Task

celery = Celery(
    "taskboard",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/1"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/2"),
    include=["taskboard.tasks"],
)
celery.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    result_expires=3600,
    beat_schedule={
        "heartbeat-every-10s": {"task": "taskboard.tasks.heartbeat", "schedule": 10.0},
    },
)

_flask_app = None


class FlaskTask(Task):
    """Runs every task inside an app context, so tasks can use the models."""

    def __call__(self, *args, **kwargs):
        global _flask_app
        if _flask_app is None:
            from taskboard import create_app

            _flask_app = create_app()
        with _flask_app.app_context():
            return self.run(*args, **kwargs)


celery.Task = FlaskTask
