"""Hand an edition to the Celery workers: one `send_batch` task per slice of its pending deliveries.

Used by `newsletter send --via-celery`; the workers run the same `send_edition` as the CLI, so the ledger keeps
them from sending anyone twice even when a task runs again.
"""

from __future__ import annotations

import redis
from kombu.utils.url import sanitize_url

from newsletter.batching import chunked
from newsletter.config import Settings
from newsletter.errors import NewsletterError

SEND_BATCH = "tasks.tasks.send_batch"


class BrokerUnreachable(NewsletterError):
    """Redis (the Celery broker) did not answer."""


def enqueue_send(settings: Settings, edition_id: int, delivery_ids: list[int],
                 batch_size: int | None = None) -> list[str]:
    """Enqueue `send_batch(edition_id, ids)` per `batch_size` (default NEWSLETTER_SEND_BATCH_SIZE) ids.

    Returns the task ids. Checks Redis first. The caller stamps the rows queued (`dispatch.mark_queued`).
    """
    check_broker(settings.redis_url)
    batch_size = batch_size or settings.send_batch_size
    from tasks.celery_app import create_celery

    celery = create_celery(settings)
    return [celery.send_task(SEND_BATCH, args=[edition_id, batch], retry=False).id
            for batch in chunked(delivery_ids, batch_size)]


def check_broker(url: str, timeout: float = 3.0) -> None:
    """Fail fast with one clear line instead of Celery's endless connection retries."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except (redis.RedisError, OSError, ValueError) as error:
        raise BrokerUnreachable(f"cannot reach Redis at {sanitize_url(url)}: {error}") from None
