"""The edition email's content: compiled once and filled per recipient, escaped, complete, small enough."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import lxml.html
import pytest

from newsletter.config import Settings
from newsletter.links import Links
from newsletter.render import one_line, render_context, render_edition
from newsletter.render.compile import TEMPLATES_DIR, compile_mjml, html_env, template_sources, text_template
from newsletter.render.context import authors_line, snippet, wrap
from tests.support.samples import random_edition, worst_case_edition

GMAIL_CLIP_BYTES = 102 * 1024


@pytest.fixture(scope="module")
def render_settings() -> Settings:
    return Settings(secret_key="render-tests", base_url="https://digest.example.org", _env_file=None,
                    postal_address="Paper Digest, 12 Rue de l'Exemple, 75011 Paris, France")


def tricky(edition: dict) -> dict:
    """The first paper gets a title with markup, an ampersand, LaTeX, non-ASCII and a very long word."""
    first = edition["papers"][0]
    title = 'KV-Cache <b>for</b> LLMs & "Beyond": $O(n)$ memory, u-μP, 李明 ' + "Supercalifragilistic" * 12
    edition["papers"][0] = replace(first, title=title, snippet="<script>alert(1)</script> & $\\alpha$ 張偉")
    return edition


def from_scratch(edition: dict) -> str:
    """The slow, obviously right way: fill the MJML source with the data, then compile it."""
    source, css = template_sources()
    return compile_mjml(html_env().from_string(source).render(render_context(**edition)), css)


BLOCK_TAG = re.compile(r"\s*(</?(?:html|head|body|title|meta|style|div|table|tbody|tr|td|p|h1)\b[^>]*>)\s*")


def normalized(html: str) -> str:
    """The same document up to what never renders: comments (Outlook's conditional markup), white space next to
    block tags, and how much white space separates words."""
    tree = lxml.html.document_fromstring(re.sub(r"<!--.*?-->", "", html, flags=re.DOTALL))
    return BLOCK_TAG.sub(r"\1", " ".join(lxml.html.tostring(tree, encoding="unicode").split()))


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_fast_path_equals_compiling_from_scratch(render_settings, number):
    rng = random.Random(number)
    edition = random_edition(render_settings, rng, number, count=rng.choice([0, 1, 3, 10]), trending=rng.choice([0, 5]))
    if number == 4:
        edition = tricky(worst_case_edition(render_settings))
    if number == 3:
        edition["links"] = Links(unsubscribe_url=edition["links"].unsubscribe_url)
    assert normalized(render_edition(**edition).html) == normalized(from_scratch(edition))


def test_the_plain_text_part_equals_rendering_its_source(render_settings):
    """Paper fragments rendered once and reused give the same text as the template rendered as written."""
    for number in range(1, 4):
        edition = random_edition(render_settings, random.Random(number), number, count=4 * number - 2)
        source = (TEMPLATES_DIR / "edition.txt").read_text(encoding="utf-8")
        expected = text_template().environment.from_string(source).render(render_context(**edition))
        assert render_edition(**edition).text == expected


def test_values_are_escaped_and_render_as_written(render_settings):
    rendered = render_edition(**tricky(worst_case_edition(render_settings)))
    html = rendered.html
    assert "<b>for</b>" not in html and "<script>" not in html
    tree = lxml.html.document_fromstring(html)
    title = tree.find_class("title")[0].text_content()
    assert " ".join(title.split()).startswith('KV-Cache <b>for</b> LLMs & "Beyond": $O(n)$ memory, u-μP, 李明 Super')
    assert "Supercalifragilistic" * 12 in title  # the long word is not broken by the line breaking
    assert tree.find_class("snippet")[0].text_content().strip() == "<script>alert(1)</script> & $\\alpha$ 張偉"
    assert html.isascii()  # non-ASCII as character references: the part can travel as 7bit
    assert 'KV-Cache <b>for</b> LLMs & "Beyond"' in rendered.text  # plain text is never HTML-escaped


def test_worst_case_edition_stays_under_gmail_clipping(render_settings):
    edition = worst_case_edition(render_settings, count=10, trending=5)
    rendered = render_edition(**edition)
    size = len(rendered.html.encode("utf-8"))
    assert len(edition["papers"]) == 10 and len(edition["trending"]) == 5
    assert all(p.more_url and p.code_url and len(p.reasons) == 3 for p in edition["papers"])
    assert size < GMAIL_CLIP_BYTES, f"{size} bytes of HTML: Gmail would clip it and hide the unsubscribe link"


def test_everything_a_reader_needs_is_in_both_parts(render_settings):
    edition = worst_case_edition(render_settings)
    rendered = render_edition(**edition)
    tree = lxml.html.document_fromstring(rendered.html)
    top = edition["papers"][0]
    assert rendered.subject == one_line(f"10 papers for you: {top.title}")
    preheader = tree.xpath("//body/div[1]")[0].text_content()
    assert f"Top pick: {top.title}"[:100] in " ".join(preheader.split())
    assert "Wednesday, November 25, 2026" in tree.text_content()
    assert "10 new papers matched your interests." in tree.text_content()
    hrefs = {a.get("href") for a in tree.iter("a")}
    links = edition["links"]
    for paper in edition["papers"]:
        assert {paper.url, paper.pdf_url, paper.code_url, paper.more_url, paper.less_url} <= hrefs
        for url in (paper.url, paper.pdf_url, paper.code_url, paper.more_url, paper.less_url):
            assert url in rendered.text
        assert " ".join(paper.title.split()[:4]) in rendered.text
    assert {links.unsubscribe_url, links.preferences_url, links.view_url, links.archive_url} <= hrefs
    for paper in edition["trending"]:
        assert paper.url in hrefs and paper.url in rendered.text
    for text in (tree.text_content(), rendered.text):
        flat = " ".join(text.split())
        assert "TRENDING TODAY" in flat and "Why you got this: matches your keywords" in flat
        assert "Paper Digest, 12 Rue de l'Exemple, 75011 Paris, France" in flat
        assert "You receive this because reader1@example.org subscribed" in flat
        assert "Alice Zhang, 李明, José Álvarez-Ruiz et al." in flat
    assert "Unsubscribe: " + links.unsubscribe_url in rendered.text
    unsubscribe = [a for a in tree.iter("a") if a.get("href") == links.unsubscribe_url][0]
    assert unsubscribe.text_content() == "Unsubscribe"


def test_optional_links_are_left_out_when_unknown(render_settings):
    edition = worst_case_edition(render_settings, count=2, trending=0)
    edition["links"] = Links(unsubscribe_url="https://digest.example.org/unsubscribe/t")
    edition["papers"] = [replace(p, pdf_url="", code_url="", more_url="", less_url="") for p in edition["papers"]]
    rendered = render_edition(**edition)
    for word in ("Preferences", "Archive", "View in browser", "PDF", "Code", "More like this", "TRENDING"):
        assert word not in rendered.html and word not in rendered.text
    assert "Unsubscribe" in rendered.html


def test_an_empty_edition_still_reads_well(render_settings):
    edition = worst_case_edition(render_settings, count=0, trending=3)
    rendered = render_edition(**edition)
    assert rendered.subject == "Paper Digest: nothing new for you today"
    assert "Nothing new for you today" in rendered.html and "TRENDING TODAY" in rendered.text


def test_styles_are_inlined_where_they_apply(render_settings):
    """Classes from edition.css end up in each element's style attribute (what most clients honour)."""
    tree = lxml.html.document_fromstring(render_edition(**worst_case_edition(render_settings)).html)
    assert "color:#1a7f37" in tree.find_class("why")[0].get("style").replace(" ", "")
    assert "font-size:18px" in tree.find_class("title")[0].get("style").replace(" ", "")
    assert "border-radius:14px" in tree.find_class("pill")[0].get("style").replace(" ", "")
    head = lxml.html.tostring(tree.find("head"), encoding="unicode")
    assert '<meta name="color-scheme" content="light dark">' in head
    assert "@media (prefers-color-scheme: dark)" in head and "max-width: 479px" in head


def test_snippet_cuts_on_a_word_boundary():
    text = "word " * 100
    cut = snippet(text, 42)
    assert cut.endswith("…") and len(cut) <= 43 and cut[:-1].split() == ["word"] * 8
    assert snippet("short abstract") == "short abstract"
    assert snippet("x" * 500, 40) == "x" * 40 + "…"  # one long word: cut hard


def test_authors_line_names_the_first_few():
    assert authors_line([]) == ""
    assert authors_line(["A", "B"]) == "A, B"
    assert authors_line(["A", "B", "C", "D"]) == "A, B, C et al."


def test_wrap_keeps_words_whole():
    assert wrap("a b c d", 3) == "a b\nc d"
    assert wrap("tiny " + "x" * 50 + " end", 10, "  ") == "tiny\n  " + "x" * 50 + "\n  end"
