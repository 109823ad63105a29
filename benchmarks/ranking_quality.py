"""Ranking quality on the judged set: nDCG@10 and P@10 of our ranker against four baselines, both profile forms,
on the tuning split and on the held-back split, same run.

    python benchmarks/ranking_quality.py [--split tuning|held_back|both] [--vectors FILE.npy] [--per-profile]

The judged set (benchmarks/judged/profiles.json) holds 33 researcher profiles, each typed two ways (`full`:
interests + keywords as a careful reader fills the sign-up form; `short`: the one sentence a hurried reader types),
and every paper of the bundled sample corpus graded 0/1/2 for each profile by reading it (the rule is in the file).
Each split is one pool of papers ranked as a day's edition would rank it: tuning = the distinct papers of sample
files a and b, held-back = those of file c (look at it only when a change is finished). A profile is evaluated on a
split only when the split's pool holds a paper graded above 0 for it.

Systems, each ranking only the split's pool from the same profile text:
  ours           the product's ranker (CandidatePool.rank, exactly as `newsletter recommend` calls it)
  bm25           BM25 (k1 1.5, b 0.75) on the profile text
  tfidf          scikit-learn tf-idf cosine, 1-2-grams, sublinear tf, English stop words
  minilm         MiniLM cosine between the profile text and title + abstract
  bm25+minilm    z-score of BM25 + z-score of MiniLM over the pool

Then the seed-paper lift: each hurried (`short`) profile given three of its grade-2 papers from outside the split
(as if typed into the "seed papers" field), ranked by ours, against the same profile without seeds.

Needs the `semantic` extra. The last line is one JSON object: {"full": {"tuning": {system: {"ndcg10", "p10"}},
"held_back": {...}}, "short": {...}, "seed_papers": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import Settings  # noqa: E402
from newsletter.ingest import parse_source, read_source, sample_sources  # noqa: E402
from newsletter.models import Paper, Subscriber  # noqa: E402
from newsletter.ranking import embeddings  # noqa: E402
from newsletter.ranking.lexical import Corpus as LexicalCorpus  # noqa: E402
from newsletter.ranking.lexical import TermIndex, tokenize  # noqa: E402
from newsletter.ranking.score import CandidatePool, Profile  # noqa: E402

K = 10
JUDGED = ROOT / "benchmarks" / "judged" / "profiles.json"
FORMS = ("full", "short")
SPLITS = ("tuning", "held_back")
SYSTEMS = ("ours", "bm25", "tfidf", "minilm", "bm25+minilm")
SEEDS = 3


@dataclass
class Corpus:
    papers: list[Paper]  # every distinct paper of the sample, in a fixed order
    files: dict[str, set[int]]  # sample file name -> indices into papers
    by_title: dict[str, int] = field(default_factory=dict)

    def pool(self, files: Sequence[str]) -> list[int]:
        return sorted(set().union(*(self.files[name] for name in files)))


def sample_corpus() -> Corpus:
    """The bundled corpus, de-duplicated by title key as ingest does (no database needed), with each file's papers."""
    seen: dict[str, Paper] = {}
    files: dict[str, set[int]] = {}
    order: dict[str, int] = {}
    for source in sample_sources():
        name = Path(source).name
        files[name] = set()
        for p in parse_source(read_source(source), source):
            if p.title_key not in seen:
                order[p.title_key] = len(seen)
                seen[p.title_key] = Paper(id=len(seen) + 1, external_id=p.external_id, title_key=p.title_key,
                                          title=p.title, abstract=p.abstract, authors=list(p.authors),
                                          upvotes=p.upvotes or 0, source=source)
            files[name].add(order[p.title_key])
    papers = list(seen.values())
    return Corpus(papers, files, {p.title: i for i, p in enumerate(papers)})


def sample_papers() -> list[Paper]:
    return sample_corpus().papers


def paper_vectors(papers: list[Paper], cache: Path | None = None) -> np.ndarray:
    """MiniLM vectors of the papers, read from (or saved to) the .npy file `cache` when given."""
    if cache and cache.exists():
        vectors = np.load(cache)
        if len(vectors) == len(papers):
            return vectors
    vectors = embeddings.encode([embeddings.paper_text(p) for p in papers])
    if cache:
        np.save(cache, vectors)
    return vectors


def ndcg(ranked: Sequence[int], grades: dict[int, int], k: int = K) -> float:
    gain = sum((2 ** grades.get(i, 0) - 1) / math.log2(r + 2) for r, i in enumerate(ranked[:k]))
    ideal = sum((2 ** g - 1) / math.log2(r + 2) for r, g in enumerate(sorted(grades.values(), reverse=True)[:k]))
    return gain / ideal if ideal else 0.0


def precision(ranked: Sequence[int], grades: dict[int, int], k: int = K) -> float:
    return sum(1 for i in ranked[:k] if grades.get(i, 0) > 0) / k


def reader(judged: dict, form: str) -> Subscriber:
    """The subscriber a judged profile stands for, in one of its two forms."""
    if form == "short":
        return Subscriber(email="judged@example.org", interests=judged["short"], keywords=[])
    return Subscriber(email="judged@example.org", interests=judged["interests"],
                      keywords=[k.strip() for k in judged["keywords"].split(",") if k.strip()])


