"""One-tap "more / less like this": a browser records at once, exactly once, with an Undo; a mail scanner that
fetches every link of an email (GETs, following redirects) records nothing; without JavaScript the button works."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import col, func, select

from newsletter.clock import today
from newsletter.jobs import run_daily
from newsletter.models import Event, Feedback
from tests.helpers import add_active, csrf_token, ingest_sample, received, url_path
from tests.helpers import links as links_in


def an_edition(session, settings, sink):
    ingest_sample(session)
    add_active(session, "ada@example.org", "language model inference", "KV cache")
    run_daily(session, today(), settings)
    return received(sink)[-1]


def judgements(session) -> list[tuple[int, str]]:
    session.expire_all()
    return [(f.paper_id, f.kind) for f in session.exec(select(Feedback))]


def events(session, kind: str) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Event).where(col(Event.kind) == kind)).one()


def test_a_mail_scanner_fetching_every_link_records_nothing(settings, session, sink, live_server):
    message = an_edition(session, settings, sink)
    every_link = links_in(message, "/")
    feedback_links = links_in(message, "/feedback/")
    assert len(feedback_links) == 20  # more and less for each of the 10 picks
    with httpx.Client(follow_redirects=True, timeout=10) as scanner:
        for link in every_link:
            if link.startswith(live_server.url):
                assert scanner.get(link).status_code == 200, link
    assert judgements(session) == [] and events(session, "feedback") == 0
    page = httpx.get(feedback_links[0]).text
    assert 'src="/static/feedback.js"' in page and "<button" in page  # the script, and the button without it
    script = httpx.get(f"{live_server.url}/static/feedback.js")
    assert script.status_code == 200 and "form.submit()" in script.text


def test_the_button_records_then_the_page_offers_undo(settings, session, sink, web):
    message = an_edition(session, settings, sink)
    more = url_path(links_in(message, "/feedback/")[0])
    assert web.post(more, data={}).status_code == 403  # CSRF applies
    done = web.post(more, data={"csrf_token": csrf_token(web, more)})
    assert done.status_code == 200 and "Thanks, noted" in done.text and "Undo" in done.text
    assert "feedback.js" not in done.text  # nothing left to submit
    [(paper_id, kind)] = judgements(session)
    assert kind == "more" and events(session, "feedback") == 1
    again = web.get(more)  # opening the link again (or reloading) shows the thanks; records nothing more
    assert "Thanks, noted" in again.text and events(session, "feedback") == 1
    undone = web.post(f"{more}/undo", data={"csrf_token": csrf_token(web, more)})
    assert undone.status_code == 200 and "Undone" in undone.text and "feedback.js" not in undone.text
    assert judgements(session) == [] and events(session, "feedback_forget") == 1
    assert "feedback.js" in web.get(more).text  # the link works again as new


@pytest.mark.browser
def test_one_tap_in_a_browser_records_exactly_once_and_undo_forgets(settings, session, sink, live_server, browser,
                                                                      artifacts_dir):
    message = an_edition(session, settings, sink)
    more, less = links_in(message, "/feedback/")[:2]
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.goto(more)  # what tapping "▲" in the email does
    page.wait_for_selector("text=Thanks, noted")
    page.screenshot(path=str(artifacts_dir / "feedback-375.png"), full_page=True)
    [(paper_id, kind)] = judgements(session)
    assert kind == "more" and events(session, "feedback") == 1 and len(posts) == 1
    page.reload()
    page.wait_for_selector("text=Thanks, noted")
    page.go_back()
    page.goto(more)
    page.wait_for_selector("text=Thanks, noted")
    assert events(session, "feedback") == 1 and len(posts) == 1  # exactly once
    undo = page.locator("button", has_text="Undo")
    box = undo.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 44
    undo.click()
    page.wait_for_selector("text=Undone")
    assert judgements(session) == [] and events(session, "feedback_forget") == 1
    page.goto(less)  # the same paper's other link: recorded at once too
    page.wait_for_selector("text=Thanks, noted")
    assert judgements(session) == [(paper_id, "less")]
    context.close()


@pytest.mark.browser
def test_without_javascript_the_button_records(settings, session, sink, live_server, browser):
    message = an_edition(session, settings, sink)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(links_in(message, "/feedback/")[0])
    page.wait_for_selector("text=More like this?")
    assert judgements(session) == []
    page.click("button[type=submit]")
    page.wait_for_selector("text=Thanks, noted")
    assert len(judgements(session)) == 1
    context.close()
