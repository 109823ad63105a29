"""Transactional emails from the web app: "confirm your subscription" and "manage your subscription".

Rendered like the edition (MJML compiled once, autoescaped Jinja2; templates/email/notice.*) and handed to the
same SMTP sender. They carry no List-Unsubscribe: they are one-off answers to a request, not newsletter mail.
"""

from __future__ import annotations

import logging
import time
from email.utils import make_msgid

from newsletter.config import Settings
from newsletter.delivery.mime import address_domain, build_message
from newsletter.delivery.smtp import SmtpSender, TemporaryFailure
from newsletter.errors import DeliveryError, InvalidInput
from newsletter.links import signed_url
from newsletter.log import event
from newsletter.models import Subscriber
from newsletter.render import RenderedEmail, one_line
from newsletter.render.compile import compiled_html_template, text_template

log = logging.getLogger("newsletter.notices")


def confirmation_email(subscriber: Subscriber, settings: Settings) -> RenderedEmail:
    return _render(
        subject="Confirm your Paper Digest subscription",
        heading="Confirm your subscription",
        lines=[f"Someone, hopefully you, asked to send Paper Digest to {subscriber.email}.",
               "Confirm with the button below and your first edition arrives at the next send time you chose."],
        button_label="Confirm my subscription",
        button_url=signed_url("confirm", subscriber, settings),
        footnote="If you did not ask for this, ignore this email: nothing will be sent without your confirmation. "
                 "The link works for 7 days.",
        settings=settings,
    )


def manage_email(subscriber: Subscriber, settings: Settings, already_subscribed: bool = True) -> RenderedEmail:
    first = (f"Someone, hopefully you, asked to subscribe {subscriber.email} to Paper Digest. "
             "You are already subscribed, so nothing has changed." if already_subscribed
             else f"Here is a fresh link to the preferences of {subscriber.email}.")
    return _render(
        subject="You are already subscribed to Paper Digest" if already_subscribed
        else "Your Paper Digest preferences link",
        heading="You are already subscribed" if already_subscribed else "Manage your subscription",
        lines=[first, "To change your interests, how often you get the digest, or to unsubscribe, "
                      "open your preferences."],
        button_label="Manage preferences",
        button_url=signed_url("preferences", subscriber, settings),
        footnote="If you did not ask for this, you can ignore this email.",
        settings=settings,
    )


def _render(*, subject: str, settings: Settings, **context) -> RenderedEmail:
    context = {"subject": one_line(subject), "preheader": one_line(context["lines"][0], 150),
               "postal_address": settings.postal_address, "lang": settings.language, **context}
    return RenderedEmail(subject=context["subject"],
                         html=compiled_html_template("email/notice.mjml").render(context),
                         text=text_template("email/notice.txt").render(context))


RETRY_DELAYS = (2.0, 10.0, 30.0)  # seconds before each new attempt after a temporary failure


def send_notice(subscriber_email: str, rendered: RenderedEmail, settings: Settings,
                retry_delays: tuple[float, ...] | None = None) -> bool:
    """Send one transactional email now, retrying temporary failures (4xx, connection trouble) a few times.

    Failures are logged, not raised: the web answer was already given (the reader can ask again).
    """
    try:
        message = build_message(rendered, sender=settings.from_address, to=subscriber_email,
                                message_id=make_msgid(domain=address_domain(settings.from_address)))
    except InvalidInput as error:
        event(log, "notice not sent", logging.WARNING, to=subscriber_email, subject=rendered.subject, error=str(error))
        return False
    retry_delays = RETRY_DELAYS if retry_delays is None else retry_delays
    for attempt, delay in enumerate((0.0, *retry_delays), start=1):
        time.sleep(delay)
        try:
            with SmtpSender(settings) as sender:
                sender.send(subscriber_email, message)
        except TemporaryFailure as error:
            event(log, "notice deferred", logging.WARNING, to=subscriber_email, subject=rendered.subject,
                  attempt=attempt, error=str(error))
            continue
        except DeliveryError as error:
            event(log, "notice not sent", logging.WARNING, to=subscriber_email, subject=rendered.subject,
                  error=str(error))
            return False
        event(log, "notice sent", to=subscriber_email, subject=rendered.subject, attempt=attempt)
        return True
    event(log, "notice not sent", logging.WARNING, to=subscriber_email, subject=rendered.subject,
          error=f"still failing after {len(retry_delays) + 1} attempts")
    return False
