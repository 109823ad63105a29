"""The home page, sign-up with double opt-in, no enumeration, CSRF and rate limits (HTTP level, real SMTP sink)."""

import re

import pytest
import redis
from sqlmodel import select

from newsletter.models import Event, Subscriber
from subscribers.profiles import find_subscriber
from subscribers.tokens import make_token
from tests.helpers import (
    add_active,
    csrf_token,
    html_part,
    ingest_sample,
    links,
    make_old_token,
    received,
    sign_up,
    text_part,
    url_path,
)


def test_home_page_explains_shows_trending_papers_and_the_form(session, web):
    ingest_sample(session)
    response = web.get("/")
    assert response.status_code == 200
    page = response.text
    assert "New today" in page and page.count('class="paper-title"') == 5
    for field in ('name="email"', 'name="interests"', 'name="suggested"', 'name="keywords"', 'value="weekly"',
                  'name="send_hour"', 'name="timezone"', 'value="Europe/Paris"', 'name="csrf_token"'):
        assert field in page
    assert '<script src="/static/timezone.js" defer>' in page
    assert "pd_csrf" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]
    script = web.get("/static/timezone.js")
    assert script.status_code == 200 and "resolvedOptions().timeZone" in script.text


def test_sign_up_creates_a_pending_subscriber_and_mails_a_confirmation_link(session, web, sink):
    response = sign_up(web, "Ada@Example.ORG", interests="Cheaper <b>LLM</b> inference", keywords="KV cache",
                       suggested=["RAG", "agents"], frequency="weekly", send_hour="6", timezone="Europe/Paris")
    assert response.status_code == 200 and "Check your inbox" in response.text
    subscriber = find_subscriber(session, "Ada@example.org")
    assert subscriber is not None
    assert subscriber.status == "pending" and subscriber.consent == ""
    assert (subscriber.keywords, subscriber.frequency, subscriber.send_hour, subscriber.timezone) == (
        ["KV cache", "RAG", "agents"], "weekly", 6, "Europe/Paris")
    [message] = received(sink)
    assert message["To"] == "Ada@example.org" and message["Subject"] == "Confirm your Paper Digest subscription"
    assert "List-Unsubscribe" not in message
    [link] = links(message, "/confirm/")
    assert link.startswith("https://digest.example.org/confirm/") and link in html_part(message)

    shown = web.get(url_path(link))
    assert shown.status_code == 200 and "Yes, subscribe me" in shown.text and "Ada@example.org" in shown.text
    session.refresh(subscriber)
    assert subscriber.status == "pending"  # opening the link (as a mail scanner does) confirms nothing
    confirmed = web.post(url_path(link))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    session.refresh(subscriber)
    assert subscriber.status == "active" and subscriber.consent == "double-opt-in" and subscriber.confirmed_at
    assert [e.kind for e in session.exec(select(Event).where(Event.subscriber_id == subscriber.id))] == [
        "subscribe_request", "confirm"]
    preferences = web.get(url_path(confirmed.text.split('href="')[-1].split('"')[0]))
    assert preferences.status_code == 200 and "Your preferences" in preferences.text
    assert "You are subscribed" in web.get(url_path(link)).text  # using the link again is harmless
    assert web.post(url_path(link)).status_code == 200


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(session, web, sink):
    add_active(session, "active@example.org", "robotics")
    bounced = add_active(session, "bounced@example.org")
    bounced.status = "bounced"
    session.commit()
    sign_up(web, "pending@example.org")
    answers = {}
    for address in ("new@example.org", "active@example.org", "pending@example.org", "bounced@example.org"):
        response = sign_up(web, address, interests="something else")
        answers[address] = (response.status_code, response.text.replace(address, "ADDRESS"))
    assert len(set(answers.values())) == 1
    by_recipient: dict[str, list[str]] = {}
    for message in received(sink):
        by_recipient.setdefault(message["To"], []).append(message["Subject"])
    assert by_recipient == {
        "pending@example.org": ["Confirm your Paper Digest subscription"] * 2,
        "new@example.org": ["Confirm your Paper Digest subscription"],
        "active@example.org": ["You are already subscribed to Paper Digest"],
    }
    already = next(m for m in received(sink) if m["To"] == "active@example.org")
    assert links(already, "/preferences/") and "already subscribed" in text_part(already)
    session.expire_all()
    active = find_subscriber(session, "active@example.org")
    assert active is not None
    assert active.interests == "robotics"  # typing an address changes nothing


