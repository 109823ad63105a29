"""The messages-per-second cap: per process, and shared by several senders through Redis (the test's key prefix)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from newsletter.delivery.rate import RATE_KEY, LocalRateLimit, RedisRateLimit
from newsletter.delivery.send import send_edition
from tests.helpers import configured, planned
from tests.scripted_smtp import ScriptedSmtp


def test_local_cap_spaces_messages_evenly():
    limit = LocalRateLimit(50)
    times = []
    for _ in range(10):
        limit.wait()
        times.append(time.monotonic())
    # a late wake-up may be followed by a quicker one (slots stay on schedule), never by a faster average
    assert times[-1] - times[0] >= 9 * 0.02 * 0.95


@pytest.mark.redis
def test_redis_cap_is_shared_by_two_senders(settings, redis_url):
    key = f"{settings.redis_key_prefix}{RATE_KEY}"
    senders = [RedisRateLimit(40, redis_url, key=key) for _ in range(2)]  # as two processes would have
    times, lock = [], threading.Lock()

    def send(limit):
        for _ in range(8):
            limit.wait()
            with lock:
                times.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(limit,)) for limit in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for limit in senders:
        limit.close()
    assert len(times) == 16
    assert elapsed >= 15 * 0.025 * 0.95  # 16 messages at 40/s in total, not 40/s each
    assert max(times) - min(times) >= 15 * 0.025 * 0.95


@pytest.mark.redis
def test_send_edition_honours_the_shared_cap(session, settings, redis_url, tmp_path):
    with ScriptedSmtp(tmp_path / "scripted") as smtp:
        edition = planned(session, settings, *(f"reader{i}@example.org" for i in range(5)))
        local = configured(settings, smtp, send_rate=20, send_rate_shared=True)
        started = time.monotonic()
        assert send_edition(session, edition, local).sent == 5
        assert time.monotonic() - started >= 4 * 0.05 * 0.9
    assert redis.Redis.from_url(redis_url).exists(f"{settings.redis_key_prefix}{RATE_KEY}")  # the shared slot


def test_unreachable_redis_is_a_clear_error():
    from newsletter.errors import DeliveryError

    limit = RedisRateLimit(10, "redis://127.0.0.1:1/5")
    with pytest.raises(DeliveryError, match="shared send rate needs Redis"):
        limit.wait()
