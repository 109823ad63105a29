"""The pages a reader reaches from an email: preferences, feedback, unsubscribe, view in browser, and the archive."""

import time

from markupsafe import escape
from sqlmodel import col, select

from newsletter.clock import today
from newsletter.jobs import run_daily
from newsletter.models import Delivery, Edition, Event, Feedback, Paper, Pick
from newsletter.render.latex import readable
from subscribers.tokens import make_token, read_token
from tests.helpers import add_active, csrf_token, html_part, ingest_sample, links, received, text_part, url_path


def first_edition(session, smtp_settings, sink, email="ada@example.org", **profile):
    ingest_sample(session)
    subscriber = add_active(session, email, profile.pop("interests", "language model inference"),
                            profile.pop("keywords", "KV cache"), **profile)
    run_daily(session, today(), smtp_settings)
    return subscriber, received(sink)[-1]


def preferences_form(**fields):
    return {"interests": "", "keywords": "", "followed_authors": "", "excluded_keywords": "",
            "frequency": "daily", "send_hour": "7", "timezone": "UTC", **fields}


def test_every_email_links_to_preferences_view_in_browser_and_archive(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    for path in ("/preferences/", "/view/", "/unsubscribe/"):
        [link] = links(message, path)
        assert link.startswith("https://digest.example.org" + path) and link in html_part(message)
    assert "Archive: https://digest.example.org/archive" in text_part(message)
    view = web.get(url_path(links(message, "/view/")[0]))
    assert view.status_code == 200 and view.headers["X-Robots-Tag"] == "noindex"
    from html import unescape
    titles = session.exec(select(Paper.title).join(Pick, col(Pick.paper_id) == Paper.id)).all()
    shown = " ".join(unescape(view.text).split())  # the email's HTML is wrapped in short lines, ASCII-only
    assert len(titles) == 10 and all(" ".join(readable(title).split()) in shown for title in titles)


def test_preferences_show_the_profile_and_the_editions_received(settings, session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink, interests="<script>alert(1)</script> LLMs")
    page = web.get(url_path(links(message, "/preferences/")[0]))
    assert page.status_code == 200 and "ada@example.org" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; LLMs</textarea>" in page.text and "<script>alert" not in page.text
    assert 'value="KV cache"' in page.text
    assert today().strftime("%B ") + str(today().day) in page.text and "10 papers" in page.text
    view_link = page.text.split('<a href="/view/')[1].split('"')[0]
    assert web.get(f"/view/{view_link}").status_code == 200
    unsubscribe_action = page.text.split('<form method="post" action="/unsubscribe/')[1].split('"')[0]
    assert read_token("unsubscribe", unsubscribe_action, settings)["s"] == subscriber.id


def test_saving_preferences_updates_every_field_and_pausing_stops_mail(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    url = url_path(links(message, "/preferences/")[0])
    form = preferences_form(
        csrf_token=csrf_token(web, url), interests="Speculative decoding", keywords="speculative decoding, MoE",
        followed_authors="Tri Dao", excluded_keywords="robotics", frequency="weekly", send_hour="18",
        timezone="Asia/Tokyo", paused="1")
    saved = web.post(url, data=form)
    assert saved.status_code == 200 and "Saved." in saved.text and "paused: nothing is sent" in saved.text
    session.refresh(subscriber)
    assert (subscriber.interests, subscriber.keywords, subscriber.followed_authors, subscriber.excluded_keywords,
            subscriber.frequency, subscriber.send_hour, subscriber.timezone, subscriber.paused) == (
        "Speculative decoding", ["speculative decoding", "MoE"], ["Tri Dao"], ["robotics"], "weekly", 18,
        "Asia/Tokyo", True)
    from datetime import timedelta
    report = run_daily(session, today() + timedelta(days=1), smtp_settings)
    assert report.plan.planned == 0 and len(received(sink)) == 1  # paused: planned for nobody, nothing sent
    resumed = web.post(url, data={**form, "paused": ""})
    session.refresh(subscriber)
    assert resumed.status_code == 200 and subscriber.paused is False
    assert [e.kind for e in session.exec(select(Event).where(Event.kind == "preferences_update"))] == [
        "preferences_update"] * 2


def test_bad_preferences_are_refused_with_what_was_typed_kept(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    url = url_path(links(message, "/preferences/")[0])
    token = csrf_token(web, url)
    for fields, error in [({"timezone": "Mars/Olympus"}, "Choose your time zone from the list."),
                          ({"send_hour": "24"}, "Choose an hour between 00:00 and 23:00."),
                          ({"keywords": "MoE,\rKV"}, "Please remove the line breaks from this field."),
                          ({"interests": "x" * 2001}, "Please shorten this to 2000 characters or fewer.")]:
        response = web.post(url, data=preferences_form(csrf_token=token, followed_authors="Kept Author", **fields))
        assert response.status_code == 422 and 'value="Kept Author"' in response.text
        assert f'id="{next(iter(fields))}-error">{error}</p>' in response.text  # beside its field
    assert web.post(url, data=preferences_form(interests="changed")).status_code == 403  # no CSRF token
    session.refresh(subscriber)
    assert subscriber.interests == "language model inference" and subscriber.followed_authors == []


def test_preference_links_are_bound_to_their_purpose_and_subscriber(settings, session, web, monkeypatch):
    ada = add_active(session, "ada@example.org")
    for token in ("x", make_token("unsubscribe", ada.id, ada.email, settings),
                  make_token("feedback", ada.id, ada.email, settings),
                  make_token("preferences", ada.id, "grace@example.org", settings),
                  make_token("preferences", ada.id, ada.email, settings)[:-3] + "abc"):
        response = web.get(f"/preferences/{token}")
        assert response.status_code == 400 and "This link does not work" in response.text
    with monkeypatch.context() as patch:
        patch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda self: int(time.time()) - 91 * 86400)
        old = make_token("preferences", ada.id, ada.email, settings)
    expired = web.get(f"/preferences/{old}")
    assert expired.status_code == 400 and "This link has expired" in expired.text


def test_an_expired_preferences_link_mails_a_fresh_one(settings, session, web, sink, monkeypatch):
    ada = add_active(session, "ada@example.org")
    with monkeypatch.context() as patch:
        patch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda self: int(time.time()) - 91 * 86400)
        old = make_token("preferences", ada.id, ada.email, settings)
    token = web.get(f"/preferences/{old}").text.split('name="csrf_token" value="')[1].split('"')[0]
    assert web.post(f"/renew/preferences/{old}", data={"csrf_token": token}).status_code == 200
    [message] = received(sink)
    assert message["Subject"] == "Your Paper Digest preferences link"
    assert web.get(url_path(links(message, "/preferences/")[0])).status_code == 200


def test_feedback_is_recorded_by_the_button_not_by_opening_the_link(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    more = url_path(links(message, "/feedback/")[0])
    shown = web.get(more)
    assert shown.status_code == 200 and "More like this" in shown.text
    assert session.exec(select(Feedback)).all() == []  # a GET (a link scanner) records nothing
    assert web.post(more, data={}).status_code == 403
    done = web.post(more, data={"csrf_token": csrf_token(web, more)})
    assert done.status_code == 200 and "Thanks, noted" in done.text
    [feedback] = session.exec(select(Feedback)).all()
    assert (feedback.subscriber_id, feedback.kind) == (subscriber.id, "more")
    less = url_path(links(message, "/feedback/")[1])  # the same paper's other link: the latest judgement counts
    assert "Less like this" in web.get(less).text
    web.post(less, data={"csrf_token": csrf_token(web, less)})
    session.expire_all()
    assert [f.kind for f in session.exec(select(Feedback))] == ["less"]


def test_preferences_list_the_judged_papers_and_forget_one(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    for link in links(message, "/feedback/")[:4:2]:  # "more like this" of the first two papers
        web.post(url_path(link), data={"csrf_token": csrf_token(web, url_path(link))})
    less = url_path(links(message, "/feedback/")[5])  # "less like this" of the third
    web.post(less, data={"csrf_token": csrf_token(web, less)})
    judged = {f.paper_id: f.kind for f in session.exec(select(Feedback))}
    titles = {p.id: p.title for p in session.exec(select(Paper).where(col(Paper.id).in_(list(judged))))}
    url = url_path(links(message, "/preferences/")[0])
    page = web.get(url)
    more_part, less_part = page.text.split("More like these")[1].split("Less like these")
    assert list(judged.values()).count("more") == 2
    for paper_id, kind in judged.items():
        assert escape(titles[paper_id]) in (more_part if kind == "more" else less_part)

    forgotten = next(pid for pid, kind in judged.items() if kind == "more")
    form = {"csrf_token": csrf_token(web, url), "paper_id": str(forgotten)}
    assert web.post(f"{url}/forget", data={"paper_id": str(forgotten)}).status_code == 403  # CSRF applies
    done = web.post(f"{url}/forget", data=form)
    assert done.status_code == 200 and "Forgotten: " + str(escape(titles[forgotten])) in done.text
    session.expire_all()
    assert forgotten not in {f.paper_id for f in session.exec(select(Feedback))} and len(judged) == 3
    assert session.exec(select(Event).where(Event.kind == "feedback_forget")).one().detail["paper_id"] == forgotten
    again = web.post(f"{url}/forget", data=form)
    assert again.status_code == 200 and "nothing to forget" in again.text
    assert web.post(f"{url}/forget", data={**form, "paper_id": "x"}).status_code == 422


def test_feedback_links_are_checked(settings, session, web):
    ada = add_active(session, "ada@example.org")
    for token in ("nope", make_token("preferences", ada.id, ada.email, settings),
                  make_token("feedback", ada.id, ada.email, settings, {"p": 1, "k": "sideways"}),
                  make_token("feedback", ada.id, ada.email, settings, {"p": "1", "k": "more"})):
        assert web.get(f"/feedback/{token}").status_code == 400
    gone = make_token("feedback", ada.id, ada.email, settings, {"p": 999, "k": "more"})
    assert web.get(f"/feedback/{gone}").status_code == 404


def test_one_click_unsubscribe_then_subscribe_again(session, smtp_settings, sink, web):
    subscriber, message = first_edition(session, smtp_settings, sink)
    path = url_path(links(message, "/unsubscribe/")[0])
    page = web.get(path)
    assert page.status_code == 200 and "csrf_token" not in page.text
    web.cookies.clear()
    done = web.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert done.status_code == 200 and "set-cookie" not in done.headers and "You are unsubscribed" in done.text
    session.refresh(subscriber)
    assert subscriber.status == "unsubscribed"
    prefs = web.get(url_path(links(message, "/preferences/")[0]))
    assert "unsubscribed: nothing is sent" in prefs.text and "Save preferences" in prefs.text

    again = web.post("/subscribe", data={"csrf_token": csrf_token(web, "/"), "email": "ada@example.org",
                                         "timezone": "UTC"})
    assert again.status_code == 200
    confirm = received(sink)[-1]
    assert confirm["Subject"] == "Confirm your Paper Digest subscription"
    assert web.post(url_path(links(confirm, "/confirm/")[0])).status_code == 200
    session.refresh(subscriber)
    assert subscriber.status == "active" and subscriber.unsubscribed_at is None


def test_the_archive_lists_editions_and_shows_each_days_papers(session, smtp_settings, sink, web):
    first_edition(session, smtp_settings, sink)
    index = web.get("/archive")
    assert index.status_code == 200 and f'href="/archive/{today().isoformat()}"' in index.text
    day = web.get(f"/archive/{today().isoformat()}")
    assert day.status_code == 200 and day.text.count('class="paper-title"') == 15
    assert web.get("/archive/2001-01-01").status_code == 404
    assert web.get("/archive/not-a-date").status_code == 422
    from datetime import timedelta
    session.add(Edition(date=today() + timedelta(days=1)))
    session.commit()
    assert web.get(f"/archive/{(today() + timedelta(days=1)).isoformat()}").status_code == 404  # not published yet


def test_archive_pages_escape_paper_fields(settings, session, web):
    from newsletter.ingest import ingest
    from tests.conftest import FIXTURES
    ingest(session, str(FIXTURES / "hf_daily_papers.json"), settings)
    session.add(Edition(date=today()))
    session.commit()
    page = web.get(f"/archive/{today().isoformat()}").text
    assert "Trending papers" in page
    assert "KV-Cache Compression &lt;b&gt;for&lt;/b&gt; Long-Context LLMs &amp; Beyond" in page
    assert "<b>for</b>" not in page
    home = web.get("/").text
    assert "Trending today" in home and "&lt;b&gt;for&lt;/b&gt;" in home


def test_view_links_are_checked(settings, session, smtp_settings, sink, web):
    subscriber, _ = first_edition(session, smtp_settings, sink)
    other_day = make_token("view", subscriber.id, subscriber.email, settings, {"d": "2001-01-01"})
    assert web.get(f"/view/{other_day}").status_code == 404
    for token in (make_token("view", subscriber.id, subscriber.email, settings, {"d": "garbage"}),
                  make_token("preferences", subscriber.id, subscriber.email, settings), "tampered"):
        assert web.get(f"/view/{token}").status_code == 400
    assert session.exec(select(Delivery)).first().status == "sent"
