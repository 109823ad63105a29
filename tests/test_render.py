"""The edition email's content: compiled once and filled per recipient, escaped, complete, small enough."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import lxml.html
import pytest

from newsletter.compose import trending_room
from newsletter.config import Settings
from newsletter.links import Links
from newsletter.models import Paper
from newsletter.render import (
    TOP_PICKS,
    cut_at_word,
    paper_view,
    preheader_text,
    render_context,
    render_edition,
    subject_line,
)
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
    edition["papers"][0] = replace(first, title=title, tldr="<script>alert(1)</script> & $\\alpha$ 張偉")
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
    assert tree.find_class("tldr")[0].text_content().strip() == "TL;DR <script>alert(1)</script> & $\\alpha$ 張偉"
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
    top, second, third = edition["papers"][:3]
    assert rendered.subject == cut_at_word(top.title, 70 - len(" +9 more")) + " +9 more"
    preheader = " ".join(tree.find_class("preheader")[0].text_content().split())
    assert preheader.startswith("Also: " + " ".join(second.title.split()[:4]))
    assert " ".join(third.title.split()[:3]) in preheader
    assert "Wednesday, November 25, 2026" in tree.text_content()
    assert "10 papers for you today" in tree.text_content()
    hrefs = {a.get("href") for a in tree.iter("a")}
    links = edition["links"]
    for number, paper in enumerate(edition["papers"]):
        whole = number < TOP_PICKS  # the top picks carry every link; compact ones the paper and the feedback
        shown = {paper.url, paper.more_url, paper.less_url} | ({paper.pdf_url, paper.code_url, paper.project_url}
                                                                if whole else set())
        assert shown <= hrefs
        for url in shown:
            assert url in rendered.text
        assert " ".join(paper.title.split()[:4]) in rendered.text
    assert {links.unsubscribe_url, links.preferences_url, links.view_url, links.archive_url} <= hrefs
    for paper in edition["trending"]:
        assert paper.url in hrefs and paper.url in rendered.text
    for text in (tree.text_content(), rendered.text):
        flat = " ".join(text.split())
        assert "TRENDING TODAY" in flat and "matches your keywords: KV cache" in flat
        assert "Paper Digest, 12 Rue de l'Exemple, 75011 Paris, France" in flat
        assert "You receive this because reader1@example.org subscribed" in flat
        assert "Alice Zhang, 李明, José Álvarez-Ruiz et al." in flat
        assert "TL;DR" in flat and " ".join(top.tldr.split()[:5]) in flat
        assert top.organization in flat
    assert "Unsubscribe: " + links.unsubscribe_url in rendered.text
    unsubscribe = [a for a in tree.iter("a") if a.get("href") == links.unsubscribe_url][0]
    assert unsubscribe.text_content() == "Unsubscribe"


def test_optional_links_are_left_out_when_unknown(render_settings):
    edition = worst_case_edition(render_settings, count=3, trending=0)
    edition["links"] = Links(unsubscribe_url="https://digest.example.org/unsubscribe/t")
    edition["papers"] = [replace(p, pdf_url="", code_url="", project_url="", thumbnail_url="", more_url="",
                                 less_url="") for p in edition["papers"]]
    rendered = render_edition(**edition)
    for word in ("Preferences", "Archive", "View in browser", "PDF", "Code", "Project", "More like this",
                 "TRENDING", "<img"):
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
    assert "font-size:17px" in tree.find_class("title")[0].get("style").replace(" ", "")
    assert "border-radius:22px" in tree.find_class("pill")[0].get("style").replace(" ", "")
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


# The email's best places (issue 15): doctype, lang, headings, subject, preheader, footer, the HF extras ---------

def test_the_page_is_a_standards_mode_document_in_the_configured_language(render_settings):
    edition = worst_case_edition(render_settings, count=3, trending=0)
    assert render_edition(**edition).html.startswith("<!doctype html>")  # premailer drops it; we put it back
    tree = lxml.html.document_fromstring(render_edition(**edition).html)
    assert tree.get("lang") == "en"
    assert lxml.html.document_fromstring(render_edition(**edition, language="de").html).get("lang") == "de"
    assert "und" not in {tree.get("lang")}


def test_each_paper_title_is_a_heading(render_settings):
    edition = worst_case_edition(render_settings, count=10, trending=0)
    tree = lxml.html.document_fromstring(render_edition(**edition).html)
    headings = [" ".join(h.text_content().split()) for h in tree.xpath("//h2[contains(@class, 'title')]"
                                                                        " | //h3[contains(@class, 'title')]")]
    assert headings == [" ".join(p.title.split()) for p in edition["papers"]]
    assert [h.tag for h in tree.xpath("//h1 | //h2 | //h3")][:4] == ["h1", "h2", "h2", "h3"]


@pytest.mark.parametrize(("titles", "expected"), [
    (["Short title"], "Short title"),
    (["Short title", "b", "c"], "Short title +2 more"),
    (["S³: Increasing GPU Utilization during Generative Inference for Higher Throughput"] + ["x"] * 9,
     "S³: Increasing GPU Utilization during Generative Inference… +9 more"),
    (["Anatomy of a Machine Learning Ecosystem: 2 Million Models on Hugging Face", "b"],
     "Anatomy of a Machine Learning Ecosystem: 2 Million Models on… +1 more"),
    (["Supercalifragilistic" * 5, "b"], "Supercalifragilistic" * 3 + "S… +1 more"),  # one word: cut inside it
    ([], "Paper Digest: nothing new for you today"),
])
def test_subject_names_the_top_pick_and_the_rest_in_at_most_70_characters(titles, expected):
    subject = subject_line(titles)
    assert subject == expected and len(subject) <= 70
    if titles and len(titles[0]) > 60 and " " in titles[0]:
        kept = subject.split("…")[0]
        assert titles[0].startswith(kept) and titles[0][len(kept)] == " "  # cut at a word, never inside one


def test_subject_and_preheader_vary_with_the_picks_and_never_repeat_each_other(render_settings):
    subjects, preheaders = set(), set()
    for number in range(1, 6):
        edition = random_edition(render_settings, random.Random(number), number)
        rendered = render_edition(**edition)
        context = render_context(**edition)
        subjects.add(rendered.subject)
        preheaders.add(context["preheader"])
        assert len(rendered.subject) <= 70 and rendered.subject.endswith(" +9 more")
        assert context["preheader"] != rendered.subject
        assert edition["papers"][0].title[:30] not in context["preheader"]  # not the top pick again
        assert " ".join(edition["papers"][1].title.split()[:3]) in context["preheader"]
    assert len(subjects) == 5 and len(preheaders) == 5
    assert preheader_text(["Only one"], "Its one line.") == "Its one line."
    assert preheader_text([]) != subject_line([])


def test_preheader_is_hidden_the_standard_way_not_with_white_text(render_settings):
    html = render_edition(**worst_case_edition(render_settings)).html
    tree = lxml.html.document_fromstring(html)
    [preheader] = tree.find_class("preheader")
    style = preheader.get("style").replace(" ", "").lower()
    assert "display:none" in style and "max-height:0" in style and "mso-hide:all" in style
    assert "color" not in style and "opacity" not in style
    assert not re.search(r"(?<![-\w])color:\s*#fff", html.lower())  # no white text anywhere
    assert tree.xpath("//body//div")[0] is preheader or preheader in tree.xpath("//body//div")[:3]


@pytest.mark.parametrize(("interests", "sentence"), [
    ("transformers, diffusion.", "with these interests: transformers, diffusion."),
    ("transformers...", "with these interests: transformers."),
    ("graph neural networks", "with these interests: graph neural networks."),
    ("", "with these interests: (none given yet)."),
])
def test_the_footer_sentence_ends_with_one_full_stop(render_settings, interests, sentence):
    edition = worst_case_edition(render_settings, count=1, trending=0)
    edition["interests"] = interests
    rendered = render_edition(**edition)
    for text in (lxml.html.document_fromstring(rendered.html).text_content(), rendered.text):
        flat = " ".join(text.split())
        assert sentence in flat and ".." not in flat.replace("…", "")


def test_tldr_thumbnail_organisation_and_project_page_are_shown(render_settings):
    edition = worst_case_edition(render_settings, count=3, trending=0)
    tree = lxml.html.document_fromstring(render_edition(**edition).html)
    [image] = tree.iter("img")  # the top pick's thumbnail only: images are not in the size budget, screens are
    first = edition["papers"][0]
    assert image.get("src") == first.thumbnail_url and image.get("alt") and image.get("width") == "112"
    assert image.get("height") == "63"
    assert len(tree.find_class("tldr")) == TOP_PICKS
    assert first.project_url in {a.get("href") for a in tree.iter("a")}


def test_only_http_links_are_ever_shown():
    paper = Paper(id=1, external_id="x", title_key="x", title="T", url="javascript:alert(1)",
                  pdf_url="data:text/html,x", code_url="https://github.com/a/b", thumbnail_url="ftp://x/y.png",
                  project_url="HTTP://example.org/p")
    view = paper_view(paper)
    assert (view.url, view.pdf_url, view.code_url, view.thumbnail_url, view.project_url) == (
        "", "", "https://github.com/a/b", "", "HTTP://example.org/p")


def test_latex_in_titles_and_abstracts_reads_as_text():
    paper = Paper(id=1, external_id="x", title_key="x", title="S^{3}: Increasing GPU Utilization",
                  abstract="We bound it by $\\mathcal{O}(n \\log n)$ with {\\em no} loss.", tldr="An $\\alpha$-DPO.")
    view = paper_view(paper)
    assert (view.title, view.snippet, view.tldr) == ("S³: Increasing GPU Utilization",
                                                     "We bound it by 𝒪(n log n) with no loss.", "An α-DPO.")


def test_a_full_edition_has_no_room_for_trending_a_short_one_is_filled_up(render_settings):
    assert [trending_room(picks, render_settings) for picks in (0, 7, 8, 9, 10)] == [3, 3, 2, 1, 0]
