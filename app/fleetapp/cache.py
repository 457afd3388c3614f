"""Read-through cache of paper listings in the cache Redis, invalidated by a version counter."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis

from fleetapp.extensions import get_settings, redis_clients

log = logging.getLogger(__name__)

VERSION_KEY = "fleetapp:cache:papers:version"
KEY_PREFIX = "fleetapp:cache:papers"


def _key(version: int, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return f"{KEY_PREFIX}:v{version}:{digest}"


def cached_papers(
    params: dict[str, Any], compute: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """Return (result, hit). Redis trouble degrades to computing from the database.

    Invalidation bumps the version counter after the import has committed, so a reader that
    sees the new version is guaranteed to read the new rows; entries of old versions are never
    read again and simply expire.
    """
    client = redis_clients.cache
    ttl = get_settings().cache_ttl
    try:
        version = int(client.get(VERSION_KEY) or 0)
        key = _key(version, params)
        cached = client.get(key)
    except redis.RedisError as exc:
        log.warning("cache unavailable, serving from the database: %s", exc)
        return compute(), False
    if cached is not None:
        return json.loads(cached), True
    result = compute()
    try:
        client.set(key, json.dumps(result), ex=ttl)
    except redis.RedisError as exc:
        log.warning("cache write failed: %s", exc)
    return result, False


def invalidate_papers() -> None:
    try:
        redis_clients.cache.incr(VERSION_KEY)
    except redis.RedisError as exc:
        # Stale listings then live at most one TTL; failing the import for that would be worse.
        log.warning("cache invalidation failed (entries expire after their TTL): %s", exc)