def test_bad_input_shows_the_form_again_with_what_was_typed(session, web, sink):
    """Each error is in plain words beside its field (which gets the focus), and everything typed is kept."""
    for email, fields, field, message in [
        ("not-an-address", {}, "email", "An email address needs an @, like name@example.org."),
        ("ada@example", {}, "email", "The part after the @ should be a domain name, like example.org."),
        ("eve@example.org\r\nBcc: all@example.org", {}, "email", "Please enter one address, without line breaks."),
        ("eve@example.org", {"timezone": "Mars/Olympus"}, "timezone", "Choose your time zone from the list."),
        ("eve@example.org", {"send_hour": "25"}, "send_hour", "Choose an hour between 00:00 and 23:00."),
        ("eve@example.org", {"send_hour": "seven"}, "send_hour", "Choose an hour between 00:00 and 23:00."),
        ("eve@example.org", {"frequency": "hourly"}, "frequency", "Choose daily or weekly."),
    ]:
        response = sign_up(web, email, interests="Kept <i>as typed</i>", keywords="KV cache", **fields)
        assert response.status_code == 422
        assert f'<p class="field-error" id="{field}-error">{message}</p>' in response.text
        assert "invalid email address" not in response.text and "@-sign" not in response.text  # no validator jargon
        assert "Kept &lt;i&gt;as typed&lt;/i&gt;</textarea>" in response.text and 'value="KV cache"' in response.text
        if field != "frequency":  # the first field in error takes the focus, so it is in view
            assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="{field}-error" autofocus',
                             response.text), field
    assert session.exec(select(Subscriber)).all() == [] and received(sink) == []


def test_forms_without_a_valid_csrf_token_change_nothing(session, web, sink):
    data = {"email": "ada@example.org", "timezone": "UTC"}
    assert web.post("/subscribe", data=data).status_code == 403  # no token, no cookie
    token = csrf_token(web, "/")
    assert web.post("/subscribe", data={**data, "csrf_token": token + "x"}).status_code == 403  # tampered
    from fastapi.testclient import TestClient
    other = TestClient(web.app)  # another browser: its own cookie, so this page's token is not valid there
    csrf_token(other, "/")
    assert other.post("/subscribe", data={**data, "csrf_token": token}).status_code == 403
    web.cookies.clear()
    assert web.post("/subscribe", data={**data, "csrf_token": token}).status_code == 403  # cookie gone
    assert session.exec(select(Subscriber)).all() == [] and received(sink) == []
    response = web.post("/subscribe", data={**data, "csrf_token": csrf_token(web, "/")})
    assert response.status_code == 200 and find_subscriber(session, "ada@example.org")


