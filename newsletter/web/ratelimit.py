"""Fixed-window request counters: in memory (one process) or in Redis (shared by every web worker).

Each app owns one counter (`app.state.rate_counter`, made on first use from the settings);
`check(request, key, limit)` raises RateLimited once `key` was seen more than `limit` times in the current hour;
`refuse_if_over(request, key, limit)` raises it, without counting, once `key` already was (failed admin sign-ins
are counted with `check` after they failed, and refused before the next attempt is even evaluated).
"""

from __future__ import annotations

import logging
import threading
import time

from fastapi import Request

from newsletter.config import Settings
from newsletter.errors import InvalidInput, RateLimited

log = logging.getLogger("newsletter.web")
WINDOW_SECONDS = 3600
KEY_PREFIX = "newsletter:ratelimit:"


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)
        self._lock = threading.Lock()

    def peek(self, key: str, window: int) -> int:
        """The count of `key` in the current window, without counting."""
        current = int(time.time()) // window
        with self._lock:
            started, count = self._counts.get(key, (current, 0))
            return count if started == current else 0

    def hit(self, key: str, window: int) -> int:
        """Count one request for `key` in the current window; returns the count so far."""
        current = int(time.time()) // window
        with self._lock:
            if len(self._counts) > 100_000:  # forget old windows so memory stays bounded
                self._counts = {k: v for k, v in self._counts.items() if v[0] == current}
            started, count = self._counts.get(key, (current, 0))
            count = count + 1 if started == current else 1
            self._counts[key] = (current, count)
            return count


class RedisCounter:
    def __init__(self, url: str, prefix: str = "") -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix + KEY_PREFIX

    def peek(self, key: str, window: int) -> int:
        return int(self._client.get(f"{self._prefix}{key}:{int(time.time()) // window}") or 0)

    def hit(self, key: str, window: int) -> int:
        name = f"{self._prefix}{key}:{int(time.time()) // window}"
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window)
        count, _ = pipe.execute()
        return int(count)


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (NEWSLETTER_TRUSTED_PROXIES, see
    app.py); a forwarded header from anyone else is ignored."""
    return request.client.host if request.client else "unknown"


def make_counter(settings: Settings) -> MemoryCounter | RedisCounter:
    if settings.rate_limit_store == "memory":
        return MemoryCounter()
    if settings.rate_limit_store == "redis":
        return RedisCounter(settings.redis_url, settings.redis_key_prefix)
    raise InvalidInput(f"NEWSLETTER_RATE_LIMIT_STORE must be memory or redis, not {settings.rate_limit_store!r}")


def _counter(request: Request, settings: Settings) -> MemoryCounter | RedisCounter:
    state = request.app.state
    if getattr(state, "rate_counter", None) is None:
        state.rate_counter = make_counter(settings)
    return state.rate_counter


def check(request: Request, settings: Settings, key: str, limit: int) -> None:
    """Count a request for `key`; raise RateLimited when it is over `limit` this hour.

    When Redis is unreachable the request is allowed (and logged): signing up matters more than the limit.
    """
    import redis

    try:
        count = _counter(request, settings).hit(key, WINDOW_SECONDS)
    except redis.RedisError as error:
        log.warning("rate limit store unavailable, request allowed: %s", error)
        return
    if count > limit:
        raise RateLimited(retry_after=retry_after())


def refuse_if_over(request: Request, settings: Settings, key: str, limit: int) -> None:
    """Raise RateLimited when `key` was already counted `limit` times this hour (counting nothing)."""
    import redis

    try:
        count = _counter(request, settings).peek(key, WINDOW_SECONDS)
    except redis.RedisError as error:
        log.warning("rate limit store unavailable, request allowed: %s", error)
        return
    if count >= limit:
        raise RateLimited(retry_after=retry_after())


def retry_after() -> int:
    """Seconds until the current window ends."""
    return WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS
