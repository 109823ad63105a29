"""Ingest-to-delivered throughput: Celery + Redis with 1, 2, ... worker processes, against the same flow in-process.

    python benchmarks/pipeline.py [--subscribers 20000] [--workers 1,2] [--database postgresql|sqlite]
                                  [--postgres-url URL] [--redis-url redis://127.0.0.1:6379/14]
                                  [--distinct-profiles] [--papers 500] [--smtp-connections N] [--cprofile FILE]
                                  [--profiles-cache FILE.npz]

Each run starts from an empty migrated database (a fresh PostgreSQL database, dropped afterwards, or a SQLite
file) holding the subscribers (all due now: UTC, send hour 0, daily, four interest profiles). Timed: ingest the
bundled sample corpus, plan the edition (rank everyone, record picks) and send every email over SMTP to a sink on
loopback in its own process, until no delivery is pending or sending.
- in-process: `ingest` then `run_daily` in this process (what `newsletter send` does).
- celery N: N `celery worker --pool=solo` processes; the `ingest_sources` task, then one `send_tick`, which fans
  out `plan_batch` and `send_batch` tasks (batches of NEWSLETTER_SEND_BATCH_SIZE, default 200).
The sink counts messages and distinct Message-IDs, so the report shows every run delivered exactly the same work.
The last line is JSON; ratios are against the in-process run and the 1-worker run of the same invocation, and the
in-process send rate against a bare smtplib loop (one connection, pre-built messages) to the same sink.

`--distinct-profiles`: every subscriber has their own profile text (benchmarks/readers.py: research areas x
methods x applications x phrasings), imported through `subscribers import`'s code path, then their profile
vectors computed in one batch (`embed_profiles`: the one-off step of an import, timed and reported apart, never
part of ingest -> last email). `--papers N`: the day holds at least N papers (the sample corpus plus papers
recombined from it). Each in-process phase runs in a child process of its own, so its peak RSS is its own; the
Celery workers' and the sink's peak RSS are read from /proc (VmHWM). "db bytes per subscriber per edition": the
database's growth from after ingest to the last email, divided by the subscribers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, col, func, select  # noqa: E402

from benchmarks import readers  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.config import Settings, get_settings  # noqa: E402
from newsletter.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus  # noqa: E402
from tests.support.postgres import scratch_postgres_database  # noqa: E402

INTERESTS = ["language models and long-context inference", "3D reconstruction and Gaussian splatting",
             "robot learning from demonstrations", "diffusion models for image and video generation"]

SINK_CODE = """
import json, signal, sys, threading
from aiosmtpd.controller import Controller
from newsletter.sink import _free_port
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # wait for SIGTERM below instead of dying of it
class Count:
    def __init__(self): self.total, self.ids, self.lock = 0, set(), threading.Lock()
    async def handle_DATA(self, server, session, envelope):
        head = envelope.original_content.split(b"\\r\\n\\r\\n", 1)[0]
        mid = next((l for l in head.split(b"\\r\\n") if l.lower().startswith(b"message-id:")), b"")
        with self.lock: self.total += 1; self.ids.add(mid)
        return "250 OK"
handler = Count(); port = _free_port("127.0.0.1")
controller = Controller(handler, hostname="127.0.0.1", port=port); controller.start()
print(port, flush=True)
signal.sigwait({signal.SIGTERM})
controller.stop(); print(json.dumps({"messages": handler.total, "distinct_message_ids": len(handler.ids)}), flush=True)
"""


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def own_peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def sink_process(env: dict):
    """An SMTP sink on loopback in its own process (so it does not share a CPU-bound interpreter with a sender)."""
    process = subprocess.Popen([sys.executable, "-c", SINK_CODE], env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None  # stdout=PIPE
    port = int(process.stdout.readline())
    counts: dict = {}
    try:
        yield port, counts
    finally:
        counts["sink_peak_rss_mib"] = peak_rss_mib(process.pid)
        process.send_signal(signal.SIGTERM)
        counts.update(json.loads(process.stdout.readline()))
        process.wait(timeout=30)


@contextmanager
def fresh_database(kind: str, postgres_url: str, folder: Path):
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        db.upgrade(url)
        yield url
        return
    with scratch_postgres_database(postgres_url, "newsletter_bench") as url:
        yield url


def database_bytes(url: str) -> int:
    """The database's size on disk now (SQLite: the file after a WAL checkpoint)."""
    engine = db.get_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def add_subscribers(url: str, count: int) -> None:
    with Session(db.get_engine(url)) as session:
        session.add_all([Subscriber(email=f"reader{n:06d}@example.org", status=SubscriberStatus.active, send_hour=0,
                                    timezone="UTC", interests=INTERESTS[n % len(INTERESTS)]) for n in range(count)])
        session.commit()


