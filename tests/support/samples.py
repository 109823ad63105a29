"""Edition data built from the bundled sample corpus without a database, for the size test, the browser tests and the
render benchmarks (test support: never imported by the product). `worst_case_edition` fills every field as far as
real editions go: the longest titles and abstracts of the corpus, long author lists with non-ASCII names, every
link, signed feedback links, and three reasons per paper.
"""

from __future__ import annotations

import random
from datetime import date
from functools import lru_cache

from newsletter.config import Settings
from newsletter.ingest import parse_source, read_source, sample_sources
from newsletter.ingest.paper_in import PaperIn
from newsletter.links import edition_links, feedback_url
from newsletter.models import Paper, Subscriber, SubscriberStatus
from newsletter.render import PaperView, paper_view

AUTHORS = ["Alice Zhang", "李明", "José Álvarez-Ruiz", "Søren Kierkegaard-Nielsen", "Nguyễn Thị Minh Khai",
           "Aleksandr Grothendieck", "Priya Raghunathan", "Oluwaseun Adeyemi", "Zoë Müller-Lüdenscheidt",
           "Hiroshi Yamamoto", "Fatima Al-Zahra", "Carlos Mendoza Hernández"]
# What the ranking engine writes: one plain sentence first (shown prominently), then details. A typical pick has
# one; the worst case three long ones.
REASON = "Matches your keywords KV cache and speculative decoding, and José Álvarez-Ruiz wrote it."
REASONS = ["matches your keywords: KV cache, long-context inference, speculative decoding",
           "by an author you follow: José Álvarez-Ruiz, Søren Kierkegaard-Nielsen",
           "about your interests: compression, attention, retrieval, transformers, efficiency"]
INTERESTS = ("Efficient inference for long-context language models: KV cache compression, speculative decoding, "
             "sparse attention and retrieval-augmented generation")


@lru_cache(maxsize=1)
def sample_corpus() -> tuple[PaperIn, ...]:
    """The bundled sample papers, parsed (not stored), one per title."""
    seen: dict[str, PaperIn] = {}
    for source in sample_sources():
        for paper in parse_source(read_source(source), source):
            seen.setdefault(paper.title_key, paper)
    return tuple(seen.values())


def full_paper(paper: PaperIn, number: int) -> Paper:
    """`paper` with every optional field filled, as an unsaved row."""
    arxiv_id = f"2411.{10000 + number:05d}"
    return Paper(
        id=number, external_id=arxiv_id, title_key=paper.title_key, title=paper.title, abstract=paper.abstract,
        authors=AUTHORS, url=f"https://huggingface.co/papers/{arxiv_id}", pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        code_url=f"https://github.com/example-research-lab/{paper.title_key.replace(' ', '-')[:60]}",
        upvotes=1000 + number,
        tldr=tldr_of(paper.abstract),
        thumbnail_url=f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
        project_url=f"https://example-research-lab.github.io/{arxiv_id}/",
        organization="Example Research Lab",
    )


def tldr_of(abstract: str) -> str:
    """A one-sentence summary in the style of Hugging Face's AI summaries: the abstract's first sentence, at most
    about 200 characters."""
    first = abstract.split(". ")[0].strip().rstrip(".")
    return (first if len(first) <= 200 else first[:200].rsplit(" ", 1)[0]) + "."


def sample_subscriber(number: int) -> Subscriber:
    return Subscriber(id=number, email=f"reader{number}@example.org", name=f"Reader {number}",
                      status=SubscriberStatus.active, interests=INTERESTS)


def edition_views(subscriber: Subscriber, picks: list[Paper], trending: list[Paper],
                  settings: Settings, reasons: list[str] = REASONS) -> tuple[list[PaperView], list[PaperView]]:
    views = [paper_view(p, reasons, feedback_url(subscriber, p.id, "more", settings),
                        feedback_url(subscriber, p.id, "less", settings)) for p in picks]
    return views, [paper_view(p) for p in trending]


def worst_case_edition(settings: Settings, count: int = 10, trending: int = 5, subscriber_number: int = 1) -> dict:
    """Keyword arguments for `render_edition`: the corpus' longest papers, every field filled."""
    longest = sorted(sample_corpus(), key=lambda p: -(len(p.title) * 4 + len(p.abstract)))
    papers = [full_paper(p, i) for i, p in enumerate(longest[: count + trending], start=1)]
    return edition_kwargs(sample_subscriber(subscriber_number), papers[:count], papers[count:], settings)


def typical_edition(settings: Settings, count: int = 10, trending: int = 3, subscriber_number: int = 1) -> dict:
    """Keyword arguments for `render_edition`: papers of the corpus' median length (title and abstract), every
    field filled: what a day usually looks like, where `worst_case_edition` is the longest possible."""
    corpus = sorted(sample_corpus(), key=lambda p: (len(p.title) * 4 + len(p.abstract), p.title_key))
    middle = len(corpus) // 2 - (count + trending) // 2
    chosen = corpus[middle: middle + count + trending]
    papers = [full_paper(p, i) for i, p in enumerate(chosen, start=1)]
    return edition_kwargs(sample_subscriber(subscriber_number), papers[:count], papers[count:], settings, [REASON])


def random_edition(settings: Settings, rng: random.Random, subscriber_number: int, count: int = 10,
                   trending: int = 5) -> dict:
    """Keyword arguments for `render_edition`: a random pick of corpus papers, every field filled."""
    corpus = sample_corpus()
    chosen = rng.sample(range(len(corpus)), count + trending)
    papers = [full_paper(corpus[i], i + 1) for i in chosen]
    return edition_kwargs(sample_subscriber(subscriber_number), papers[:count], papers[count:], settings)


def edition_kwargs(subscriber: Subscriber, picks: list[Paper], trending: list[Paper], settings: Settings,
                   reasons: list[str] = REASONS) -> dict:
    views, trending_views = edition_views(subscriber, picks, trending, settings, reasons)
    day = date(2026, 11, 25)
    return {
        "day": day,
        "recipient": subscriber.email,
        "interests": subscriber.interests,
        "papers": views,
        "trending": trending_views,
        "links": edition_links(subscriber, day, settings),
        "postal_address": settings.postal_address,
    }
