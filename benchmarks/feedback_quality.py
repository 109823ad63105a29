"""Feedback that steers: the judged set before and after three clicks of "more like this" and two of "less".

    python benchmarks/feedback_quality.py [--split tuning|held_back|both] [--vectors FILE.npy] [--per-profile]
    python benchmarks/feedback_quality.py --mode topics [--seeds 8]

Judged mode (the default): for each profile of benchmarks/judged/profiles.json, in both forms (full, short) and on
each split's pool, a subscriber is stored in a scratch SQLite database holding every sample paper (the
pool's ingested today, the others two months ago, so only the pool's are candidates); their first
email's top 10 is ranked as `newsletter recommend` ranks it; they click "more like this" on up to 3 of its grade-2
papers and "less like this" on up to 2 of its grade-0 papers, through the email links' own path (the signed
feedback token of `links.feedback_url`, read back by the web handler's `feedback_target`, then
`record_feedback`); then the next top 10 is ranked. Both rankings are scored by nDCG@10 over the papers not judged
(judged papers are never shown again). Reported: before, after and the lift, per profile and on average.

Topics mode (the earlier check of the feedback model's background): a reader saves 3 papers of one topic and
rejects 2 of another (topics found by phrase in the bundled sample corpus, MiniLM vectors); their own model alone
then ranks the rest of the corpus. Reported per background: the
share of its top 20 that carries the saved topic (higher is better), the share that carries the rejected one
(lower is better), and the time to fit a batch of 20 such readers. Needs the `semantic` extra.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ranking_quality import paper_vectors, sample_papers  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.models import Paper, Subscriber  # noqa: E402
from newsletter.ranking import embeddings  # noqa: E402
from newsletter.ranking.feedback import FeedbackModel, background_prototypes  # noqa: E402

TOPICS = [("mixture of experts", "diffusion"), ("gaussian splatting", "language model"), ("diffusion", "retrieval"),
          ("retrieval", "reinforcement"), ("reinforcement", "gaussian"), ("quantization", "video"),
          ("video", "quantization"), ("kv cache", "image"), ("agent", "3d"), ("speech", "vision")]
TOP = 20
SAMPLED = 50


def readers(texts: list[str], rng: np.random.Generator) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(saved topic, rejected topic, 3 saved paper indices, 2 rejected ones) per topic pair the corpus can serve."""
    found = []
    for like, dislike in TOPICS:
        liked = [i for i, t in enumerate(texts) if like in t]
        disliked = [i for i, t in enumerate(texts) if dislike in t and like not in t]
        if len(liked) >= 6 and len(disliked) >= 3:
            found.append((like, dislike, rng.choice(liked, 3, replace=False), rng.choice(disliked, 2, replace=False)))
    return found


def evaluate(vectors: np.ndarray, texts: list[str], background: tuple[np.ndarray, np.ndarray],
             seeds: int) -> tuple[float, float]:
    saved_share, rejected_share = [], []
    for seed in range(seeds):
        for like, dislike, liked, disliked in readers(texts, np.random.default_rng(seed)):
            model = FeedbackModel.fit_many([vectors[liked]], [vectors[disliked]], *background)
            judged = set(liked) | set(disliked)
            top = [i for i in np.argsort(-model.predict(vectors)[0]) if i not in judged][:TOP]
            saved_share.append(np.mean([like in texts[i] for i in top]))
            rejected_share.append(np.mean([dislike in texts[i] for i in top]))
    return float(np.mean(saved_share)), float(np.mean(rejected_share))


def fit_ms(vectors: np.ndarray, texts: list[str], background: tuple[np.ndarray, np.ndarray]) -> float:
    batch = (readers(texts, np.random.default_rng(0)) * 20)[:20]
    liked, disliked = [vectors[r[2]] for r in batch], [vectors[r[3]] for r in batch]
    started = time.perf_counter()
    for _ in range(20):
        FeedbackModel.fit_many(liked, disliked, *background)
    return (time.perf_counter() - started) / 20 * 1000