COMPOSED_SAMPLE = 500  # profiles encoded for real to measure the encoding rate when vectors are composed


def composed_vectors(settings: Settings, count: int) -> dict:
    """Store each reader's profile vector as the normalized sum of its facets' MiniLM vectors (a few hundred
    phrases encoded, not `count` texts), with the key of their real profile text, so planning finds every profile
    vector stored as after a real import. The real encoding rate is measured on COMPOSED_SAMPLE of the texts and
    the full encoding time extrapolated from it (reported as such)."""
    import numpy as np
    from sqlalchemy import bindparam, update

    from newsletter.ranking import embeddings

    facets_of = {f"reader{n:06d}@example.org": facets
                 for n, (_, _, facets) in enumerate(readers.profiles_with_facets(count))}
    with Session(db.get_engine(settings.sqlalchemy_url)) as session:  # the texts as the import stored them
        stored = [(key, email, embeddings.profile_text(Subscriber(email=email, interests=interests,
                                                                  keywords=list(keywords))))
                  for key, email, interests, keywords in session.exec(
                      select(Subscriber.id, Subscriber.email, Subscriber.interests, Subscriber.keywords))]
    started = time.perf_counter()
    embeddings.encode([profile for _, _, profile in stored[-COMPOSED_SAMPLE:]])
    rate = min(COMPOSED_SAMPLE, len(stored)) / (time.perf_counter() - started)
    started = time.perf_counter()
    phrases = sorted({facet for facets in facets_of.values() for facet in facets})
    by_phrase = dict(zip(phrases, embeddings.encode(phrases)))
    rows = []
    for key, email, profile in stored:
        vector = np.sum([by_phrase[f] for f in facets_of[email]], axis=0)
        rows.append({"row_id": key, "key": embeddings.profile_key(profile),
                     "vector": embeddings.to_bytes(vector / np.linalg.norm(vector))})
    table = Subscriber.__table__  # type: ignore[attr-defined]
    with db.get_engine(settings.sqlalchemy_url).begin() as connection:
        connection.execute(update(table).where(table.c.id == bindparam("row_id"))
                           .values(profile_embedding=bindparam("vector"), profile_key=bindparam("key")), rows)
    return {"profile_encode_rate_per_s": round(rate, 1),
            "profile_embedding_seconds_estimated": round(count / rate, 1),
            "composing_seconds": round(time.perf_counter() - started, 2)}


def import_distinct(settings: Settings, count: int, folder: Path, cache: str = "", composed: bool = False) -> dict:
    """`count` subscribers with distinct profiles through the import's code path, then their profile vectors.
    `cache`: a file of vectors by text hash, read first when it exists (the encoding then mostly is a look-up:
    reported as such) and written afterwards, so runs after the first skip the slow encoding."""
    import numpy as np

    from newsletter.ranking import embeddings, prepare_profiles
    from subscribers.transfer import import_subscribers

    cached = bool(cache) and Path(cache).exists()
    if cached:
        with np.load(cache) as stored:
            embeddings._memo.update(zip(stored["keys"].tolist(), stored["vectors"]))

    path = folder / "readers.jsonl"
    with path.open("w") as out:
        for n, (interests, keywords) in enumerate(readers.profiles(count)):
            out.write(json.dumps({"email": f"reader{n:06d}@example.org", "interests": interests,
                                  "keywords": keywords, "timezone": "UTC", "send_hour": 0}) + "\n")
    started = time.perf_counter()
    with db.session_scope(settings.sqlalchemy_url) as session:
        report = import_subscribers(session, path, confirmed=True)
    imported = time.perf_counter()
    measured = composed_vectors(settings, count) if composed else {}
    preparing = time.perf_counter()
    with db.session_scope(settings.sqlalchemy_url) as session:
        embedded = prepare_profiles(session, settings)
    done = time.perf_counter()
    assert report.imported_total == count, report.as_dict()
    if composed:
        return {"import_seconds": round(imported - started, 2), **measured,
                "profile_facets_seconds": round(done - preparing, 2), "profiles_embedded": embedded,
                "profile_vectors_composed": True}
    if cache and not cached and embeddings._memo:
        np.savez(cache, keys=np.array(list(embeddings._memo)), vectors=np.stack(list(embeddings._memo.values())))
    return {"import_seconds": round(imported - started, 2), "profile_embedding_seconds": round(done - imported, 2),
            "profiles_embedded": embedded, "profile_vectors_from_cache": cached}


