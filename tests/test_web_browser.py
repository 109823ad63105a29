"""A person uses the site in a real browser (Debian's Chromium through Playwright) against uvicorn on loopback,
with their mail going to a real SMTP server. Screenshots of every page go to test-artifacts/web/."""

import time

import pytest

from newsletter.clock import today
from newsletter.jobs import run_daily
from subscribers.profiles import find_subscriber
from tests.helpers import add_active, html_part, ingest_sample, links, received

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 375, "height": 812}


def wait_for_mail(sink, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(received(sink)) < count:
        assert time.monotonic() < deadline, f"expected {count} emails, got {len(received(sink))}"
        time.sleep(0.05)
    return received(sink)[count - 1]


@pytest.fixture
def shots(artifacts_dir):
    folder = artifacts_dir / "web"
    folder.mkdir(exist_ok=True)
    return folder


def shoot(page, folder, name):
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def open_page(browser, viewport=DESKTOP, **options):
    context = browser.new_context(viewport=viewport, timezone_id="Europe/Paris", **options)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return context, page, problems


def test_a_person_subscribes_confirms_tunes_and_unsubscribes(settings, browser, shots, session, sink, live_server):
    ingest_sample(session)
    context, page, problems = open_page(browser)
    page.goto(live_server.url + "/")
    assert page.locator("select[name=timezone]").input_value() == "Europe/Paris"  # detected by the browser
    shoot(page, shots, "01-home")
    page.fill("#email", "ada@example.org")
    page.fill("#interests", "Making LLM inference cheaper: KV cache compression & quantization")
    page.locator("label.chip", has_text="RAG").click()
    page.fill("#keywords", "KV cache")
    page.locator("label.chip", has_text="Weekly").click()
    page.select_option("#send_hour", "6")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")
    shoot(page, shots, "02-check-inbox")

    confirmation = wait_for_mail(sink, 1)
    assert confirmation["To"] == "ada@example.org"
    page.set_content(html_part(confirmation))
    shoot(page, shots, "02b-confirmation-email")
    page.goto(links(confirmation, "/confirm/")[0])
    shoot(page, shots, "02c-confirm-page")
    page.click("text=Yes, subscribe me")
    page.wait_for_selector("text=You are subscribed")
    shoot(page, shots, "03-confirmed")
    subscriber = find_subscriber(session, "ada@example.org")
    assert subscriber is not None
    assert (subscriber.status, subscriber.timezone, subscriber.frequency, subscriber.send_hour, subscriber.keywords) \
        == ("active", "Europe/Paris", "weekly", 6, ["KV cache", "RAG"])

    page.click("text=Open my preferences")
    page.wait_for_selector("text=Your preferences")
    page.fill("#followed_authors", "Tri Dao")
    page.fill("#excluded_keywords", "robotics")
    page.locator("label.chip", has_text="Daily").click()
    page.select_option("#timezone", "America/New_York")
    page.click("text=Save preferences")
    page.wait_for_selector("text=Saved.")
    shoot(page, shots, "04-preferences-saved")
    session.refresh(subscriber)
    assert (subscriber.followed_authors, subscriber.excluded_keywords, subscriber.frequency, subscriber.timezone) \
        == (["Tri Dao"], ["robotics"], "daily", "America/New_York")

    run_daily(session, today(), settings)
    edition = wait_for_mail(sink, 2)
    page.goto(links(edition, "/view/")[0])
    shoot(page, shots, "05-view-in-browser")
    page.goto(links(edition, "/feedback/")[0])  # one tap: the page records at once (tests/test_feedback.py)
    page.wait_for_selector("text=Thanks, noted")
    shoot(page, shots, "06-feedback")
    page.goto(links(edition, "/preferences/")[0])
    assert page.locator("text=10 papers").count() == 1  # the edition just received is listed
    assert page.locator("ul.judged li").count() == 1  # so is the paper just judged, with a Forget button
    shoot(page, shots, "07-preferences-with-editions")
    page.click("ul.judged button:has-text('Forget')")
    page.wait_for_selector("text=Forgotten:")
    assert page.locator("ul.judged li").count() == 0

    page.goto(links(edition, "/unsubscribe/")[0])
    shoot(page, shots, "08-unsubscribe")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are unsubscribed")
    shoot(page, shots, "09-unsubscribed")
    session.refresh(subscriber)
    assert subscriber.status == "unsubscribed"
    assert problems == []
    context.close()


def test_pages_fit_a_375px_phone(settings, browser, shots, session, sink, live_server):
    ingest_sample(session)
    add_active(session, "ada@example.org", "LLM inference", "KV cache")
    run_daily(session, today(), settings)  # after live_server: links point at it
    edition = wait_for_mail(sink, 1)
    context, page, problems = open_page(browser, viewport=MOBILE, is_mobile=True, has_touch=True)
    pages = {"home": "/", "archive": "/archive", "archive-day": f"/archive/{today().isoformat()}",
             "preferences": links(edition, "/preferences/")[0], "feedback": links(edition, "/feedback/")[0],
             "unsubscribe": links(edition, "/unsubscribe/")[0], "bad-link": "/preferences/not-a-token",
             "not-found": "/no-such-page"}
    for name, url in pages.items():
        page.goto(url if url.startswith("http") else live_server.url + url)
        shoot(page, shots, f"mobile-{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], f"{name} is {width}px wide"
    # the bad-link and not-found pages:
    assert [p.split("status of ")[-1] for p in problems] == ["400 (Bad Request)", "404 (Not Found)"]
    context.close()


def test_the_site_works_without_javascript(browser, session, sink, live_server):
    context, page, _ = open_page(browser, java_script_enabled=False)
    page.goto(live_server.url + "/")
    assert page.locator("select[name=timezone]").input_value() == "UTC"  # the fallback select
    page.select_option("#timezone", "Asia/Tokyo")
    page.fill("#email", "grace@example.org")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")
    page.goto(links(wait_for_mail(sink, 1), "/confirm/")[0])
    page.click("text=Yes, subscribe me")
    page.wait_for_selector("text=You are subscribed")
    grace = find_subscriber(session, "grace@example.org")
    assert grace is not None
    assert grace.timezone == "Asia/Tokyo"
    context.close()


def test_the_admin_preview_in_the_browser(settings, browser, shots, session, sink, live_server):
    ingest_sample(session)
    add_active(session, "ada@example.org", "LLM inference", "KV cache")
    run_daily(session, today(), settings)  # after live_server: links point at it
    context, page, problems = open_page(browser)
    page.goto(f"{live_server.url}/admin?token=test-admin-token")
    shoot(page, shots, "10-admin")
    page.fill("#subscriber", "ada@example.org")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("text=Text part")
    for frame in ("iframe.desktop", "iframe.mobile"):  # the framed email renders at both widths
        page.frame_locator(frame).locator("text=for you today").wait_for()
    shoot(page, shots, "11-admin-preview")
    page.locator(".frames").screenshot(path=str(shots / "12-admin-preview-frames.png"))
    page.goto(f"{live_server.url}/admin")
    assert page.url == f"{live_server.url}/admin"  # signed in by a cookie: no token in the address
    page.click("text=Sign out")
    page.wait_for_selector("text=Admin only")
    page.fill("#token", "test-admin-token")
    page.click("text=Sign in")
    page.wait_for_selector("text=Recent editions")
    assert problems == [] or all("401" in p for p in problems)
    context.close()


PHONE = {"width": 375, "height": 667}  # the first screen of a small phone


def in_first_screen(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]


def in_view(page, selector: str) -> bool:
    return page.locator(selector).evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }")


def test_the_sign_up_form_converts_on_a_phone(settings, browser, shots, session, sink, live_server):
    """Issue 15 item 6: the email field in the first screen; after a server-side error (or a 429) the error is in
    view beside its field, in plain words, and everything typed is still there."""
    from tests.helpers import planned

    planned(session, settings)  # a few papers with upvotes: the showcase and the sample edition have content
    context, page, problems = open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/")
    assert in_first_screen(page, "#email")
    page.screenshot(path=str(shots / "signup-375-first-screen.png"))  # the first screen only
    assert page.locator("a", has_text="See what you'd get").count() == 1

    page.fill("#email", "ada@example")  # the browser's own check lets it through; the server refuses it
    page.fill("#interests", "Typed before the error")
    page.locator("label.chip").first.click()
    page.click("button[type=submit]")
    page.wait_for_selector("#email-error")
    expected = "The part after the @ should be a domain name, like example.org."
    assert page.locator("#email-error").inner_text() == expected
    assert in_view(page, "#email-error") and page.evaluate("document.activeElement.id") == "email"
    assert page.input_value("#interests") == "Typed before the error" and page.input_value("#email") == "ada@example"
    assert page.locator("label.chip input").first.is_checked()
    shoot(page, shots, "signup-375-error")
    page.screenshot(path=str(shots / "signup-375-error-first-screen.png"))

    settings.subscribe_limit_per_ip = 0  # the next sign-up from here is one too many
    page.fill("#email", "ada@example.org")
    page.click("button[type=submit]")
    page.wait_for_selector("#form-error")
    assert "Nothing was lost" in page.locator("#form-error").inner_text() and in_view(page, "#form-error")
    assert page.input_value("#email") == "ada@example.org"
    assert page.input_value("#interests") == "Typed before the error"
    assert page.locator("label.chip input").first.is_checked()
    page.screenshot(path=str(shots / "signup-375-429.png"))
    assert find_subscriber(session, "ada@example.org") is None
    assert all("422" in p or "429" in p for p in problems), problems
    page.goto(live_server.url + "/sample")
    page.wait_for_selector("text=papers for you today")
    shoot(page, shots, "signup-375-sample-edition")
    context.close()
