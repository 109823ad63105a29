"""A messages-per-second cap. Per process by default; shared by every sender through Redis when configured.

Both forms hand out evenly spaced send times (GCRA: each message reserves the next slot, `1/rate` seconds
after the previous one) and sleep until the slot comes. The Redis form keeps the next free slot in one key and
reserves it in a Lua script on the server's clock, so senders on several machines share one cap.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from newsletter.config import Settings
from newsletter.errors import DeliveryError

RATE_KEY = "newsletter:send-rate"

# KEYS[1]: next free slot (microseconds, Redis clock). ARGV[1]: interval in microseconds.
# Returns how long the caller must wait for its slot, in microseconds.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now_us then slot = now_us end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil(interval / 1000) + 1000)
return slot - now_us
"""


class RateLimit(Protocol):
    def wait(self) -> None:
        """Block until this process may send its next message."""

    def close(self) -> None: ...


class NoLimit:
    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalRateLimit:
    """The cap inside one process (thread-safe)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next_slot, now)
            self._next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def close(self) -> None:
        pass


class RedisRateLimit:
    """The cap for every process that uses the same Redis key."""

    def __init__(self, per_second: float, redis_url: str, key: str = RATE_KEY):
        import redis

        self.interval_us = max(1, round(1_000_000 / per_second))
        self.key = key
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._reserve = self._client.register_script(_RESERVE)

    def wait(self) -> None:
        import redis

        try:
            delay_us = int(self._reserve(keys=[self.key], args=[self.interval_us]))
        except redis.RedisError as error:
            raise DeliveryError(f"the shared send rate needs Redis, which failed: {error}") from None
        if delay_us > 0:
            time.sleep(delay_us / 1_000_000)

    def close(self) -> None:
        self._client.close()


def rate_limit_for(settings: Settings) -> RateLimit:
    if settings.send_rate <= 0:
        return NoLimit()
    if settings.send_rate_shared:
        return RedisRateLimit(settings.send_rate, settings.redis_url, settings.redis_key_prefix + RATE_KEY)
    return LocalRateLimit(settings.send_rate)