def write_extra_papers(folder: Path, papers: int) -> list[str]:
    """Sources adding papers recombined from the sample so the day holds at least `papers` (none needed: [])."""
    from newsletter.ingest import sample_sources

    base = readers.sample_papers([Path(p).read_text() for p in sample_sources()])
    missing = papers - len({title for title, _ in base})
    if missing <= 0:
        return []
    path = folder / "extra-papers.json"
    path.write_text(json.dumps(readers.extra_papers(base, missing)))
    return [str(path)]


def delivery_counts(url: str) -> dict[str, int]:
    with Session(db.get_engine(url)) as session:
        return dict(session.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status))).all())


def environment(url: str, redis_url: str, smtp_port: int, folder: Path, extra_sources: list[str] | None = None,
                smtp_connections: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_REDIS_URL": redis_url, "NEWSLETTER_SMTP_HOST": "127.0.0.1",
           "NEWSLETTER_SMTP_PORT": str(smtp_port), "NEWSLETTER_DATA_DIR": str(folder / "var"),
           "NEWSLETTER_SECRET_KEY": "benchmark-secret", "NEWSLETTER_FROM": "Paper Digest <digest@example.org>",
           "NEWSLETTER_SOURCES": ",".join(["sample", *(extra_sources or [])]), "NEWSLETTER_LOG_LEVEL": "WARNING"}
    if smtp_connections:
        env["NEWSLETTER_SMTP_CONNECTIONS"] = str(smtp_connections)
    return env


def use_environment(env: dict) -> Settings:
    os.environ.update({k: v for k, v in env.items() if k.startswith("NEWSLETTER_")})
    get_settings.cache_clear()
    return get_settings()


def in_process_phases(settings: Settings, cprofile: str = "") -> dict:
    """Ingest, plan, send in this process (what `newsletter send` does), each phase timed. Run in a child."""
    from newsletter.jobs import ingest_sources, plan, send
    from newsletter.models import Edition

    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    day = datetime.now(UTC).date()
    started = time.perf_counter()
    reports = ingest_sources(settings, settings.sources.split(","), day=day)
    assert all(r.ok for r in reports), [r.reason for r in reports if not r.ok]
    ingested = time.perf_counter()
    size_before = database_bytes(settings.sqlalchemy_url)
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        planned = plan(session, day, settings)
        plan_done = time.perf_counter()
        edition = session.get_one(Edition, planned.edition_id)
        sent = send(session, edition, settings)
    done = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(cprofile)
    return {"ingest_seconds": round(ingested - started, 2), "plan_seconds": round(plan_done - ingested, 2),
            "send_seconds": round(done - plan_done, 2), "seconds": round(done - started, 2), "sent_report": sent.sent,
            "db_bytes_added": database_bytes(settings.sqlalchemy_url) - size_before,
            "peak_rss_mib": own_peak_rss_mib()}


def child(phase: str, env: dict, folder: Path, *extra: str) -> dict:
    """Run one phase in a process of its own (its peak RSS is its own); its last stdout line is JSON."""
    result = subprocess.run([sys.executable, str(Path(__file__)), "--phase", phase, "--folder", str(folder), *extra],
                            env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_celery(url: str, settings: Settings, env: dict, workers: int, subscribers: int, folder: Path) -> dict:
    import redis

    from tasks.celery_app import create_celery

    redis.Redis.from_url(settings.redis_url).flushdb()
    client = create_celery(settings)
    logs = [open(folder / f"worker-{workers}-{n}.log", "wb") for n in range(workers)]
    processes = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "--pool=solo",
                                   "-n", f"bench{n}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                                   "--loglevel=WARNING"], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
                 for n, log in enumerate(logs)]
    try:
        wait_for(lambda: len(client.control.ping(timeout=0.5) or []) >= workers, 120, "workers to start", processes)
        started = time.perf_counter()
        client.send_task("tasks.tasks.ingest_sources").get(timeout=600)
        ingested = time.perf_counter()
        size_before = database_bytes(url)
        client.send_task("tasks.tasks.send_tick").get(timeout=600)
        wait_for(lambda: sum(delivery_counts(url).values()) == subscribers, 3600, "every row planned", processes)
        planned = time.perf_counter()
        wait_for(lambda: delivered(url, subscribers), 3600, "every delivery", processes)
        done = time.perf_counter()
        return {"seconds": done - started, "ingest_seconds": round(ingested - started, 2),
                "plan_seconds": round(planned - ingested, 2), "send_seconds": round(done - planned, 2),
                "db_bytes_added": database_bytes(url) - size_before,
                "worker_peak_rss_mib": [peak_rss_mib(p.pid) for p in processes]}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        for log in logs:
            log.close()
        client.close()
        redis.Redis.from_url(settings.redis_url).flushdb()


