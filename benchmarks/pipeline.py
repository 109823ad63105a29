"""Ingest-to-delivered throughput: Celery + Redis with 1, 2, ... worker processes, against the same flow in-process.

    python benchmarks/pipeline.py [--subscribers 20000] [--workers 1,2] [--database postgresql|sqlite]
                                  [--postgres-url URL] [--redis-url redis://127.0.0.1:6379/14]

Each run starts from an empty migrated database (a fresh PostgreSQL database, dropped afterwards, or a SQLite
file) holding the subscribers (all due now: UTC, send hour 0, daily, four interest profiles). Timed: ingest the
bundled sample corpus, plan the edition (rank everyone, record picks) and send every email over SMTP to a sink on
loopback in its own process, until no delivery is pending or sending.
- in-process: `ingest` then `run_daily` in this process (what `newsletter send` does).
- celery N: N `celery worker --pool=solo` processes; the `ingest_sources` task, then one `send_tick`, which fans
  out `plan_batch` and `send_batch` tasks (batches of NEWSLETTER_SEND_BATCH_SIZE, default 200).
The sink counts messages and distinct Message-IDs, so the report shows every run delivered exactly the same work.
The last line is JSON; ratios are against the in-process run and the 1-worker run of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
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

from sqlmodel import Session, col, func, select  # noqa: E402

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


def add_subscribers(url: str, count: int) -> None:
    with Session(db.get_engine(url)) as session:
        session.add_all([Subscriber(email=f"reader{n:06d}@example.org", status=SubscriberStatus.active, send_hour=0,
                                    timezone="UTC", interests=INTERESTS[n % len(INTERESTS)]) for n in range(count)])
        session.commit()


def delivery_counts(url: str) -> dict[str, int]:
    with Session(db.get_engine(url)) as session:
        return dict(session.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status))).all())


def environment(url: str, redis_url: str, smtp_port: int, folder: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_REDIS_URL": redis_url, "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(smtp_port), "NEWSLETTER_DATA_DIR": str(folder / "var"),
            "NEWSLETTER_SECRET_KEY": "benchmark-secret", "NEWSLETTER_FROM": "Paper Digest <digest@example.org>",
            "NEWSLETTER_SOURCES": "sample", "NEWSLETTER_LOG_LEVEL": "WARNING"}


def use_environment(env: dict) -> Settings:
    os.environ.update({k: v for k, v in env.items() if k.startswith("NEWSLETTER_")})
    get_settings.cache_clear()
    return get_settings()


def run_in_process(url: str, settings: Settings) -> float:
    from newsletter.ingest import ingest, sample_sources
    from newsletter.jobs import run_daily

    started = time.perf_counter()
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        for source in sample_sources():
            ingest(session, source, settings)
        session.commit()
        run_daily(session, datetime.now(UTC).date(), settings)
    return time.perf_counter() - started


def run_celery(url: str, settings: Settings, env: dict, workers: int, subscribers: int, folder: Path) -> float:
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
        client.send_task("tasks.tasks.send_tick").get(timeout=600)
        wait_for(lambda: delivered(url, subscribers), 3600, "every delivery", processes)
        return time.perf_counter() - started
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


def measure(label: str, args, folder: Path, workers: int | None) -> dict:
    with fresh_database(args.database, args.postgres_url, folder) as url:
        add_subscribers(url, args.subscribers)
        with sink_process(environment(url, args.redis_url, 0, folder)) as (port, counts):
            env = environment(url, args.redis_url, port, folder)
            settings = use_environment(env)
            if workers is None:
                seconds = run_in_process(url, settings)
            else:
                seconds = run_celery(url, settings, env, workers, args.subscribers, folder)
            statuses = delivery_counts(url)
        result = {"label": label, "seconds": round(seconds, 2), "sent": statuses.get(DeliveryStatus.sent.value, 0),
                  "emails_per_s": round(statuses.get(DeliveryStatus.sent.value, 0) / seconds, 1), **counts}
        print(f"{label:>16}: {result['sent']} sent in {seconds:.1f} s = {result['emails_per_s']} emails/s "
              f"(sink: {counts['messages']} messages, {counts['distinct_message_ids']} distinct Message-IDs)",
              flush=True)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker process counts")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a server where a temporary database may be created")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14",
                        help="flushed before and after each run (not a database the tests use)")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    print(f"pipeline benchmark: {args.subscribers} subscribers, {args.database}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        folder = Path(tmp)
        baseline = measure("in-process", args, folder, None)
        runs = [measure(f"celery {n} worker{'s' if n > 1 else ''}", args, folder, n) for n in worker_counts]
    figures = {"benchmark": "pipeline", "subscribers": args.subscribers, "database": args.database,
               "cpus": os.cpu_count(), "in_process_emails_per_s": baseline["emails_per_s"],
               "in_process_seconds": baseline["seconds"]}
    for n, run in zip(worker_counts, runs):
        figures[f"celery_{n}_workers_emails_per_s"] = run["emails_per_s"]
        figures[f"celery_{n}_workers_seconds"] = run["seconds"]
        figures[f"celery_{n}_workers_vs_in_process"] = round(run["emails_per_s"] / baseline["emails_per_s"], 2)
        if worker_counts[0] != n:
            ratio = run["emails_per_s"] / runs[0]["emails_per_s"]
            figures[f"celery_{n}_workers_vs_{worker_counts[0]}"] = round(ratio, 2)
    figures["all_runs_delivered_everyone_once"] = all(
        r["sent"] == args.subscribers == r["messages"] == r["distinct_message_ids"] for r in [baseline, *runs])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
