"""Table sizes before and after the retention prune, on a simulated year of editions.

    python benchmarks/retention.py [--editions 365] [--subscribers 10000] [--retention 180] [--picks 10]
                                   [--postgres] [--postgres-url URL] [--folder DIR]

A fresh migrated database (a SQLite file by default; with --postgres a scratch PostgreSQL database, dropped at the
end) is filled directly with bulk inserts (no ranking, no SMTP): one edition a day for `--editions` days up to
today, each with one delivery per subscriber (98% sent, 1% failed, 1% skipped) carrying `--picks` picks with their
reason sentence, chosen from the papers of that edition's candidate window (40 papers ingested a day, each with a
384-dimension embedding as ingest stores it), plus subscribers, feedback and events. Then `newsletter.retention.
prune` runs with NEWSLETTER_RETENTION_DAYS=`--retention` (timed), then once more as the next night would (one more
edition leaves the window; timed), and the report shows rows and bytes per table
before and after:
- SQLite: bytes from the dbstat virtual table (the pages of each table and its indexes) before, and after the prune
  and VACUUM; the file size before, after the prune (freed pages stay in the file and are reused by the next
  editions) and after VACUUM (the disk given back);
- PostgreSQL: pg_total_relation_size (table, indexes and TOAST) before (indexes rebuilt after the bulk load), in
  place after the prune (the files keep their size; vacuum makes the space reusable), and each table rebuilt from
  its live rows (a copy with the same indexes: what VACUUM FULL leaves, measured so that another database's open
  transaction on a shared server cannot hold dead rows back).
The last line is JSON; `ratio` is the bytes of every table after (SQLite: after VACUUM; PostgreSQL: rebuilt) over
before, in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url, text  # noqa: E402

from newsletter import db, retention  # noqa: E402
from newsletter.clock import today  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from tests.support.postgres import scratch_postgres_database  # noqa: E402

PAPERS_PER_DAY = 40
CANDIDATE_DAYS = 7
TABLES = ["paper", "subscriber", "edition", "delivery", "pick", "feedback", "event", "edition_tally",
          "edition_paper_tally"]
REASONS = ["Matches your keywords “KV cache” and “long context”.", "By Yoshua Bengio, whom you follow.",
           "Like “Attention Is All You Need”, which you saved.", "About your interest in diffusion for video.",
           "Trending: 212 upvotes."]
WORDS = ("model language training attention diffusion robot policy vision transformer sparse retrieval agent "
         "benchmark scaling quantization reasoning alignment data efficient graph").split()


def paper_rows(rng: random.Random, first: date, days: int) -> Iterator[tuple]:
    paper_id = 0
    embedding = bytes(rng.getrandbits(8) for _ in range(384 * 4))
    for offset in range(days):
        stamp = datetime.combine(first + timedelta(days=offset), datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
        for _ in range(PAPERS_PER_DAY):
            paper_id += 1
            title = " ".join(rng.choices(WORDS, k=9)).capitalize()
            abstract = " ".join(rng.choices(WORDS, k=160))
            arxiv = f"2401.{paper_id:05d}"
            yield (paper_id, arxiv, title.lower(), title, abstract, json.dumps(["A. Author", "B. Author"]),
                   f"https://arxiv.org/abs/{arxiv}", f"https://arxiv.org/pdf/{arxiv}", "", rng.randrange(200), 0,
                   json.dumps(["cs.LG"]), "hf", stamp, stamp, embedding, "all-MiniLM-L6-v2", "", "", "", "")


PAPER_COLUMNS = ("id, external_id, title_key, title, abstract, authors, url, pdf_url, code_url, upvotes, comments, "
                 "keywords, source, published_at, ingested_at, embedding, embedding_model, tldr, thumbnail_url, "
                 "project_url, organization")
SUBSCRIBER_COLUMNS = ("id, email, email_key, name, status, interests, keywords, followed_authors, excluded_keywords, "
                      "seed_paper_ids, timezone, send_hour, frequency, paused, consent, soft_bounces, profile_key, "
                      "profile_facets, created_at")
EDITION_COLUMNS = "id, date, status, created_at"
DELIVERY_COLUMNS = ("id, edition_id, subscriber_id, status, message_key, message_id, attempts, error, claimed_at, "
                    "sent_at")
PICK_COLUMNS = "id, delivery_id, paper_id, position, score, reasons"


def subscriber_rows(count: int, first: date) -> Iterator[tuple]:
    created = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    for n in range(1, count + 1):
        email = f"reader{n}@example.org"
        yield (n, email, email, "", "active", "language models and efficient inference", '["LLM", "KV cache"]', "[]",
               "[]", "[]", "UTC", 7, "daily", False, "double-opt-in", 0, "", "{}", created)


def edition_rows(first: date, days: int) -> Iterator[tuple]:
    for offset in range(days):
        day = first + timedelta(days=offset)
        yield (offset + 1, day, "done", datetime.combine(day, datetime.min.time(), tzinfo=UTC))


def delivery_and_pick_rows(rng: random.Random, first: date, edition: int, subscribers: int, picks: int,
                           next_delivery: int, next_pick: int) -> tuple[list[tuple], list[tuple]]:
    """One edition's deliveries and picks (ids given explicitly, so bulk inserts need no RETURNING)."""
    day = first + timedelta(days=edition - 1)
    sent_at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)
    newest_paper = edition * PAPERS_PER_DAY  # papers of this day and the CANDIDATE_DAYS - 1 before it
    oldest_paper = max(1, newest_paper - CANDIDATE_DAYS * PAPERS_PER_DAY + 1)
    pool = range(oldest_paper, newest_paper + 1)
    deliveries, pick_rows = [], []
    for subscriber in range(1, subscribers + 1):
        roll = rng.random()
        status = "sent" if roll < 0.98 else "failed" if roll < 0.99 else "skipped"
        delivery = next_delivery + subscriber - 1
        key = f"{rng.getrandbits(96):024x}"
        error = "550 5.1.1 no such user" if status == "failed" else None
        deliveries.append((delivery, edition, subscriber, status, key,
                           f"<edition-{edition}.delivery-{delivery}.{key}@digest.example.org>", 1, error, sent_at,
                           sent_at if status == "sent" else None))
        if status == "skipped":
            continue
        for position, paper in enumerate(rng.sample(pool, picks), start=1):
            pick_rows.append((next_pick, delivery, paper, position, round(rng.random() * 5, 4),
                              json.dumps([rng.choice(REASONS)], ensure_ascii=False)))
            next_pick += 1
    return deliveries, pick_rows


