"""The Celery application, configured from settings. Workers: `celery -A tasks.celery_app worker`."""

from __future__ import annotations

import sys

from celery import Celery, signals

from newsletter.config import Settings, get_settings
from newsletter.doctor import NotReady, require_ready
from newsletter.log import FieldsAppended
from tasks.schedule import beat_schedule

VISIBILITY_TIMEOUT = 6 * 3600  # longer than any task, so Redis never re-delivers a task that is still running


def create_celery(settings: Settings) -> Celery:
    celery = Celery("newsletter", broker=settings.redis_url, backend=settings.redis_url, include=["tasks.tasks"])
    celery.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,  # a task lost with its worker is run again; the ledger makes that safe
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=_transport_options(settings),
        result_backend_transport_options=_transport_options(settings),
        result_expires=24 * 3600,
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        broker_connection_retry_on_startup=True,
    )
    return celery


def _transport_options(settings: Settings) -> dict:
    options: dict = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if settings.redis_key_prefix:
        options["global_keyprefix"] = settings.redis_key_prefix
    return options


def refuse_unless_ready(what: str) -> None:
    """NEWSLETTER_ENV=production: a worker or beat does not start while `newsletter doctor` reports an error.
    SystemExit, because Celery logs and ignores an Exception raised by a signal handler."""
    try:
        require_ready(get_settings(), what)
    except NotReady as refusal:
        print(f"error: {refusal}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


@signals.worker_init.connect
def _worker_init(**_kwargs) -> None:
    refuse_unless_ready("the Celery worker")


@signals.beat_init.connect
def _beat_init(**_kwargs) -> None:
    refuse_unless_ready("Celery beat")


@signals.after_setup_logger.connect
def _show_event_fields(logger, **_kwargs) -> None:
    """Celery formats the workers' log itself: keep its lines, and add what each event says (the delivery, the
    address, the error, why sending stopped)."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, FieldsAppended):
            handler.setFormatter(FieldsAppended(handler.formatter))


app = create_celery(get_settings())  # the workers' edge: settings from the environment
