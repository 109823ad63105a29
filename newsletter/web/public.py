"""The public pages: the home page with the subscribe form, double opt-in, and "send me a new link".

A sign-up answers the same page whether or not the address is known (no enumeration); the email it owes is sent
after the response, so timing does not tell either.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from newsletter.config import Settings
from newsletter.delivery.smtp import offers_smtputf8
from newsletter.errors import NotFound, RateLimited
from newsletter.links import signed_path
from newsletter.models import Subscriber, SubscriberStatus, address_key
from newsletter.notices import confirmation_email, manage_email, send_notice
from newsletter.web import forms, ratelimit
from newsletter.web.csrf import verified_form
from newsletter.web.landing import kept, landing
from newsletter.web.pages import form_page, message_page, page
from newsletter.web.state import AppSettings, database
from subscribers.consent import (
    CONFIRM,
    MANAGE,
    confirm,
    request_subscription,
    subscriber_for_any_age_token,
    subscriber_for_token,
)

router = APIRouter()
RENEWABLE = ("confirm", "preferences")  # expired links of these purposes offer a fresh one by email


def home_page(request: Request, values: dict, errors: dict[str, str], status_code: int,
              headers: dict[str, str] | None = None):
    """The home page with the form filled again as it was sent, and what to fix beside each field."""
    return page("index.html", status_code=status_code, request=request, headers=headers,
                **landing(request).home_context(values, errors))


@router.get("/")
async def home(request: Request):
    """The busiest page: rendered once per app and day (newsletter.web.landing), served with this browser's CSRF
    token. Only when the kept copy is stale does a thread read the database."""
    content = kept(request)
    if content is None:
        content = await run_in_threadpool(landing, request)
    return form_page(request, content.home_html())


@router.get("/sample")
def sample(request: Request):
    """A sample edition: what a reader with typical interests gets today (no signed links in it)."""
    html = landing(request).sample_html()
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=300"})


@router.post("/subscribe")
def subscribe(request: Request, background: BackgroundTasks, settings: AppSettings,
              form: FormData = Depends(verified_form)):
    offered = landing(request).suggestions
    errors: dict[str, str] = {}
    address = profile = None
    try:
        address = forms.email_address(form, lambda: offers_smtputf8(settings))
    except forms.FormErrors as error:
        errors.update(error.errors)
    try:
        profile = forms.profile_fields(form, offered)
    except forms.FormErrors as error:
        errors.update(error.errors)
    seeds = forms.seed_references(form)
    if seeds and profile is not None:
        with database(settings) as session:
            try:
                profile["seed_paper_ids"] = forms.seed_paper_choice(session, seeds)  # unresolved ones: listed back
            except forms.FormErrors as error:
                errors.update(error.errors)
    if errors or address is None or profile is None:
        return home_page(request, forms.echo(form), errors, status_code=422)
    try:
        ratelimit.check(request, settings, f"ip:{ratelimit.client_ip(request)}", settings.subscribe_limit_per_ip)
        ratelimit.check(request, settings, f"address:{address_key(address)}", settings.subscribe_limit_per_address)
    except RateLimited as limited:
        minutes = max(1, limited.retry_after // 60)
        return home_page(request, forms.echo(form),
                         {"form": f"Too many sign-ups from here just now. Nothing was lost: please press Subscribe "
                                  f"again in about {minutes} minutes."},
                         status_code=429, headers={"Retry-After": str(limited.retry_after)})
    with database(settings, write=True) as session:
        subscriber, owed = request_subscription(session, address, **profile)
    queue_notice(background, subscriber, owed, settings)
    return message_page("Check your inbox",
                        f"If {address} can receive Paper Digest, an email is on its way to it. Open the link in "
                        "that email to confirm; nothing is sent before you do.")


def queue_notice(background: BackgroundTasks, subscriber: Subscriber, owed: str | None, settings: Settings) -> None:
    """Send the email a request owes after the response (CONFIRM or MANAGE; None sends nothing)."""
    if owed == CONFIRM and subscriber.status in (SubscriberStatus.pending, SubscriberStatus.unsubscribed):
        background.add_task(send_notice, subscriber.email, confirmation_email(subscriber, settings), settings)
    elif owed == MANAGE:
        background.add_task(send_notice, subscriber.email, manage_email(subscriber, settings), settings)


@router.get("/confirm/{token}")
def confirm_page(token: str, request: Request, settings: AppSettings):
    """A one-button page: a GET never confirms, because mail scanners open links before the reader does."""
    with database(settings) as session:
        subscriber, _ = subscriber_for_token(session, "confirm", token, settings)
        if subscriber.status != SubscriberStatus.active:
            return _confirmation_outcome(subscriber, settings) or page("confirm.html", email=subscriber.email,
                                                                        action=str(request.url.path))
        return _confirmation_outcome(subscriber, settings)


@router.post("/confirm/{token}")
def confirm_subscription(token: str, settings: AppSettings):
    with database(settings, write=True) as session:
        subscriber, _ = subscriber_for_token(session, "confirm", token, settings)
        confirm(session, subscriber)
        return _confirmation_outcome(subscriber, settings)


def _confirmation_outcome(subscriber: Subscriber, settings: Settings):
    """The page for a confirmed (active) or unconfirmable (bounced, complained) subscriber; None otherwise."""
    if subscriber.status == SubscriberStatus.active:
        return page("confirmed.html", email=subscriber.email,
                    preferences_url=signed_path("preferences", subscriber, settings))
    if subscriber.status in (SubscriberStatus.bounced, SubscriberStatus.complained):
        return message_page("This address cannot be subscribed",
                            f"Mail to {subscriber.email} could not be delivered before, so Paper Digest does not "
                            "send to it any more.", status_code=409)
    return None


@router.post("/renew/{purpose}/{token}")
def renew_link(purpose: str, token: str, request: Request, background: BackgroundTasks, settings: AppSettings,
               form: FormData = Depends(verified_form)):
    """Email a fresh link in exchange for an expired (but genuine) one."""
    if purpose not in RENEWABLE:
        raise NotFound("there is nothing to renew here")
    ratelimit.check(request, settings, f"ip:{ratelimit.client_ip(request)}", settings.subscribe_limit_per_ip)
    with database(settings) as session:
        subscriber = subscriber_for_any_age_token(session, purpose, token, settings)
        ratelimit.check(request, settings, f"address:{subscriber.email_key}", settings.subscribe_limit_per_address)
        if purpose == "confirm" and subscriber.status != SubscriberStatus.active:
            queue_notice(background, subscriber, CONFIRM, settings)
        elif subscriber.status in (SubscriberStatus.active, SubscriberStatus.pending, SubscriberStatus.unsubscribed):
            background.add_task(send_notice, subscriber.email,
                                manage_email(subscriber, settings, already_subscribed=False), settings)
        email = subscriber.email
    return message_page("A new link is on its way", f"Check the inbox of {email} for a fresh link.")