def delivered(url: str, subscribers: int) -> bool:
    counts = delivery_counts(url)
    return sum(counts.values()) == subscribers and not counts.get("pending") and not counts.get("sending")


def wait_for(condition, timeout: float, what: str, processes) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"a worker exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.25)


def bare_smtplib_rate(port: int, messages: int = 3000, size: int = 20_000) -> float:
    """Messages per second of smtplib.sendmail in a loop on one connection, pre-built messages of `size` bytes."""
    body = ("x" * 76 + "\r\n") * (size // 78)
    data = [f"From: digest@example.org\r\nTo: r{n}@example.org\r\nSubject: bench\r\nMessage-ID: <bare-{n}@bench>\r\n"
            f"\r\n{body}".encode() for n in range(messages)]
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
        for n, message in enumerate(data):
            connection.sendmail("digest@example.org", [f"r{n}@example.org"], message)
    return messages / (time.perf_counter() - started)


def measure(label: str, args, folder: Path, workers: int | None, extra_sources: list[str]) -> dict:
    with fresh_database(args.database, args.postgres_url, folder) as url:
        base_env = environment(url, args.redis_url, 0, folder, extra_sources, args.smtp_connections)
        if args.distinct_profiles:
            setup = child("import", base_env, folder, "--subscribers", str(args.subscribers),
                          *(["--profiles-cache", args.profiles_cache] if args.profiles_cache else []),
                          *(["--composed-vectors"] if args.composed_vectors else []))
            setup["import_peak_rss_mib"] = setup.pop("peak_rss_mib")
        else:
            add_subscribers(url, args.subscribers)
            setup = {}
        with sink_process(base_env) as (port, counts):
            env = environment(url, args.redis_url, port, folder, extra_sources, args.smtp_connections)
            settings = use_environment(env)
            if workers is None:
                phases = child("in-process", env, folder, *(["--cprofile", args.cprofile] if args.cprofile else []))
            else:
                phases = run_celery(url, settings, env, workers, args.subscribers, folder)
            statuses = delivery_counts(url)
        baseline_rate = None
        if workers is None:  # a sink of the same kind of its own, so its counts stay the run's
            with sink_process(base_env) as (bare_port, _):
                baseline_rate = bare_smtplib_rate(bare_port)
        seconds = phases["seconds"]
        sent = statuses.get(DeliveryStatus.sent.value, 0)
        result = {"label": label, **setup, **phases, "seconds": round(seconds, 2), "sent": sent,
                  "emails_per_s": round(sent / seconds, 1),
                  "send_emails_per_s": round(sent / phases["send_seconds"], 1) if phases["send_seconds"] else 0.0,
                  "db_bytes_per_subscriber_per_edition": round(phases["db_bytes_added"] / args.subscribers),
                  **counts}
        if baseline_rate is not None:
            result["bare_smtplib_emails_per_s"] = round(baseline_rate, 1)
        rss = phases.get("peak_rss_mib", phases.get("worker_peak_rss_mib"))
        print(f"{label:>16}: {sent} sent in {seconds:.1f} s = {result['emails_per_s']} emails/s "
              f"(ingest {phases['ingest_seconds']} s, plan {phases['plan_seconds']} s, send {phases['send_seconds']} s"
              f" = {result['send_emails_per_s']} emails/s; sink: {counts['messages']} messages, "
              f"{counts['distinct_message_ids']} distinct Message-IDs)", flush=True)
        if setup.get("profile_vectors_composed"):
            print(f"{'':>18}import {setup['import_seconds']} s; profile vectors composed from facets "
                  f"({setup['profiles_embedded']} profiles); real encoding {setup['profile_encode_rate_per_s']} "
                  f"profiles/s, so about {setup['profile_embedding_seconds_estimated']} s for all", flush=True)
        elif setup:
            print(f"{'':>18}import {setup['import_seconds']} s, profile embedding "
                  f"{setup['profile_embedding_seconds']} s ({setup['profiles_embedded']} profiles, "
                  f"peak RSS {setup['import_peak_rss_mib']} MiB)", flush=True)
        print(f"{'':>18}peak RSS MiB: run {rss}, sink {counts['sink_peak_rss_mib']}; database +"
              f"{result['db_bytes_per_subscriber_per_edition']} bytes per subscriber per edition"
              + (f"; bare smtplib loop {result['bare_smtplib_emails_per_s']} emails/s" if baseline_rate else ""),
              flush=True)
        return result


def run_phase(args) -> None:
    """A child's phase (see `child`): print its figures as one JSON line."""
    settings = get_settings()
    folder = Path(args.folder)
    if args.phase == "import":
        figures = import_distinct(settings, args.subscribers, folder, args.profiles_cache, args.composed_vectors)
    else:
        figures = in_process_phases(settings, args.cprofile)
    print(json.dumps({**figures, "peak_rss_mib": own_peak_rss_mib()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker process counts (0: none)")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a server where a temporary database may be created")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14",
                        help="flushed before and after each run (not a database the tests use)")
    parser.add_argument("--distinct-profiles", action="store_true",
                        help="a profile of their own per subscriber, imported, then embedded in one batch")
    parser.add_argument("--papers", type=int, default=500, help="at least this many papers in the day")
    parser.add_argument("--smtp-connections", type=int, default=None, help="NEWSLETTER_SMTP_CONNECTIONS")
    parser.add_argument("--profiles-cache", default="",
                        help="profile vectors kept in this .npz between runs (written by the first)")
    parser.add_argument("--composed-vectors", action="store_true",
                        help="profile vectors composed from facet vectors; encoding time extrapolated from a sample")
    parser.add_argument("--cprofile", default="", help="write the in-process run's cProfile stats here")
    parser.add_argument("--phase", choices=["import", "in-process"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    worker_counts = [int(n) for n in args.workers.split(",") if n.strip() and int(n)]
    print(f"pipeline benchmark: {args.subscribers} subscribers"
          f"{' (distinct profiles)' if args.distinct_profiles else ''}, {args.database}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        folder = Path(tmp)
        extra_sources = write_extra_papers(folder, args.papers)
        baseline = measure("in-process", args, folder, None, extra_sources)
        runs = [measure(f"celery {n} worker{'s' if n > 1 else ''}", args, folder, n, extra_sources)
                for n in worker_counts]
    figures = {"benchmark": "pipeline", "subscribers": args.subscribers, "database": args.database,
               "cpus": os.cpu_count(), "in_process_emails_per_s": baseline["emails_per_s"],
               "in_process_seconds": baseline["seconds"], "distinct_profiles": args.distinct_profiles,
               **{f"in_process_{key}": baseline[key] for key in (
                   "ingest_seconds", "plan_seconds", "send_seconds", "send_emails_per_s", "peak_rss_mib",
                   "db_bytes_per_subscriber_per_edition", "bare_smtplib_emails_per_s")},
               "in_process_send_vs_bare_smtplib": round(baseline["send_emails_per_s"]
                                                        / baseline["bare_smtplib_emails_per_s"], 2),
               "sink_peak_rss_mib": baseline["sink_peak_rss_mib"],
               "smtp_connections": args.smtp_connections or Settings().smtp_connections}
    for key in ("import_seconds", "profile_embedding_seconds", "profile_vectors_from_cache", "import_peak_rss_mib",
                "profile_encode_rate_per_s", "profile_embedding_seconds_estimated", "profile_vectors_composed"):
        if key in baseline:
            figures[key] = baseline[key]
    for n, run in zip(worker_counts, runs):
        figures[f"celery_{n}_workers_emails_per_s"] = run["emails_per_s"]
        figures[f"celery_{n}_workers_seconds"] = run["seconds"]
        figures[f"celery_{n}_workers_vs_in_process"] = round(run["emails_per_s"] / baseline["emails_per_s"], 2)
        for key in ("plan_seconds", "send_seconds", "worker_peak_rss_mib", "db_bytes_per_subscriber_per_edition"):
            figures[f"celery_{n}_workers_{key}"] = run[key]
        if worker_counts[0] != n:
            ratio = run["emails_per_s"] / runs[0]["emails_per_s"]
            figures[f"celery_{n}_workers_vs_{worker_counts[0]}"] = round(ratio, 2)
    figures["all_runs_delivered_everyone_once"] = all(
        r["sent"] == args.subscribers == r["messages"] == r["distinct_message_ids"] for r in [baseline, *runs])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