def fill_sqlite(url: str, args, first: date) -> None:
    path = make_url(url).database
    assert path
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")  # bulk loading; the app's engine turns WAL back on
    connection.execute("PRAGMA synchronous=OFF")
    rng = random.Random(17)
    marks = lambda columns: ", ".join("?" * len(columns.split(",")))  # noqa: E731
    with connection:
        connection.executemany(f"INSERT INTO paper ({PAPER_COLUMNS}) VALUES ({marks(PAPER_COLUMNS)})",
                               (tuple(_sqlite(v) for v in row) for row in paper_rows(rng, first, args.editions)))
        connection.executemany(f"INSERT INTO subscriber ({SUBSCRIBER_COLUMNS}) VALUES ({marks(SUBSCRIBER_COLUMNS)})",
                               (tuple(_sqlite(v) for v in row) for row in subscriber_rows(args.subscribers, first)))
        connection.executemany(f"INSERT INTO edition ({EDITION_COLUMNS}) VALUES ({marks(EDITION_COLUMNS)})",
                               (tuple(_sqlite(v) for v in row) for row in edition_rows(first, args.editions)))
        _people_rows(connection.executemany, args, rng, "?")
    next_delivery, next_pick = 1, 1
    for edition in range(1, args.editions + 1):
        deliveries, picks = delivery_and_pick_rows(rng, first, edition, args.subscribers, args.picks, next_delivery,
                                                   next_pick)
        with connection:
            connection.executemany(f"INSERT INTO delivery ({DELIVERY_COLUMNS}) VALUES ({marks(DELIVERY_COLUMNS)})",
                                   (tuple(_sqlite(v) for v in row) for row in deliveries))
            connection.executemany(f"INSERT INTO pick ({PICK_COLUMNS}) VALUES ({marks(PICK_COLUMNS)})", picks)
        next_delivery += len(deliveries)
        next_pick += len(picks)
        _progress(edition, args.editions)
    connection.execute("ANALYZE")
    connection.close()


