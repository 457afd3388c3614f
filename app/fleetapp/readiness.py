"""Readiness checks behind /readyz: can this host serve real traffic right now?"""

from __future__ import annotations

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fleetapp.extensions import REDIS_ROLES, db, get_settings, redis_clients
from fleetapp.migrate import current_revisions, head_revisions, known_revisions
from fleetapp.services import heartbeat_age

OK = "ok"
# The schema is at a revision this code does not know: a newer release has migrated it. With
# backward-compatible (expand/contract) migrations the old code still works, and it must stay in
# service during a rolling deploy and after a rollback.
AHEAD = "ahead"


def _short(exc: BaseException) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


def _database_checks() -> dict[str, str]:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = current_revisions(connection)
    except SQLAlchemyError as exc:
        return {"database": _short(exc), "migrations": "unknown: database unavailable"}
    heads = head_revisions()
    if current and not current & known_revisions():
        return {"database": OK, "migrations": AHEAD}
    if current != heads:
        found = ", ".join(sorted(current)) or "none"
        return {"database": OK, "migrations": f"at {found}, expected {', '.join(sorted(heads))}"}
    return {"database": OK, "migrations": OK}


def _redis_checks() -> dict[str, str]:
    results = {}
    for role in REDIS_ROLES:
        try:
            redis_clients.client(role).ping()
            results[role] = OK
        except redis.RedisError as exc:
            results[role] = _short(exc)
    return results


def _heartbeat_check(cache_ok: bool) -> str:
    max_age = get_settings().heartbeat_max_age
    if max_age == 0:
        return "disabled"
    if not cache_ok:
        return "unknown: cache unavailable"
    age = heartbeat_age()
    if age is None:
        return "no heartbeat recorded (is celery beat running?)"
    if age > max_age:
        return f"stale: last beat {age:.0f}s ago (limit {max_age:.0f}s)"
    return OK


def run_checks() -> dict[str, str]:
    """Every check's verdict: "ok" (or "disabled"), otherwise why it failed."""
    checks = _database_checks()
    checks.update(_redis_checks())
    checks["heartbeat"] = _heartbeat_check(checks["cache"] == OK)
    return checks


def failed(checks: dict[str, str]) -> list[str]:
    return [name for name, verdict in checks.items() if verdict not in (OK, AHEAD, "disabled")]
