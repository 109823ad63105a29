"""The edition email in a real browser (headless Chromium): phone and desktop widths, dark mode, screenshots.

Screenshots go to test-artifacts/ (email-375.png, email-600.png, email-600-dark.png) for people to look at.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from newsletter.config import Settings
from newsletter.render import render_edition
from tests.support.samples import worst_case_edition

pytestmark = pytest.mark.browser

OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map(e => e.tagName + '.' + e.className)"""


@pytest.fixture(scope="module")
def email_html() -> str:
    """The worst case: longest sample papers, every link, plus a title with one very long word."""
    settings = Settings(secret_key="browser-tests", base_url="https://digest.example.org", _env_file=None)
    edition = worst_case_edition(settings)
    first = edition["papers"][0]
    edition["papers"][0] = replace(first, title=first.title + " " + "Hyperparameterization" * 8)
    return render_edition(**edition).html


@pytest.fixture
def open_email(browser, email_html):
    contexts = []

    def open_at(width: int, scheme: str = "light"):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                      java_script_enabled=True, offline=True)
        contexts.append(context)
        page = context.new_page()
        page.set_content(email_html, wait_until="load")
        return page

    yield open_at
    for context in contexts:
        context.close()


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_phone_width_has_no_horizontal_overflow_and_stacks(open_email, artifacts_dir):
    page = open_email(375)
    page.screenshot(path=str(artifacts_dir / "email-375.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate(OVERFLOWING) == []
    brand, date = box(page, ".brand"), box(page, ".date")
    assert date["y"] >= brand["y"] + brand["height"]  # header columns stacked
    assert box(page, ".title")["width"] <= 375 - 2 * 24 + 1  # the long word wraps inside the card


def test_desktop_width_is_600_px_with_columns_side_by_side(open_email, artifacts_dir):
    page = open_email(800)
    page.screenshot(path=str(artifacts_dir / "email-800.png"), full_page=True)
    card = box(page, ".sheet")
    assert card["width"] == 600
    page = open_email(600)
    page.screenshot(path=str(artifacts_dir / "email-600.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 600
    brand, date = box(page, ".brand"), box(page, ".date")
    assert abs(date["y"] - brand["y"]) < 4 and date["x"] > brand["x"] + brand["width"]
    address, notice = box(page, ".address"), box(page, ".foot")
    assert address["x"] > notice["x"] + notice["width"] - 1  # footer columns side by side


def test_inlined_styles_apply(open_email):
    page = open_email(600)
    style = "(selector) => getComputedStyle(document.querySelector(selector))"
    assert page.evaluate(f"({style})('.why').color") == "rgb(26, 127, 55)"
    assert page.evaluate(f"({style})('.title').fontSize") == "18px"
    assert page.evaluate(f"({style})('.pill').borderTopLeftRadius") == "14px"
    assert page.evaluate(f"({style})('body').backgroundColor") == "rgb(246, 248, 250)"


def test_dark_mode(open_email, artifacts_dir):
    page = open_email(600, "dark")
    page.screenshot(path=str(artifacts_dir / "email-600-dark.png"), full_page=True)
    style = "(selector) => getComputedStyle(document.querySelector(selector))"
    assert page.evaluate(f"({style})('body').backgroundColor") == "rgb(13, 17, 23)"
    assert page.evaluate(f"({style})('.sheet').backgroundColor") == "rgb(22, 27, 34)"
    assert page.evaluate(f"({style})('.title').color") == "rgb(121, 192, 255)"
    assert page.evaluate(f"({style})('.snippet').color") == "rgb(230, 237, 243)"
    assert page.evaluate(f"({style})('.why').color") == "rgb(86, 211, 100)"