def _sqlite(value):
    """Values as SQLAlchemy stores them in SQLite (dates and times as text, UTC without an offset)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _people_rows(executemany, args, rng: random.Random, mark: str) -> None:
    """Feedback and events: what the prune must keep."""
    now = datetime.now(UTC)
    feedback = [(n, n, rng.randrange(1, args.editions * PAPERS_PER_DAY), "more" if n % 3 else "less", now)
                for n in range(1, args.subscribers // 2 + 1)]
    executemany(f"INSERT INTO feedback (id, subscriber_id, paper_id, kind, created_at) VALUES "
                f"({', '.join([mark] * 5)})", [tuple(_sqlite(v) for v in row) if mark == "?" else row
                                             for row in feedback])
    events = [(n, n, "confirm", json.dumps({"source": "web"}), now) for n in range(1, args.subscribers + 1)]
    executemany(f"INSERT INTO event (id, subscriber_id, kind, detail, created_at) VALUES ({', '.join([mark] * 5)})",
                [tuple(_sqlite(v) for v in row) if mark == "?" else row for row in events])


def fill_postgres(url: str, args, first: date) -> None:
    import psycopg

    rng = random.Random(17)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        with connection.cursor() as cursor:
            _copy(cursor, "paper", PAPER_COLUMNS, paper_rows(rng, first, args.editions))
            _copy(cursor, "subscriber", SUBSCRIBER_COLUMNS, subscriber_rows(args.subscribers, first))
            _copy(cursor, "edition", EDITION_COLUMNS, edition_rows(first, args.editions))
            _people_rows(cursor.executemany, args, rng, "%s")
        connection.commit()
        next_delivery, next_pick = 1, 1
        for edition in range(1, args.editions + 1):
            deliveries, picks = delivery_and_pick_rows(rng, first, edition, args.subscribers, args.picks,
                                                       next_delivery, next_pick)
            with connection.cursor() as cursor:
                _copy(cursor, "delivery", DELIVERY_COLUMNS, deliveries)
                _copy(cursor, "pick", PICK_COLUMNS, picks)
            connection.commit()
            next_delivery += len(deliveries)
            next_pick += len(picks)
            _progress(edition, args.editions)
        with connection.cursor() as cursor:
            for table in TABLES[:-2]:  # ids were given explicitly: move each sequence past them
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        for table in TABLES:  # indexes as compact as the rebuilt copies measured after the prune
            connection.execute(f'REINDEX TABLE "{table}"')
        connection.execute("VACUUM ANALYZE")


def _copy(cursor, table: str, columns: str, rows) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _progress(done: int, total: int) -> None:
    if done % 25 == 0 or done == total:
        print(f"  generated {done}/{total} editions", file=sys.stderr, flush=True)


def measure(url: str) -> dict[str, dict[str, int]]:
    """Rows and bytes (table + its indexes) per table."""
    engine = db.get_engine(url)
    sizes: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for table in TABLES:
            rows = connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
            if engine.dialect.name == "sqlite":
                size = connection.execute(text(
                    "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = :table)"), {"table": table}).scalar_one()
            else:
                size = connection.execute(text("SELECT pg_total_relation_size(:table)"), {"table": table}).scalar_one()
            sizes[table] = {"rows": int(rows), "bytes": int(size)}
    return sizes


def _checkpoint(url: str) -> None:
    """Move the WAL into the database file (VACUUM in WAL mode writes the whole database to the WAL first)."""
    with db.get_engine(url).connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def measure_rebuilt(url: str) -> dict[str, dict[str, int]]:
    """PostgreSQL: rows and bytes per table as rebuilt from its live rows alone (what VACUUM FULL would leave). Each
    table is copied (LIKE ... INCLUDING ALL: same columns, indexes and constraints), its indexes rebuilt, measured and
    dropped: on a shared server another database's open transaction can stop VACUUM FULL from dropping dead rows."""
    sizes: dict[str, dict[str, int]] = {}
    with db.get_engine(url).begin() as connection:
        for table in TABLES:
            copy = f"rebuilt_{table}"
            connection.execute(text(f'CREATE TABLE "{copy}" (LIKE "{table}" INCLUDING ALL)'))
            rows = connection.execute(text(f'INSERT INTO "{copy}" SELECT * FROM "{table}"')).rowcount
            connection.execute(text(f'REINDEX TABLE "{copy}"'))
            size = connection.execute(text("SELECT pg_total_relation_size(:copy)"), {"copy": copy}).scalar_one()
            connection.execute(text(f'DROP TABLE "{copy}"'))
            sizes[table] = {"rows": int(rows), "bytes": int(size)}
    return sizes


