"""Small builders shared by tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from sqlmodel import select

from newsletter.clock import today
from newsletter.config import Settings, environment_of
from newsletter.editions import plan_edition
from newsletter.ingest import ingest, sample_sources
from newsletter.models import Delivery, Subscriber, SubscriberStatus
from newsletter.ranking.embeddings import embed_missing
from subscribers.profiles import add_subscriber
from tests.conftest import make_settings

# Settings for reading the bundled corpus and embedding it (what jobs.ingest_sources does), whatever the test's.
SAMPLE_SETTINGS = make_settings()


def ingest_sample(session) -> None:
    """The bundled sample corpus, stored with its paper vectors (as newsletter.jobs.ingest_sources stores it)."""
    for source in sample_sources():
        ingest(session, source, SAMPLE_SETTINGS)
    embed_missing(session, SAMPLE_SETTINGS)
    session.commit()


def add_active(session, email: str, interests: str = "", keywords: str = "", **profile):
    subscriber = add_subscriber(session, email, status=SubscriberStatus.active, interests=interests,
                                keywords=keywords, **profile)
    session.commit()
    return subscriber


def received(sink) -> list[EmailMessage]:
    """The messages the SMTP sink accepted, parsed (modern email policy), oldest first."""
    return [message_from_bytes(e.original_content, policy=default) for e in sink.handler.envelopes]


def html_part(message: EmailMessage) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()


def text_part(message: EmailMessage) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()


def unsubscribe_url(message: EmailMessage) -> str:
    match = re.search(r"<(https?://[^>]+)>", message["List-Unsubscribe"])
    assert match is not None, message["List-Unsubscribe"]
    return match.group(1)


def csrf_token(client, url: str) -> str:
    """GET a page with a form (the client keeps the CSRF cookie) and return the form's hidden token."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match is not None, "no csrf_token field in the form"
    return match.group(1)


def sign_up(web, email, **fields):
    data = {"csrf_token": csrf_token(web, "/"), "email": email, "interests": "", "keywords": "",
            "frequency": "daily", "send_hour": "7", "timezone": "UTC", **fields}
    return web.post("/subscribe", data=data)


def make_old_token(monkeypatch, purpose, subscriber, days, settings, extra=None):
    """A genuine token signed `days` ago."""
    from subscribers.tokens import make_token

    with monkeypatch.context() as patch:
        patch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp",
                      lambda self: int(time.time()) - days * 86400)
        return make_token(purpose, subscriber.id, subscriber.email, settings, extra)


def links(message: EmailMessage, path: str) -> list[str]:
    """Every URL in the text part whose path starts with `path`, e.g. "/confirm/"."""
    return re.findall(rf"https?://[^\s<>\"]+{re.escape(path)}[^\s<>\"]+", text_part(message))


def without_tokens(text: str) -> str:
    """Signed links carry their signing second, so two renderings of one email may differ there (only there)."""
    text = re.sub(r"/(unsubscribe|preferences|view|feedback|confirm)/[\w.=-]+", r"/\1/TOKEN", text.replace("=\r\n", ""))
    return re.sub(r"subject=unsubscribe%20[\w.=-]+", "subject=unsubscribe%20TOKEN", text).strip()  # mailto: form


def url_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def day(value: str) -> date:
    return date.fromisoformat(value)


def configured(settings, smtp, **extra):
    """Settings pointing at the SMTP server `smtp`, with short backoff so the tests stay fast (and a timeout long
    enough for a busy machine: tests of timeouts set their own)."""
    return settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_timeout": 2.0,
                                       "retry_base_delay": 0.05, "retry_max_delay": 0.2, **extra})


def planned(session, settings, *emails) -> int:
    """Today's edition planned for these (new, active) readers from the small fixture corpus; its id."""
    ingest(session, str(Path(__file__).parent / "fixtures" / "hf_daily_papers.json"), settings)
    for email in emails:
        add_active(session, email, "language models")
    plan = plan_edition(session, today(), settings)
    session.commit()
    return plan.edition_id


def deliveries(session) -> dict[str, Delivery]:
    """Every delivery row, freshly read, by its subscriber's address."""
    session.expire_all()
    rows = session.exec(select(Delivery, Subscriber.email).join(Subscriber)).all()
    return {email: delivery for delivery, email in rows}


def status_of(session, email) -> str:
    session.expire_all()
    return session.exec(select(Subscriber.status).where(Subscriber.email == email)).one()


def ingest_titled(session, tmp_path, titles: list[str]) -> None:
    """Ingest only the sample papers with these titles (a small real corpus: embedding it stays quick)."""
    from newsletter.ingest import parse_source, read_source

    wanted = set(titles)
    found = {p.title: p for s in sample_sources() for p in parse_source(read_source(s), s) if p.title in wanted}
    missing = wanted - set(found)
    assert not missing, f"not in the sample corpus: {missing}"
    listing = tmp_path / "slice.txt"
    listing.write_text("".join(f"{found[t].title}\n{found[t].abstract}\n" for t in titles), encoding="utf-8")
    ingest(session, str(listing), SAMPLE_SETTINGS)
    embed_missing(session, SAMPLE_SETTINGS)
    session.commit()


ROOT = Path(__file__).resolve().parent.parent


def run_cli(settings: Settings, cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`newsletter ARGS...` in a subprocess configured only by `settings` (see process_environment)."""
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env=process_environment(settings), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def process_environment(settings: Settings) -> dict[str, str]:
    """The environment for a process the test starts (a worker, a CLI run): this one's, without any NEWSLETTER_*
    variable of the shell, plus `settings` as NEWSLETTER_* variables."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return {**inherited, **environment_of(settings),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


class WorkerProcess:
    """A real `celery worker` subprocess (solo pool: one process, one task at a time) using the test's settings.

    `with WorkerProcess("a", tmp_path) as worker:`; `worker.kill()` is a SIGKILL, as a crash would be.
    """

    def __init__(self, name: str, folder: Path, settings: Settings, extra_env: dict[str, str] | None = None):
        self.name = f"{name}-{os.getpid()}@test"
        self.log_path = Path(folder) / f"worker-{name}.log"
        env = {**process_environment(settings), **(extra_env or {}),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "--pool=solo", "-n", self.name,
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
            env=env, cwd=folder, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_until(condition, timeout: float, what: str, workers=(), interval: float = 0.1):
    """Poll `condition()` until it is truthy; fail with `what` after `timeout` s or if a worker died."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