def test_sign_ups_are_limited_per_client(session, web, sink, settings):
    settings.subscribe_limit_per_ip = 3
    statuses = [sign_up(web, f"user{n}@example.org").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = sign_up(web, "user9@example.org", interests="Kept after a 429")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 3600
    assert "Too many sign-ups from here just now. Nothing was lost" in limited.text  # beside the button, and
    assert 'value="user9@example.org"' in limited.text and "Kept after a 429</textarea>" in limited.text  # kept
    assert len(received(sink)) == 3 and find_subscriber(session, "user9@example.org") is None


def test_sign_ups_are_limited_per_address(session, web, sink, settings):
    settings.subscribe_limit_per_address = 2
    statuses = [sign_up(web, address).status_code
                for address in ("ada@example.org", "ADA@example.org", "ada@EXAMPLE.org", "bob@example.org")]
    assert statuses == [200, 200, 429, 200]
    # one mailbox, one subscriber: the second request is for the same (pending) subscription
    assert [m["To"] for m in received(sink)] == ["ada@example.org", "ada@example.org", "bob@example.org"]


@pytest.mark.redis
def test_redis_backed_limits_are_shared_by_every_web_worker(session, sink, settings, redis_url):
    from fastapi.testclient import TestClient

    from newsletter.web.app import create_app

    settings.rate_limit_store, settings.subscribe_limit_per_ip = "redis", 2
    first, second = TestClient(create_app(settings)), TestClient(create_app(settings))  # two workers, one Redis
    assert sign_up(first, "a@example.org").status_code == 200
    assert sign_up(second, "b@example.org").status_code == 200
    assert sign_up(first, "c@example.org").status_code == 429
    assert redis.Redis.from_url(redis_url).keys(f"{settings.redis_key_prefix}newsletter:ratelimit:*")


def test_an_unreachable_redis_does_not_block_sign_ups(session, sink, settings):
    import socket

    from fastapi.testclient import TestClient

    from newsletter.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.rate_limit_store, settings.redis_url = "redis", f"redis://127.0.0.1:{closed_port}/0"
    assert sign_up(TestClient(create_app(settings)), "ada@example.org").status_code == 200
    assert find_subscriber(session, "ada@example.org") is not None


def test_an_expired_confirmation_link_offers_a_new_one(session, web, sink, settings, monkeypatch):
    sign_up(web, "ada@example.org")
    subscriber = find_subscriber(session, "ada@example.org")
    assert subscriber is not None
    old = make_old_token(monkeypatch, "confirm", subscriber, 8, settings)
    expired = web.get(f"/confirm/{old}")
    assert expired.status_code == 400 and "This link has expired" in expired.text
    assert f'action="/renew/confirm/{old}"' in expired.text
    token = expired.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert web.post(f"/renew/confirm/{old}", data={}).status_code == 403  # CSRF applies here too
    renewed = web.post(f"/renew/confirm/{old}", data={"csrf_token": token})
    assert renewed.status_code == 200 and "A new link is on its way" in renewed.text
    fresh = received(sink)[-1]
    assert fresh["Subject"] == "Confirm your Paper Digest subscription"
    assert web.post(url_path(links(fresh, "/confirm/")[0])).status_code == 200
    session.refresh(subscriber)
    assert subscriber.status == "active"


def test_bad_tampered_and_cross_purpose_confirmation_links_get_a_clear_page(settings, session, web, monkeypatch):
    sign_up(web, "ada@example.org")
    subscriber = find_subscriber(session, "ada@example.org")
    assert subscriber is not None
    good = make_token("confirm", subscriber.id, subscriber.email, settings)
    for token in ("garbage", good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                  make_token("unsubscribe", subscriber.id, subscriber.email, settings),
                  make_token("preferences", subscriber.id, subscriber.email, settings),
                  make_token("confirm", subscriber.id, "someone.else@example.org", settings),
                  make_token("confirm", subscriber.id + 1, subscriber.email, settings)):
        for response in (web.get(f"/confirm/{token}"), web.post(f"/confirm/{token}")):
            assert response.status_code == 400 and "This link does not work" in response.text
            assert "Traceback" not in response.text
    session.refresh(subscriber)
    assert subscriber.status == "pending"
    old_unsubscribe = make_old_token(monkeypatch, "unsubscribe", subscriber, 400, settings)
    assert web.post(f"/renew/unsubscribe/{old_unsubscribe}",
                    data={"csrf_token": csrf_token(web, "/")}).status_code == 404  # only confirm/preferences renew


def test_a_bounced_address_cannot_be_confirmed(settings, session, web):
    subscriber = add_active(session, "gone@example.org")
    subscriber.status = "bounced"
    session.commit()
    link = f"/confirm/{make_token('confirm', subscriber.id, subscriber.email, settings)}"
    for response in (web.get(link), web.post(link)):
        assert response.status_code == 409 and "cannot be subscribed" in response.text
    session.refresh(subscriber)
    assert subscriber.status == "bounced"


def test_two_sign_ups_of_one_new_address_at_once_make_one_subscriber(session, settings, monkeypatch):
    """The later request looked before the earlier one wrote: its insert collides and it is answered as for a
    known address (no error page)."""
    import subscribers.consent as consent

    first, owed = consent.request_subscription(session, "ada@example.org")
    session.commit()
    looks: list[str] = []  # the later request's first look happened before the earlier one committed
    real_find = consent.find_subscriber

    def later_find(s, a):
        looks.append(a)
        return real_find(s, a) if len(looks) > 1 else None

    monkeypatch.setattr(consent, "find_subscriber", later_find)
    second, owed_again = consent.request_subscription(session, "ada@example.org")
    session.commit()
    assert (owed, owed_again) == (consent.CONFIRM, consent.CONFIRM) and first.id == second.id
    assert len(session.exec(select(Subscriber)).all()) == 1


def test_a_confirmation_email_the_server_defers_is_retried_and_a_refused_one_is_not(session, settings,
                                                                                   scripted_smtp, caplog):
    from newsletter.notices import confirmation_email, send_notice
    from tests.helpers import configured

    smtp_settings = configured(settings, scripted_smtp)
    ada = add_active(session, "ada@example.org")
    scripted_smtp.handler.next_data("451", "drop")  # two temporary failures, then the server accepts
    assert send_notice(ada.email, confirmation_email(ada, smtp_settings), smtp_settings, retry_delays=(0.01, 0.01))
    assert [e.rcpt_tos for e in scripted_smtp.handler.accepted] == [["ada@example.org"]]
    assert scripted_smtp.handler.data_attempts == 3

    scripted_smtp.handler.next_data("554")  # refused: retrying would not help
    assert not send_notice(ada.email, confirmation_email(ada, smtp_settings), smtp_settings, retry_delays=(0.01,))
    assert scripted_smtp.handler.data_attempts == 4 and len(scripted_smtp.handler.accepted) == 1

    scripted_smtp.handler.next_data("451", "451")  # still failing when the retries run out
    assert not send_notice(ada.email, confirmation_email(ada, smtp_settings), smtp_settings, retry_delays=(0.01,))
    gave_up = [r.fields for r in caplog.records if r.getMessage() == "notice not sent"]
    assert gave_up[-1]["error"] == "still failing after 2 attempts" and gave_up[-1]["to"] == "ada@example.org"


def test_trending_is_filled_with_the_newest_papers_when_few_have_upvotes(session, settings, web, tmp_path):
    """Issue 15 item 6: on a day when only some papers have upvotes the home page still shows five."""
    from newsletter.ingest import ingest
    from tests.conftest import FIXTURES

    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)  # three papers with upvotes
    listing = tmp_path / "new.txt"
    listing.write_text("".join(f"A new paper number {n}\nIts abstract, sentence {n}.\n" for n in range(4)))
    ingest(session, str(listing), settings)  # four without
    session.commit()
    page = web.get("/").text
    assert "Trending and new today" in page and page.count('class="paper-title"') == 5
    votes = re.findall(r"▲ (\d+)", page)
    assert votes == ["42", "17", "5"]  # the upvoted ones first, most upvoted first, then the newest


def test_the_home_page_links_a_sample_edition(session, settings, web):
    from tests.helpers import planned

    planned(session, settings)
    home = web.get("/").text
    assert '<a href="/sample">See what you\'d get</a>' in home
    sample = web.get("/sample")
    assert sample.status_code == 200 and re.search(r"\d+ papers? for you today", sample.text)
    assert not re.search(r"/(unsubscribe|preferences|feedback|view)/", sample.text)  # no signed link in it


def test_notice_emails_declare_the_configured_language_and_keep_the_doctype(session, settings):
    from newsletter.notices import confirmation_email

    ada = add_active(session, "ada@example.org")
    for language in ("en", "de"):
        html = confirmation_email(ada, settings.model_copy(update={"language": language})).html
        assert html.lower().startswith("<!doctype html>")
        assert re.search(rf'<html[^>]* lang="{language}"', html), html[:300]