MORE, LESS = 3, 2  # clicks of "more like this" on grade-2 papers, of "less like this" on grade-0 papers


def judged_mode(args: argparse.Namespace) -> dict:
    import tempfile
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from benchmarks.ranking_quality import FORMS, SPLITS, grades_of, ndcg, reader, sample_corpus
    from newsletter import db
    from newsletter.clock import today
    from newsletter.links import feedback_url
    from newsletter.ranking import load_pool, profiles_for
    from newsletter.ranking.feedback import record_feedback
    from newsletter.web.feedback import feedback_target
    from subscribers.profiles import add_subscriber

    judged_set = json.loads(args.judged.read_text())
    corpus = sample_corpus()
    vectors = paper_vectors(corpus.papers, args.vectors).astype(np.float32)
    splits = SPLITS if args.split == "both" else (args.split,)
    figures: dict = {"benchmark": "feedback_quality", "mode": "judged", "more": MORE, "less": LESS}
    day = today()
    for split_name in splits:
        pool = corpus.pool(judged_set["splits"][split_name]["files"])
        with tempfile.TemporaryDirectory() as scratch:
            settings = Settings(_env_file=None, data_dir=Path(scratch), database_url=f"sqlite:///{scratch}/fb.db",
                                secret_key="feedback-benchmark", base_url="http://localhost")
            db.upgrade(settings.sqlalchemy_url)
            with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
                stored, members = {}, set(pool)
                for i, source in enumerate(corpus.papers):  # every sample paper is stored; the pool's are today's
                    ingested = datetime.now(UTC) - timedelta(days=0 if i in members else 60)
                    paper = Paper(external_id=source.external_id, title_key=source.title_key, title=source.title,
                                  abstract=source.abstract, authors=list(source.authors), source=source.source,
                                  ingested_at=ingested, embedding=embeddings.to_bytes(vectors[i]),
                                  embedding_model=embeddings.MODEL_NAME)
                    session.add(paper)
                    if i in members:
                        stored[i] = paper
                session.commit()
                position = {paper.id: i for i, paper in stored.items()}  # stored id -> corpus index
                candidates = load_pool(session, day, settings)
                for form in FORMS:
                    rows = []
                    for n, judged in enumerate(judged_set["profiles"]):
                        grades = {i: g for i, g in grades_of(judged, corpus).items() if i in stored}
                        if not grades:
                            continue
                        typed = reader(judged, form)
                        subscriber = add_subscriber(session, f"{form}-{n}@example.org", status="active",
                                                    interests=typed.interests, keywords=typed.keywords)

                        def ranked(subscriber: Subscriber, limit: int = 10) -> list[int]:
                            profile = profiles_for(session, [subscriber], settings)[0]  # noqa: B023 (as recommend)
                            return [position[r.paper.id] for r in candidates.rank(profile, limit)]  # noqa: B023

                        first = ranked(subscriber, 40)
                        top = first[:10]
                        more = [i for i in top if grades.get(i, 0) == 2][:MORE]
                        less = [i for i in top if grades.get(i, 0) == 0][:LESS]
                        for kind, chosen in (("more", more), ("less", less)):
                            for i in chosen:
                                token = feedback_url(subscriber, stored[i].id, kind, settings).rsplit("/", 1)[1]
                                who, paper, clicked, _ = feedback_target(session, token, settings)
                                record_feedback(session, who, paper.id, clicked)
                        session.commit()
                        judged_now = set(more) | set(less)
                        unjudged = {i: g for i, g in grades.items() if i not in judged_now}
                        before = ndcg([i for i in first if i not in judged_now], unjudged)
                        after_ranking = ranked(subscriber)
                        assert not judged_now & set(after_ranking), "a judged paper was shown again"
                        after = ndcg(after_ranking, unjudged)
                        rows.append((judged["name"], len(more), len(less), before, after))
                    before_mean = float(np.mean([r[3] for r in rows]))
                    after_mean = float(np.mean([r[4] for r in rows]))
                    print(f"\n== {form} form, {split_name} split: {len(rows)} profiles; +{MORE} more / -{LESS} less "
                          f"from the first top 10")
                    if args.per_profile:
                        print(f"{'profile':38}{'more':>5}{'less':>5}{'before':>9}{'after':>9}{'lift':>8}")
                        for name, m, k, b, a in rows:
                            print(f"{name:38}{m:5}{k:5}{b:9.3f}{a:9.3f}{a - b:+8.3f}")
                    print(f"{'mean':48}{before_mean:9.4f}{after_mean:9.4f}{after_mean - before_mean:+8.4f}")
                    figures.setdefault(form, {})[split_name] = {
                        "profiles": len(rows), "before": round(before_mean, 4), "after": round(after_mean, 4),
                        "lift": round(after_mean - before_mean, 4),
                        "profiles_improved": sum(1 for r in rows if r[4] > r[3] + 1e-9),
                        "profiles_worse": sum(1 for r in rows if r[4] < r[3] - 1e-9)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("judged", "topics"), default="judged")
    parser.add_argument("--judged", type=Path, default=ROOT / "benchmarks" / "judged" / "profiles.json")
    parser.add_argument("--split", choices=("tuning", "held_back", "both"), default="both")
    parser.add_argument("--per-profile", action="store_true", help="print before / after per profile")
    parser.add_argument("--seeds", type=int, default=8, help="topics mode: random draws of each reader's papers")
    parser.add_argument("--vectors", type=Path, help="reuse (or save) the corpus embeddings in this .npy file")
    args = parser.parse_args()
    settings = Settings()
    if not embeddings.semantic_available(settings):
        sys.exit(embeddings.semantic_status(settings))
    if args.mode == "judged":
        print(json.dumps(judged_mode(args)))
        return
    if not embeddings.semantic_available(settings):
        sys.exit(embeddings.semantic_status(settings))
    papers = sample_papers()
    vectors = paper_vectors(papers, args.vectors).astype(np.float32)
    texts = [f"{p.title} {p.abstract}".casefold() for p in papers]

    sampled = vectors[np.random.default_rng(0).choice(len(vectors), SAMPLED, replace=False)]
    backgrounds = {"prototypes_16": background_prototypes(vectors),
                   f"sampled_{SAMPLED}": (sampled, np.full(SAMPLED, 1 / SAMPLED))}
    figures: dict = {"benchmark": "feedback_quality", "papers": len(papers), "seeds": args.seeds,
                     "readers_per_seed": len(readers(texts, np.random.default_rng(0)))}
    print(f"{len(papers)} papers, {figures['readers_per_seed']} readers x {args.seeds} draws; top {TOP} of each "
          "reader's own model")
    print(f"{'background':>14}  {'saved topic':>11}  {'rejected topic':>14}  {'fit 20 readers':>14}")
    for name, background in backgrounds.items():
        saved, rejected = evaluate(vectors, texts, background, args.seeds)
        milliseconds = fit_ms(vectors, texts, background)
        print(f"{name:>14}  {saved:11.3f}  {rejected:14.3f}  {milliseconds:11.2f} ms")
        figures[name] = {"saved_topic_share": round(saved, 4), "rejected_topic_share": round(rejected, 4),
                         "fit_ms_20_readers": round(milliseconds, 2)}
    ours, baseline = figures["prototypes_16"], figures[f"sampled_{SAMPLED}"]
    figures["saved_share_ratio_vs_sampled"] = round(ours["saved_topic_share"] / baseline["saved_topic_share"], 3)
    figures["fit_speedup_vs_sampled"] = round(baseline["fit_ms_20_readers"] / ours["fit_ms_20_readers"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
