"""Fixed-window rate limits counted in the cache Redis, shared by every app host."""

from __future__ import annotations

import logging

import redis

from fleetapp.extensions import redis_clients

log = logging.getLogger(__name__)


def hit(bucket: str, limit: int, window: int) -> int | None:
    """Count one attempt; return seconds to wait if the limit is exceeded, else None.

    If Redis is unreachable the attempt is allowed (and logged): losing brute-force protection
    for a while is preferable to locking every user out of the site.
    """
    key = f"fleetapp:ratelimit:{bucket}"
    try:
        pipe = redis_clients.cache.pipeline()
        # SET NX starts the window on the first attempt; INCR never resets the expiry.
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("rate limiter unavailable, allowing %s: %s", bucket, exc)
        return None
    if count > limit:
        return max(int(ttl), 1)
    return None