def reader_text(subscriber: Subscriber) -> str:
    return " ".join([subscriber.interests, ", ".join(subscriber.keywords)]).strip()


def ranker_profile(subscriber: Subscriber, seeds: Sequence[Paper] = ()) -> Profile:
    """The ranker's profile of a reader, built by the same code as for a stored subscriber (no database)."""
    text = embeddings.profile_text(subscriber)
    return Profile.of(subscriber, vector=embeddings.encode([text])[0] if text else None, seeds=list(seeds))


class Split:
    """One pool of papers and every system's ranking function over it."""

    def __init__(self, corpus: Corpus, indices: list[int], vectors: np.ndarray):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.indices = indices
        self.papers = [corpus.papers[i] for i in indices]
        self.vectors = vectors[indices]
        texts = [f"{p.title} {p.abstract}" for p in self.papers]
        self.tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
        self.doc_tfidf = self.tfidf.fit_transform(texts)
        self.bm25 = TermIndex.build(texts, kind="bm25", analyzer=tokenize)  # plain words, as BM25 is usually run
        self.pool = CandidatePool(self.papers, semantic=True, corpus=stored(corpus))  # as load_pool: idf of all

    def top(self, scores: np.ndarray, k: int = K) -> list[int]:
        return [self.indices[i] for i in np.argsort(-scores, kind="stable")[:k]]

    def systems(self) -> dict[str, Callable[[Subscriber], list[int]]]:
        def ours(s: Subscriber) -> list[int]:
            return [self.indices[self.pool.papers.index(r.paper)] for r in self.pool.rank(ranker_profile(s), K)]

        def bm25(s: Subscriber) -> list[int]:
            return self.top(self.bm25.scores(plain_query(reader_text(s))))

        def tfidf(s: Subscriber) -> list[int]:
            return self.top((self.doc_tfidf @ self.tfidf.transform([reader_text(s)]).T).toarray().ravel())

        def minilm(s: Subscriber) -> list[int]:
            return self.top(self.minilm_scores(s))

        def fused(s: Subscriber) -> list[int]:
            return self.top(zscore(self.bm25.scores(plain_query(reader_text(s)))) + zscore(self.minilm_scores(s)))

        return {"ours": ours, "bm25": bm25, "tfidf": tfidf, "minilm": minilm, "bm25+minilm": fused}

    def minilm_scores(self, s: Subscriber) -> np.ndarray:
        return self.vectors @ embeddings.encode([reader_text(s)])[0]

    def ours_with_seeds(self, s: Subscriber, seeds: Sequence[Paper]) -> list[int]:
        position = {id(p): i for i, p in enumerate(self.pool.papers)}
        return [self.indices[position[id(r.paper)]] for r in self.pool.rank(ranker_profile(s, seeds), K)]


def plain_query(text: str) -> dict[str, float]:
    return {term: float(count) for term, count in Counter(tokenize(text)).items()}


def stored(corpus: Corpus) -> LexicalCorpus:
    """Document frequencies over every paper of the sample: the stored papers, as `load_pool` counts them."""
    counted = LexicalCorpus()
    for paper in corpus.papers:
        counted.add(f"{paper.title} {paper.abstract}")
    return counted