def sqlite_file_bytes(url: str) -> int:
    path = Path(make_url(url).database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


@contextmanager
def fresh_database(args, folder: Path) -> Iterator[str]:
    if args.postgres:
        with scratch_postgres_database(args.postgres_url, "newsletter_retention") as url:
            yield url
        return
    url = f"sqlite:///{folder / 'retention.db'}"
    db.upgrade(url)
    yield url
    db.get_engine(url).dispose()


def table_report(before: dict, after: dict, after_label: str) -> str:
    lines = [f"{'table':<22}{'rows before':>14}{'rows after':>14}{'MB before':>12}{f'MB {after_label}':>22}"]
    for table in TABLES:
        b, a = before[table], after[table]
        lines.append(f"{table:<22}{b['rows']:>14,}{a['rows']:>14,}{b['bytes'] / 1e6:>12.1f}{a['bytes'] / 1e6:>22.1f}")
    total_b = sum(v["bytes"] for v in before.values())
    total_a = sum(v["bytes"] for v in after.values())
    lines.append(f"{'total':<22}{'':>14}{'':>14}{total_b / 1e6:>12.1f}{total_a / 1e6:>22.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editions", type=int, default=365, help="one a day, the last one today")
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--retention", type=int, default=180, help="NEWSLETTER_RETENTION_DAYS")
    parser.add_argument("--picks", type=int, default=10, help="papers per email")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--folder", type=Path, default=None, help="where the SQLite file goes (default: a temp dir)")
    args = parser.parse_args()
    kind = "postgresql" if args.postgres else "sqlite"
    last = today()
    first = last - timedelta(days=args.editions - 1)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder, fresh_database(args, Path(folder)) as url:
        print(f"{kind}: {args.editions} editions x {args.subscribers:,} subscribers x {args.picks} picks, "
              f"retention {args.retention} days", flush=True)
        started = time.perf_counter()
        (fill_postgres if args.postgres else fill_sqlite)(url, args, first)
        generated = time.perf_counter() - started
        before = measure(url)
        file_before = sqlite_file_bytes(url) if kind == "sqlite" else None
        print(f"generated in {generated:.1f} s", flush=True)

        settings = Settings(_env_file=None, database_url=url, retention_days=args.retention,
                            candidate_days=CANDIDATE_DAYS, log_level="WARNING")
        started = time.perf_counter()
        report = retention.prune(settings, today=last)
        prune_seconds = time.perf_counter() - started
        started = time.perf_counter()  # the next night: one more edition leaves the window
        nightly = retention.prune(settings, today=last + timedelta(days=1))
        nightly_seconds = time.perf_counter() - started
        after = measure(url)
        extra: dict = {}
        if kind == "sqlite":
            extra["file_bytes_before"] = file_before
            _checkpoint(url)
            extra["file_bytes_after_prune"] = sqlite_file_bytes(url)
            started = time.perf_counter()
            with db.get_engine(url).connect() as connection:
                connection.exec_driver_sql("VACUUM")
            _checkpoint(url)
            extra["vacuum_seconds"] = round(time.perf_counter() - started, 1)
            extra["file_bytes_after_vacuum"] = sqlite_file_bytes(url)
            extra["dbstat_bytes_after_prune"] = sum(v["bytes"] for v in after.values())
            compact = after
            label = "after (dbstat)"
            compact = measure(url)  # dbstat again: the pages the tables fill once compacted
            label = "after (VACUUM)"
        else:
            extra["bytes_after_prune_in_place"] = sum(v["bytes"] for v in after.values())
            compact = measure_rebuilt(url)
            label = "after (rebuilt)"

    print()
    print(table_report(before, compact, label))
    print()
    total_before = sum(v["bytes"] for v in before.values())
    total_after = sum(v["bytes"] for v in compact.values())
    print(f"prune: {report.removed['delivery']:,} deliveries and {report.removed['pick']:,} picks removed from "
          f"{len(report.editions)} editions in {prune_seconds:.1f} s "
          f"({report.removed['pick'] / max(prune_seconds, 1e-9):,.0f} picks/s); {report.kept_deliveries:,} sent "
          f"deliveries held (papers still candidates of a kept edition)")
    print(f"the next night's prune: {nightly.removed['delivery']:,} deliveries and {nightly.removed['pick']:,} picks "
          f"in {nightly_seconds:.1f} s")
    if kind == "sqlite":
        print(f"file: {extra['file_bytes_before'] / 1e6:,.1f} MB before, {extra['file_bytes_after_prune'] / 1e6:,.1f} "
              f"MB after the prune (free pages reused by later editions), {extra['file_bytes_after_vacuum'] / 1e6:,.1f}"
              f" MB after VACUUM ({extra['vacuum_seconds']} s)")
    else:
        print(f"in place after the prune: {extra['bytes_after_prune_in_place'] / 1e6:,.1f} MB (the files keep their "
              f"size; (auto)vacuum makes the space reusable by the next editions)")
    print(f"total: {total_before / 1e6:,.1f} MB before, {total_after / 1e6:,.1f} MB after: ratio "
          f"{total_after / total_before:.3f}")
    print(json.dumps({
        "benchmark": "retention", "database": kind, "editions": args.editions, "subscribers": args.subscribers,
        "picks_per_email": args.picks, "retention_days": args.retention, "generate_seconds": round(generated, 1),
        "prune_seconds": round(prune_seconds, 2), "removed": report.removed, "kept_deliveries": report.kept_deliveries,
        "nightly_prune_seconds": round(nightly_seconds, 2), "nightly_removed": nightly.removed,
        "before": before, "after": compact, "bytes_before": total_before, "bytes_after": total_after,
        "ratio": round(total_after / total_before, 4), **extra}))


if __name__ == "__main__":
    main()
