"""Delivery throughput: our engine against a raw smtplib loop, same pre-rendered messages, same sink.

    python benchmarks/delivery.py [--messages 5000] [--rounds 3] [--chunk 500] [--sink auto|smtp-sink|aiosmtpd]
                                  [--no-install]

The sink runs in a separate process on loopback: Postfix's `smtp-sink` when available (the setup installs the
Debian package `postfix` with apt-get when running as root, without starting the Postfix service), else
aiosmtpd. "Raw" is `smtplib.SMTP.sendmail` in a loop on one connection. "Ours" is `send_edition` with the whole
ledger (claim, send-time suppression check, SMTP, mark sent) against a SQLite file, composing nothing: both
sides send the same bytes. Each round sends every message once per side, in chunks that alternate between the
two sides (each chunk on one connection; ours through `send_edition(delivery_ids=chunk)` as a batch task does),
so that load from other processes on the machine falls on both alike. A side's rate is its messages divided by
its total time; the median over rounds is reported. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update
from sqlmodel import Session

from newsletter import db
from newsletter.compose import render_for
from newsletter.config import Settings
from newsletter.delivery.message import delivery_message_id, message_bytes
from newsletter.delivery.send import send_edition
from newsletter.ingest import ingest, sample_sources
from newsletter.models import Delivery, DeliveryStatus, Edition, Subscriber, SubscriberStatus
from newsletter.ranking import recommend, trending_papers

DAY = datetime.now(UTC).date()
SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_smtp_sink(install: bool) -> bool:
    if Path(SMTP_SINK).exists():
        return True
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("setup: installing the Debian package postfix for smtp-sink (the Postfix service is not started)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select No configuration\n",
                   check=False)
    result = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix"], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix"], env=env,
                       capture_output=True)
    return Path(SMTP_SINK).exists()


def start_sink(kind: str, install: bool) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    if kind in ("auto", "smtp-sink") and ensure_smtp_sink(install):
        user = "postfix" if _user_exists("postfix") else "nobody"
        process = subprocess.Popen([SMTP_SINK, "-u", user, f"127.0.0.1:{port}", "256"])
        name = "postfix smtp-sink"
    elif kind == "smtp-sink":
        raise SystemExit("smtp-sink is not available (and could not be installed)")
    else:
        process = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                                    "-c", "aiosmtpd.handlers.Sink"])
        name = "aiosmtpd (separate process)"
    _wait_for_port(port)
    return process, port, name


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the sink did not start on port {port}")


def prepare(settings: Settings, count: int) -> tuple[int, list[tuple[str, bytes]], dict[int, bytes]]:
    """A migrated SQLite file with `count` active subscribers and an edition; their messages, rendered once."""
    db.upgrade(settings.sqlalchemy_url)
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        for source in sample_sources():
            ingest(session, source, settings)
        subscribers = [Subscriber(email=f"reader{i:05d}@example.org", status=SubscriberStatus.active,
                                  interests="efficient inference for large language models")
                       for i in range(count)]
        edition = Edition(date=DAY)
        session.add_all([edition, *subscribers])
        session.commit()
        deliveries = [Delivery(edition_id=edition.id, subscriber_id=s.id) for s in subscribers]
        session.add_all(deliveries)
        session.commit()
        rendered = render_for(subscribers[0], DAY, recommend(session, subscribers[0], DAY, settings),
                              trending_papers(session, DAY, settings), settings)
        by_delivery = {
            d.id: message_bytes(rendered, s, delivery_message_id(d.edition_id, d.id, d.message_key, settings), settings)
            for d, s in zip(deliveries, subscribers)}
        ordered = [(s.email, by_delivery[d.id]) for d, s in zip(deliveries, subscribers)]
        return edition.id, ordered, by_delivery


def raw_chunk(port: int, sender: str, messages: list[tuple[str, bytes]]) -> float:
    """Seconds to send `messages` with smtplib on one connection."""
    started = time.perf_counter()
    connection = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for recipient, data in messages:
        connection.sendmail(sender, [recipient], data)
    connection.quit()
    return time.perf_counter() - started


def ours_chunk(session: Session, settings: Settings, edition_id: int, ids: list[int],
               by_delivery: dict[int, bytes]) -> float:
    """Seconds for our engine to send the deliveries `ids` (one send_edition call, one connection)."""
    started = time.perf_counter()
    report = send_edition(session, edition_id, settings, delivery_ids=ids,
                          compose=lambda delivery_id, _, __: by_delivery[delivery_id])
    elapsed = time.perf_counter() - started
    if report.sent != len(ids):
        raise SystemExit(f"our engine sent {report.sent} of {len(ids)}: {report.errors[:3]}")
    return elapsed


def one_round(port: int, settings: Settings, edition_id: int, messages: list[tuple[str, bytes]],
              by_delivery: dict[int, bytes], chunk: int) -> tuple[float, float]:
    """(raw msg/s, ours msg/s) over all messages, chunks alternating between the two sides."""
    ids = sorted(by_delivery)
    raw_seconds = ours_seconds = 0.0
    with Session(db.get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        session.exec(update(Delivery).values(status=DeliveryStatus.pending.value, attempts=0, message_id=None,
                                             sent_at=None, claimed_at=None))
        session.exec(update(Edition).values(status="planned"))
        session.commit()
        for number, start in enumerate(range(0, len(ids), chunk)):
            raw_messages, our_ids = messages[start:start + chunk], ids[start:start + chunk]
            sides = [lambda: raw_chunk(port, "digest@localhost", raw_messages),  # noqa: B023 (called at once)
                     lambda: ours_chunk(session, settings, edition_id, our_ids, by_delivery)]  # noqa: B023
            if number % 2:
                sides.reverse()
            first, second = (side() for side in sides)
            raw, ours = (first, second) if number % 2 == 0 else (second, first)
            raw_seconds += raw
            ours_seconds += ours
    return len(ids) / raw_seconds, len(ids) / ours_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=500, help="messages per alternating chunk")
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--no-install", action="store_true", help="never install postfix for smtp-sink")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as folder:
        process, port, sink_name = start_sink(options.sink, not options.no_install)
        try:
            settings = Settings(data_dir=Path(folder), database_url=f"sqlite:///{folder}/bench.db",
                                secret_key="benchmark", smtp_host="127.0.0.1", smtp_port=port,
                                base_url="https://digest.example.org")
            print(f"preparing {options.messages} deliveries and their messages ...", flush=True)
            edition_id, messages, by_delivery = prepare(settings, options.messages)
            sizes = [len(data) for _, data in messages]
            print(f"sink: {sink_name} on 127.0.0.1:{port}; messages: {len(messages)}, "
                  f"mean size {statistics.mean(sizes) / 1024:.1f} KiB")
            raw, ours = [], []
            for number in range(1, options.rounds + 1):
                raw_rate, ours_rate = one_round(port, settings, edition_id, messages, by_delivery, options.chunk)
                raw.append(raw_rate)
                ours.append(ours_rate)
                print(f"round {number}: raw smtplib {raw_rate:8.0f} msg/s   ours {ours_rate:8.0f} msg/s   "
                      f"ours/raw {ours_rate / raw_rate:.2f}", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=10)
    raw_median, ours_median = statistics.median(raw), statistics.median(ours)
    ratio = ours_median / raw_median
    print(f"median: raw {raw_median:.0f} msg/s, ours {ours_median:.0f} msg/s, ours/raw = {ratio:.2f} "
          f"(target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    print(json.dumps({"benchmark": "delivery", "messages": len(messages), "rounds": options.rounds,
                      "chunk": options.chunk,
                      "sink": sink_name, "mean_message_bytes": round(statistics.mean(sizes)),
                      "raw_msgs_per_s": round(raw_median, 1), "ours_msgs_per_s": round(ours_median, 1),
                      "ratio": round(ratio, 3), "raw_rounds": [round(r, 1) for r in raw],
                      "ours_rounds": [round(o, 1) for o in ours], "target_ratio": 0.8, "target_met": ratio >= 0.8}))


if __name__ == "__main__":
    main()
