"""Process-wide handles (database, Redis, Celery), each bound to a Flask app by init_app().

Everything per-app lives in ``app.extensions`` so several apps (tests) can coexist in one process.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask, current_app
from flask.globals import app_ctx
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session

from fleetapp.config import Settings

log = logging.getLogger(__name__)

ENGINE_KEY = "fleetapp.engine"
REDIS_KEY = "fleetapp.redis"
CELERY_KEY = "celery"
SETTINGS_KEY = "fleetapp.settings"

REDIS_ROLES = ("cache", "broker", "results")


def _app_context_id() -> int:
    # A Celery task run eagerly inside a request pushes its own app context; scoping sessions by
    # context (not thread) keeps the task's commit/rollback away from the request's session.
    return id(app_ctx._get_current_object())


def engine_options(url: str) -> dict[str, Any]:
    """Engine arguments for a database URL: liveness pings everywhere, driver specifics."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # gunicorn gthread workers share the pool between threads; the timeout rides out
        # SQLite's single-writer lock instead of failing at once.
        options["connect_args"] = {"check_same_thread": False, "timeout": 15}
    elif backend in ("mysql", "mariadb"):
        # Fail a dead DB fast (readiness must answer quickly) and recycle before the server's
        # wait_timeout silently drops idle connections.
        options["connect_args"] = {"connect_timeout": 5}
        options["pool_recycle"] = 1800
    return options


# Every engine of this process, so a forked Celery child can drop the pools it inherited.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@worker_process_init.connect
def _fresh_pools_after_fork(**_kwargs: Any) -> None:
    # Prefork children must not share the parent's DB sockets; dispose(close=False) forgets the
    # inherited connections without closing them under the parent (SQLAlchemy's fork recipe).
    for engine in list(_engines):
        engine.dispose(close=False)


def create_db_engine(url: str) -> Engine:
    engine = create_engine(url, **engine_options(url))
    _engines.add(engine)
    if engine.dialect.name == "sqlite":
        # SQLite leaves foreign keys off by default; turn them on so tests see MariaDB's behaviour.
        @event.listens_for(engine, "connect")
        def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def wait_for_database(engine: Engine, attempts: int, first_delay: float = 0.5) -> None:
    """Connect with bounded exponential back-off: a DB that is still starting is not an error."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect():
                return
        except OperationalError as exc:
            if attempt == attempts:
                raise
            log.warning("database not reachable (attempt %d/%d): %s", attempt, attempts, exc)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class Database:
    """SQLAlchemy engine per app and a session per app context, removed at teardown."""

    def __init__(self) -> None:
        self.session: scoped_session[Session] = scoped_session(
            self._new_session, scopefunc=_app_context_id
        )

    def init_app(self, app: Flask, settings: Settings) -> None:
        app.extensions[ENGINE_KEY] = create_db_engine(settings.database_url)
        app.teardown_appcontext(self._teardown)

    @property
    def engine(self) -> Engine:
        return current_app.extensions[ENGINE_KEY]

    def _new_session(self) -> Session:
        return Session(bind=self.engine)

    def _teardown(self, _exc: BaseException | None) -> None:
        self.session.remove()


class RedisClients:
    """One client per Redis role; the roles live on separate logical DBs (or servers)."""

    def init_app(self, app: Flask, settings: Settings) -> None:
        urls = {
            "cache": settings.cache_redis_url,
            "broker": settings.broker_url,
            "results": settings.result_backend,
        }
        app.extensions[REDIS_KEY] = {
            role: redis.Redis.from_url(
                url,
                socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout,
                health_check_interval=30,
            )
            for role, url in urls.items()
        }

    def client(self, role: str) -> redis.Redis:
        return current_app.extensions[REDIS_KEY][role]

    @property
    def cache(self) -> redis.Redis:
        return self.client("cache")


def init_celery(app: Flask, settings: Settings) -> Celery:
    """A Celery app whose tasks always run inside this Flask app's context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        # A task is acknowledged only after it finished, and a worker killed mid-task puts it
        # back on the queue: no task is lost to a crash or an OOM kill. Tasks are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # With acks_late, prefetching more than one message would strand them on a busy worker.
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_soft_time_limit,
        # Redis redelivers unacknowledged messages after the visibility timeout; it must exceed
        # the longest a task may run or a slow task would be started twice.
        broker_transport_options={"visibility_timeout": settings.task_time_limit * 2},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        result_expires=86400,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule_filename=settings.beat_schedule_file,
        beat_schedule={
            "heartbeat": {
                "task": "fleetapp.heartbeat",
                "schedule": settings.heartbeat_interval,
                # A heartbeat that waited longer than one interval in the queue says nothing.
                "options": {"expires": settings.heartbeat_interval},
            },
            "digests": {"task": "fleetapp.schedule_digests", "schedule": settings.digest_interval},
            "cleanup": {"task": "fleetapp.cleanup", "schedule": settings.cleanup_interval},
        },
        task_always_eager=settings.is_testing,
        task_store_eager_result=settings.is_testing,
        # Failures of eager tasks are recorded in the result backend as in production instead of
        # being raised into the request that queued them.
        task_eager_propagates=False,
    )
    celery.set_default()
    app.extensions[CELERY_KEY] = celery

    return celery


db = Database()
redis_clients = RedisClients()


def get_settings() -> Settings:
    return current_app.extensions[SETTINGS_KEY]


def get_celery() -> Celery:
    return current_app.extensions[CELERY_KEY]