def zscore(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


def grades_of(judged: dict, corpus: Corpus) -> dict[int, int]:
    return {corpus.by_title[title]: grade for title, grade in judged["grades"].items() if grade > 0}


def evaluate(judged_set: dict, corpus: Corpus, vectors: np.ndarray, splits: Sequence[str],
             systems: Sequence[str] = SYSTEMS) -> dict:
    """{form: {split: {"profiles": [names], system: {"ndcg10": [...], "p10": [...]}}}} per profile."""
    results: dict = {form: {} for form in FORMS}
    for split_name in splits:
        pool = corpus.pool(judged_set["splits"][split_name]["files"])
        split = Split(corpus, pool, vectors)
        members = set(pool)
        rankers = split.systems()
        for form in FORMS:
            table: dict = {"profiles": [], **{name: {"ndcg10": [], "p10": []} for name in systems}}
            for judged in judged_set["profiles"]:
                grades = {i: g for i, g in grades_of(judged, corpus).items() if i in members}
                if not grades:
                    continue
                table["profiles"].append(judged["name"])
                subscriber = reader(judged, form)
                for name in systems:
                    ranked = rankers[name](subscriber)
                    table[name]["ndcg10"].append(ndcg(ranked, grades))
                    table[name]["p10"].append(precision(ranked, grades))
            results[form][split_name] = table
    return results


def seed_lift(judged_set: dict, corpus: Corpus, vectors: np.ndarray, splits: Sequence[str]) -> dict:
    """Hurried profiles with and without three seed papers (grade-2 papers from outside the ranked pool)."""
    found: dict = {}
    for split_name in splits:
        pool = corpus.pool(judged_set["splits"][split_name]["files"])
        members = set(pool)
        split = Split(corpus, pool, vectors)
        rows: dict = {"profiles": [], "without": [], "with": []}
        for judged in judged_set["profiles"]:
            grades = {i: g for i, g in grades_of(judged, corpus).items() if i in members}
            outside = sorted(i for i, g in grades_of(judged, corpus).items() if g == 2 and i not in members)
            if not grades or len(outside) < SEEDS:
                continue
            seeds = [corpus.papers[i] for i in np.random.default_rng(len(judged["name"])).choice(
                outside, SEEDS, replace=False)]
            subscriber = reader(judged, "short")
            rows["profiles"].append(judged["name"])
            rows["without"].append(ndcg(split.ours_with_seeds(subscriber, []), grades))
            rows["with"].append(ndcg(split.ours_with_seeds(subscriber, seeds), grades))
        found[split_name] = rows
    return found


def summary(table: dict) -> dict:
    return {name: {"ndcg10": round(float(np.mean(v["ndcg10"])), 4), "p10": round(float(np.mean(v["p10"])), 4)}
            for name, v in table.items() if name != "profiles"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, default=JUDGED)
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both")
    parser.add_argument("--vectors", type=Path, help="reuse (or save) the corpus embeddings in this .npy file")
    parser.add_argument("--per-profile", action="store_true", help="print nDCG@10 per profile, system and split")
    args = parser.parse_args()
    judged_set = json.loads(args.judged.read_text())
    settings = Settings()
    if not embeddings.semantic_available(settings):
        sys.exit(embeddings.semantic_status(settings))

    corpus = sample_corpus()
    missing = [t for prof in judged_set["profiles"] for t in prof["grades"] if t not in corpus.by_title]
    if missing:
        sys.exit(f"judged titles not in the corpus: {missing[:3]}")
    splits = SPLITS if args.split == "both" else (args.split,)

    started = time.perf_counter()
    vectors = paper_vectors(corpus.papers, args.vectors)
    for paper, vector in zip(corpus.papers, vectors):
        paper.embedding, paper.embedding_model = embeddings.to_bytes(vector), embeddings.MODEL_NAME
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    results = evaluate(judged_set, corpus, vectors, splits)
    seeds = seed_lift(judged_set, corpus, vectors, splits)
    rank_seconds = time.perf_counter() - started

    print(f"judged set: {len(judged_set['profiles'])} profiles x 2 forms; corpus {len(corpus.papers)} papers "
          f"(embedded in {embed_seconds:.1f} s, evaluated in {rank_seconds:.1f} s)")
    figures: dict = {"benchmark": "ranking_quality", "profiles": len(judged_set["profiles"]),
                     "papers": len(corpus.papers)}
    for form in FORMS:
        figures[form] = {}
        for split_name in splits:
            table = results[form][split_name]
            pool_size = len(corpus.pool(judged_set["splits"][split_name]["files"]))
            print(f"\n== {form} form, {split_name} split: {len(table['profiles'])} profiles evaluated, "
                  f"pool {pool_size} papers")
            if args.per_profile:
                print(f"{'nDCG@10':34}" + "".join(f"{n:>12}" for n in SYSTEMS))
                for row, name in enumerate(table["profiles"]):
                    print(f"{name:34}" + "".join(f"{table[s]['ndcg10'][row]:12.3f}" for s in SYSTEMS))
            totals = summary(table)
            best = max((s for s in SYSTEMS if s != "ours"), key=lambda s: totals[s]["ndcg10"])
            margin = totals["ours"]["ndcg10"] - totals[best]["ndcg10"]
            print(f"{'mean':34}" + "".join(f"{totals[s]['ndcg10']:12.4f}" for s in SYSTEMS) + "   nDCG@10")
            print(f"{'':34}" + "".join(f"{totals[s]['p10']:12.4f}" for s in SYSTEMS) + "   P@10")
            print(f"ours - best baseline ({best}): {margin:+.4f} nDCG@10")
            figures[form][split_name] = {**totals, "profiles_evaluated": len(table["profiles"]), "pool": pool_size,
                                         "best_baseline": best, "margin_over_best_baseline": round(margin, 4)}
    figures["seed_papers"] = {}
    for split_name, rows in seeds.items():
        without, with_seeds = float(np.mean(rows["without"])), float(np.mean(rows["with"]))
        print(f"\nseed papers ({split_name}): short form, {len(rows['profiles'])} profiles, {SEEDS} seed papers "
              f"each: nDCG@10 {without:.4f} -> {with_seeds:.4f} ({with_seeds - without:+.4f})")
        if args.per_profile:
            for name, a, b in zip(rows["profiles"], rows["without"], rows["with"]):
                print(f"  {name:34}{a:8.3f} -> {b:.3f}")
        figures["seed_papers"][split_name] = {"profiles": len(rows["profiles"]), "without": round(without, 4),
                                              "with": round(with_seeds, 4), "lift": round(with_seeds - without, 4)}
    for form in FORMS:
        if "held_back" in figures[form]:
            figures[form]["ours_beats_best_baseline_by_0.05_on_both_splits"] = all(
                figures[form][s]["margin_over_best_baseline"] >= 0.05 for s in splits)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
