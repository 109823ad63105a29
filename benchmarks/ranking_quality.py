"""Ranking quality on the judged set: nDCG@10 and precision@10 of our ranker and three baselines, same run.

    python benchmarks/ranking_quality.py [--judged benchmarks/judged/profiles.json]

The judged set (benchmarks/judged/profiles.json) holds researcher profiles as typed into the sign-up form and
papers of the bundled sample corpus graded 0/1/2 by reading them (the grading rule is in the file). Baselines:
BM25 on the profile text, tf-idf cosine (scikit-learn), and plain MiniLM cosine. Needs the `semantic` extra.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import Settings  # noqa: E402
from newsletter.ingest import parse_source, read_source, sample_sources  # noqa: E402
from newsletter.models import Paper, Subscriber  # noqa: E402
from newsletter.ranking import embeddings  # noqa: E402
from newsletter.ranking.lexical import TermIndex, query_terms  # noqa: E402
from newsletter.ranking.score import CandidatePool, Profile  # noqa: E402

K = 10


def sample_papers() -> list[Paper]:
    """The bundled corpus, de-duplicated by title key as ingest does (no database needed)."""
    seen: dict[str, Paper] = {}
    for source in sample_sources():
        for p in parse_source(read_source(source), source):
            seen.setdefault(p.title_key, Paper(id=len(seen) + 1, external_id=p.external_id, title_key=p.title_key,
                                               title=p.title, abstract=p.abstract, source=source))
    return list(seen.values())


def paper_vectors(papers: list[Paper], cache: Path | None = None) -> np.ndarray:
    """MiniLM vectors of the papers, read from (or saved to) the .npy file `cache` when given."""
    if cache and cache.exists():
        return np.load(cache)
    vectors = embeddings.encode([embeddings.paper_text(p) for p in papers])
    if cache:
        np.save(cache, vectors)
    return vectors


def ndcg(ranked: list[str], grades: dict[str, int], k: int = K) -> float:
    gain = sum((2 ** grades.get(t, 0) - 1) / math.log2(r + 2) for r, t in enumerate(ranked[:k]))
    ideal = sum((2 ** g - 1) / math.log2(r + 2) for r, g in enumerate(sorted(grades.values(), reverse=True)[:k]))
    return gain / ideal if ideal else 0.0


def precision(ranked: list[str], grades: dict[str, int], k: int = K) -> float:
    return sum(1 for t in ranked[:k] if grades.get(t, 0) > 0) / k


def top_titles(papers: list[Paper], scores: np.ndarray, k: int = K) -> list[str]:
    return [papers[i].title for i in np.argsort(-scores, kind="stable")[:k]]


def profile_text(profile: dict) -> str:
    return f"{profile['interests']} {profile['keywords']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, default=ROOT / "benchmarks" / "judged" / "profiles.json")
    parser.add_argument("--vectors", type=Path, help="reuse (or save) the corpus embeddings in this .npy file")
    args = parser.parse_args()
    judged = json.loads(args.judged.read_text())
    settings = Settings()
    if not embeddings.semantic_available(settings):
        sys.exit(embeddings.semantic_status(settings))

    papers = sample_papers()
    titles = {p.title for p in papers}
    missing = [t for prof in judged["profiles"] for t in prof["grades"] if t not in titles]
    if missing:
        sys.exit(f"judged titles not in the corpus: {missing[:3]}")

    started = time.perf_counter()
    vectors = paper_vectors(papers, args.vectors)
    embed_seconds = time.perf_counter() - started
    for paper, vector in zip(papers, vectors):
        paper.embedding, paper.embedding_model = embeddings.to_bytes(vector), embeddings.MODEL_NAME

    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [f"{p.title} {p.abstract}" for p in papers]
    tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True)
    doc_tfidf = tfidf.fit_transform(texts)
    bm25 = TermIndex.build(texts, kind="bm25")
    pool = CandidatePool(papers)

    def ours(profile: dict) -> list[str]:
        return [r.paper.title for r in pool.rank(make_profile(profile), K)]

    def make_profile(profile: dict) -> Profile:
        reader = Subscriber(email="judged@example.org", interests=profile["interests"],
                            keywords=[k.strip() for k in profile["keywords"].split(",")])
        return Profile.of(reader, vector=embeddings.encode([embeddings.profile_text(reader)])[0])

    def bm25_baseline(profile: dict) -> list[str]:
        return top_titles(papers, bm25.scores(query_terms(profile_text(profile))))

    def tfidf_baseline(profile: dict) -> list[str]:
        return top_titles(papers, (doc_tfidf @ tfidf.transform([profile_text(profile)]).T).toarray().ravel())

    def minilm_baseline(profile: dict) -> list[str]:
        return top_titles(papers, vectors @ embeddings.encode([profile_text(profile)])[0])

    rankers = {"ours": ours, "bm25": bm25_baseline, "tfidf_cosine": tfidf_baseline, "minilm_cosine": minilm_baseline}
    results: dict[str, dict[str, list[float]]] = {name: {"ndcg": [], "p": []} for name in rankers}
    per_profile = []
    for profile in judged["profiles"]:
        row = [profile["name"]]
        for name, ranker in rankers.items():
            ranked = ranker(profile)
            results[name]["ndcg"].append(ndcg(ranked, profile["grades"]))
            results[name]["p"].append(precision(ranked, profile["grades"]))
            row.append(f"{results[name]['ndcg'][-1]:.3f}")
        per_profile.append(row)

    print(f"judged set: {len(judged['profiles'])} profiles, {sum(len(p['grades']) for p in judged['profiles'])} "
          f"graded papers, corpus {len(papers)} papers; embedded in {embed_seconds:.1f} s")
    print(f"\nnDCG@{K} per profile")
    print(f"{'profile':24}" + "".join(f"{n:>15}" for n in rankers))
    for row in per_profile:
        print(f"{row[0]:24}" + "".join(f"{v:>15}" for v in row[1:]))
    print(f"\n{'ranker':16}{'nDCG@10':>10}{'P@10':>10}")
    summary = {}
    for name in rankers:
        summary[name] = {"ndcg@10": round(float(np.mean(results[name]["ndcg"])), 4),
                         "p@10": round(float(np.mean(results[name]["p"])), 4)}
        print(f"{name:16}{summary[name]['ndcg@10']:>10.4f}{summary[name]['p@10']:>10.4f}")
    best = max((n for n in rankers if n != "ours"), key=lambda n: summary[n]["ndcg@10"])
    ratio = summary["ours"]["ndcg@10"] / summary[best]["ndcg@10"]
    beats_all = all(summary["ours"][m] > summary[n][m] for n in rankers if n != "ours" for m in ("ndcg@10",))
    print(f"\nours / best baseline ({best}) nDCG@10: {ratio:.3f}; beats every baseline on nDCG@10: {beats_all}")
    print(json.dumps({"benchmark": "ranking_quality", "profiles": len(judged["profiles"]), "papers": len(papers),
                      **summary, "best_baseline": best, "ndcg_ratio_vs_best_baseline": round(ratio, 4),
                      "beats_all_baselines": beats_all}))


if __name__ == "__main__":
    main()
