"""The fault suite's scenarios, on real processes, counted at the receiving side.

tests/test_faults.py runs each scenario as a test; `python benchmarks/faults.py` runs the same ones and prints
their table. Each scenario sends an edition through real processes: an SMTP server process that writes every
message it accepts to a folder before answering 250 (the receiving side: everything is counted there, by
recipient and Message-ID), Celery worker processes, `celery beat`, a redis-server of its own and, for the
database restart, a PostgreSQL cluster of its own. It injects one fault mid-edition, lets the system recover
by itself and returns a FaultResult:

- delivered: expected recipients who received the edition;
- duplicated: copies beyond the first (the same recipient twice); must be at most `in_flight`;
- lost: expected recipients who never received it; must be 0;
- in_flight: messages claimed but not yet recorded when the fault hit (rows `sending`, counted around it: while
  the frozen SMTP server holds them; before and after the database restart, within the lease).

Retry delays, the lease and the tick period are shortened (FAULT_TIMINGS) so a scenario takes seconds.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import func, text
from sqlmodel import col, select

from newsletter import db
from newsletter.config import Settings
from newsletter.ingest import ingest
from newsletter.models import Delivery, DeliveryStatus, Edition, Paper, Subscriber, SubscriberStatus
from tests.helpers import ROOT, WorkerProcess, process_environment, run_cli

REDIS_SERVER = "/usr/bin/redis-server"
PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
CORPUS = ROOT / "tests" / "fixtures" / "hf_daily_papers.json"
SINK = Path(__file__).with_name("sink_process.py")
# What every scenario runs with: a tick a second, a 5 s lease, retries after 1-5 s, 40 messages/s per sender.
FAULT_TIMINGS = {"send_tick_seconds": 1, "delivery_lease_seconds": 5, "retry_base_delay": 1, "retry_max_delay": 5,
                 "smtp_timeout": 5, "send_batch_size": 50, "send_rate": 40, "semantic": "off",
                 "sources": str(CORPUS), "redis_key_prefix": ""}


@dataclass
class FaultResult:
    case: str
    expected: int
    delivered: int
    duplicated: int
    lost: int
    in_flight: int
    unexpected: int  # messages to someone who should not have had one (must be 0)
    seconds: float
    notes: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ---- the receiving side ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


class SinkProcess:
    """The SMTP server in a process of its own (tests/support/sink_process.py); `stop()` takes it down hard
    (SIGKILL, as a crashed or unplugged server), `start()` brings it back on the same port and folder."""

    def __init__(self, folder: Path):
        self.folder, self.port = Path(folder), free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> SinkProcess:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        log = (self.folder.parent / "sink.log").open("ab")
        self.process = subprocess.Popen([sys.executable, str(SINK), str(self.folder), str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=self.folder.parent)
        _wait_port(self.port, self.process, "the SMTP sink")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the server stops answering; senders wait on it with their message in flight."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def received(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of every message the server accepted."""
        parser, found = BytesHeaderParser(), []
        for path in sorted(self.folder.glob("*.eml")):
            headers = parser.parsebytes(path.read_bytes())
            found.append((parseaddr(str(headers["To"]))[1].lower(), str(headers["Message-ID"])))
        return found

    def count(self) -> int:
        return sum(1 for _ in self.folder.glob("*.eml"))


def tally(received: list[tuple[str, str]], expected: set[str]) -> dict:
    """Delivered, duplicated, lost and unexpected, counted on what the server received."""
    copies = Counter(recipient for recipient, _ in received)
    ids_per_recipient = Counter(recipient for recipient, _ in set(received))
    return {"delivered": len(expected & set(copies)),
            "duplicated": sum(n - 1 for r, n in copies.items() if r in expected),
            "lost": len(expected - set(copies)),
            "unexpected": sum(n for r, n in copies.items() if r not in expected),
            # a duplicate is the same delivery sent again (one Message-ID), never a second delivery
            "second_deliveries": sum(1 for n in ids_per_recipient.values() if n > 1)}


# ---- services of the scenario's own -------------------------------------------------------------------------

class RedisServer:
    """A redis-server on a free port, nothing persisted: a restart loses every queued task."""

    def __init__(self, folder: Path):
        self.folder, self.port = Path(folder), free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def unavailable_reason() -> str:
        return "" if os.access(REDIS_SERVER, os.X_OK) else f"{REDIS_SERVER} is missing (apt-get install redis-server)"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.process, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb, pg_ctl) run as the `postgres` OS user on a free port, in a temp
    dir removed at the end; `stop()` is a fast shutdown (every session terminated), `start()` brings it back."""

    def __init__(self):
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.folder / "data"

    @staticmethod
    def unavailable_reason() -> str:
        if not PG_BINS:
            return "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin)"
        if os.geteuid() != 0 or not shutil.which("runuser"):
            return "a PostgreSQL cluster of the test's own needs root (to run it as the postgres user)"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "there is no postgres OS user"
        return ""

    def _pg(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=timeout,
                       cwd=self.folder)

    def __enter__(self) -> PostgresCluster:
        try:
            shutil.chown(self.folder, "postgres", "postgres")
            self._pg(f"{PG_BINS[-1]}/initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                     "-E", "UTF8")
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._pg(f"{PG_BINS[-1]}/pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=100")
        self._pg(f"{PG_BINS[-1]}/pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"),
                 "-w", "start")

    def stop(self) -> None:
        self._pg(f"{PG_BINS[-1]}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def database(self, name: str) -> str:
        """A new database on the cluster, migrated to head; its URL."""
        admin = db.get_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
        db.upgrade(url)
        return url


class BeatProcess:
    """A real `celery beat` with the scenario's settings (its own schedule and pid files)."""

    def __init__(self, name: str, folder: Path, settings: Settings):
        self.name, self.log_path = name, Path(folder) / f"beat-{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "beat", "--loglevel=INFO",
             "-s", str(Path(folder) / f"beat-{name}.schedule"), "--pidfile", str(Path(folder) / f"beat-{name}.pid")],
            env=process_environment(settings), cwd=folder, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def __enter__(self) -> BeatProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"beat {self.name} exited with {self.process.returncode}:\n{self.log()}")

    def ticks(self) -> int:
        """send_tick tasks this beat has sent so far."""
        return self.log().count("Sending due task send-tick")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# ---- one scenario's stack ------------------------------------------------------------------------------------

class Stack:
    """The processes of one scenario: its Redis, the SMTP sink process, workers and beats; `settings` point at
    them (with FAULT_TIMINGS)."""

    def __init__(self, settings: Settings, folder: Path, exits: ExitStack, **overrides):
        self.folder, self.exits = Path(folder), exits
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis = exits.enter_context(RedisServer(self.folder / "redis"))
        self.sink = exits.enter_context(SinkProcess(self.folder / "received"))
        self.settings = settings.model_copy(update={
            **FAULT_TIMINGS, "redis_url": self.redis.url, "smtp_host": "127.0.0.1", "smtp_port": self.sink.port,
            "data_dir": self.folder / "var", **overrides})
        self.workers: list[WorkerProcess] = []
        self.beats: list[BeatProcess] = []
        self.started = time.monotonic()

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.workers.append(self.exits.enter_context(WorkerProcess(f"w{len(self.workers)}", self.folder,
                                                                       self.settings)))

    def start_beat(self, name: str = "beat") -> BeatProcess:
        beat = self.exits.enter_context(BeatProcess(name, self.folder, self.settings))
        self.beats.append(beat)
        return beat

    def check_alive(self) -> None:
        processes: list[WorkerProcess | BeatProcess] = [*self.workers, *self.beats]
        for process in processes:
            process.check_alive()

    def wait(self, condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
        """Poll `condition` (the processes must stay alive meanwhile); False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_alive()
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)
        return True

    def wait_all(self, expected: set[str], timeout: float) -> bool:
        return self.wait(lambda: expected <= {r for r, _ in self.sink.received()}, timeout, interval=0.5)

    def result(self, case: str, expected: set[str], in_flight: int, **notes) -> FaultResult:
        counts = tally(self.sink.received(), expected)
        notes["second_deliveries"] = counts.pop("second_deliveries")
        notes.update(rows_by_status(self.settings))
        return FaultResult(case=case, expected=len(expected), in_flight=in_flight,
                           seconds=round(time.monotonic() - self.started, 1), notes=notes, **counts)


def rows_by_status(settings: Settings) -> dict:
    with db.session_scope(settings.sqlalchemy_url) as session:
        rows = session.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status))).all()
    return {f"rows_{status}": count for status, count in rows}


def sending_rows(settings: Settings) -> int:
    """Rows claimed and not yet recorded: the messages in flight."""
    with db.session_scope(settings.sqlalchemy_url) as session:
        return session.exec(select(func.count()).select_from(Delivery)
                            .where(col(Delivery.status) == DeliveryStatus.sending)).one()


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is 12:xx at `now`: far from local midnight, so the edition date stays put."""
    offset = (12 - now.astimezone(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # Etc signs are inverted


def add_readers(settings: Settings, emails: list[str], zone: str, send_hour: int = 0) -> set[str]:
    """Active readers (and the small fixture corpus, once) in the scenario's database; their addresses."""
    with db.session_scope(settings.sqlalchemy_url) as session:
        if session.exec(select(Paper.id).limit(1)).first() is None:
            ingest(session, str(CORPUS), settings)
        session.add_all([Subscriber(email=email, status=SubscriberStatus.active, timezone=zone, send_hour=send_hour,
                                    interests="language models") for email in emails])
    return {email.lower() for email in emails}


def readers(count: int, prefix: str = "reader") -> list[str]:
    return [f"{prefix}{n}@example.org" for n in range(count)]


def _started_edition(stack: Stack, count: int, workers: int = 2) -> set[str]:
    """`count` readers due now, `workers` workers and one beat: the edition is under way."""
    expected = add_readers(stack.settings, readers(count), midday_zone(datetime.now(UTC)))
    stack.start_workers(workers)
    stack.start_beat()
    return expected


# ---- the scenarios ---------------------------------------------------------------------------------------------

def no_fault(settings: Settings, folder: Path, *, count: int = 300, budget: float = 90.0) -> FaultResult:
    """The baseline: the same edition as the fault cases, nothing failing."""
    with ExitStack() as exits:
        stack = Stack(settings, folder, exits)
        expected = _started_edition(stack, count)
        stack.wait_all(expected, budget)
        return stack.result("no fault (baseline)", expected, 0)


def smtp_outage(settings: Settings, folder: Path, *, count: int = 300, outage: float = 60.0,
                budget: float = 90.0) -> FaultResult:
    """The SMTP server is killed a quarter into the edition and comes back `outage` seconds later."""
    with ExitStack() as exits:
        stack = Stack(settings, folder, exits)
        expected = _started_edition(stack, count)
        stack.wait(lambda: stack.sink.count() >= count // 4, budget)
        stack.sink.freeze()  # first frozen, so the messages in flight can be counted: each sender holds one
        time.sleep(0.5)
        in_flight = sending_rows(stack.settings)
        stack.sink.stop()
        at_fault = stack.sink.count()
        stack.wait(lambda: False, outage)
        deferred = _deferred_rows(stack.settings)
        stack.sink.start()
        back = time.monotonic()
        stack.wait_all(expected, budget)
        recovery = round(time.monotonic() - back, 1)
        stack.wait(lambda: False, 2)  # more ticks: nothing more may arrive
        return stack.result("smtp server down", expected, in_flight, received_before_fault=at_fault,
                            outage_seconds=outage, deferred_while_down=deferred, recovery_seconds=recovery)


def _deferred_rows(settings: Settings) -> int:
    with db.session_scope(settings.sqlalchemy_url) as session:
        return session.exec(select(func.count()).select_from(Delivery).where(
            col(Delivery.status) == DeliveryStatus.pending, col(Delivery.error).is_not(None))).one()


def redis_restart(settings: Settings, folder: Path, *, count: int = 300, down: float = 3.0,
                  budget: float = 60.0) -> FaultResult:
    """Redis is stopped a quarter into the edition (every queued task lost with it) and started `down` s later."""
    with ExitStack() as exits:
        stack = Stack(settings, folder, exits)
        expected = _started_edition(stack, count)
        stack.wait(lambda: stack.sink.count() >= count // 4, budget)
        before = sending_rows(stack.settings)
        stack.redis.stop()
        in_flight = max(before, sending_rows(stack.settings))
        at_fault = stack.sink.count()
        stack.wait(lambda: False, down)
        stack.redis.start()
        ticks, back, when_back = stack.beats[0].ticks(), time.monotonic(), stack.sink.count()
        stack.wait_all(expected, budget)
        recovery = round(time.monotonic() - back, 1)
        stack.wait(lambda: False, 2)
        return stack.result("redis restarted", expected, in_flight, received_before_fault=at_fault,
                            received_when_back=when_back, recovery_seconds=recovery,
                            ticks_after_restart=stack.beats[0].ticks() - ticks,
                            workers_alive=sum(w.process.poll() is None for w in stack.workers))


def postgres_restart(settings: Settings, folder: Path, *, count: int = 300, down: float = 3.0,
                     budget: float = 60.0) -> FaultResult:
    """The database (a cluster of the scenario's own) is shut down fast a quarter into the edition, every
    session terminated, and started again `down` seconds later."""
    with ExitStack() as exits:
        cluster = exits.enter_context(PostgresCluster())
        settings = settings.model_copy(update={"database_url": cluster.database("faults")})
        # a lease well past the downtime: rows in flight at the fault are still `sending` when counted after it
        stack = Stack(settings, folder, exits, delivery_lease_seconds=down + 8)
        expected = _started_edition(stack, count)
        stack.wait(lambda: stack.sink.count() >= count // 4, budget)
        before = sending_rows(stack.settings)
        cluster.stop()
        at_fault = stack.sink.count()
        stack.wait(lambda: False, down)
        cluster.start()
        back = time.monotonic()
        in_flight = max(before, sending_rows(stack.settings))
        stack.wait_all(expected, budget)
        recovery = round(time.monotonic() - back, 1)
        stack.wait(lambda: False, 2)
        logs = [worker.log_path.read_text(errors="replace") for worker in stack.workers]
        return stack.result("postgres restarted", expected, in_flight, received_before_fault=at_fault,
                            recovery_seconds=recovery,
                            tracebacks=sum(log.count("Traceback") for log in logs),
                            stop_reasons=sorted({line.split("error=", 1)[-1][:100] for log in logs
                                                 for line in log.splitlines()
                                                 if " sending stopped " in line or " task stopped " in line}))


BROKEN = "broken@-bad.ex\u00e4mple"  # an IDNA domain no encoder takes: the To header cannot be written


def unrenderable_subscriber(settings: Settings, folder: Path, *, count: int = 50) -> FaultResult:
    """One subscriber's email cannot be built (an address whose domain IDNA refuses, stored before validation
    was strict); `newsletter send` runs in a process of its own."""
    with ExitStack() as exits:
        sink = exits.enter_context(SinkProcess(Path(folder) / "received"))
        settings = settings.model_copy(update={**FAULT_TIMINGS, "smtp_host": "127.0.0.1", "smtp_port": sink.port,
                                               "send_rate": 0})
        started = time.monotonic()
        zone = midday_zone(datetime.now(UTC))
        names = readers(count)
        expected = add_readers(settings, names[:count // 2] + [BROKEN] + names[count // 2:], zone) - {BROKEN}
        done = run_cli(settings, Path(folder), "send", "--json")
        with db.session_scope(settings.sqlalchemy_url) as session:
            broken = session.exec(select(Delivery.status, Delivery.error).join(Subscriber)
                                  .where(col(Subscriber.email) == BROKEN)).one()
        counts = tally(sink.received(), expected)
        notes = {"exit_code": done.returncode, "broken_status": str(broken[0]), "broken_error": broken[1] or "",
                 "traceback_in_output": "Traceback" in done.stdout + done.stderr,
                 "second_deliveries": counts.pop("second_deliveries"), **rows_by_status(settings)}
        return FaultResult(case="unrenderable subscriber", expected=len(expected), in_flight=0,
                           seconds=round(time.monotonic() - started, 1), notes=notes, **counts)


BEFORE_HOURS, MISSED_HOURS, NOW_HOUR, LATER_HOURS = (7, 8), (9, 10, 11), 12, (14, 23)


def beat_outage(settings: Settings, folder: Path, *, per_hour: int = 10, budget: float = 60.0) -> FaultResult:
    """Beat ran until local 08:59 and was down for three hours (and the minutes of this one); it starts now, at
    local 12:xx (a zone where it is midday). Readers' local send hours: 7 and 8 got the edition before beat
    stopped, 9, 10 and 11 were missed, 12 is due now, 14 and 23 are still to come. The two ticks before the
    outage run at their own (past) times through the same worker; then a real beat starts."""
    from tasks.celery_app import create_celery

    with ExitStack() as exits:
        stack = Stack(settings, folder, exits)
        now = datetime.now(UTC)
        zone = midday_zone(now)
        by_hour = {hour: add_readers(stack.settings, readers(per_hour, f"h{hour}."), zone, send_hour=hour)
                   for hour in (*BEFORE_HOURS, *MISSED_HOURS, NOW_HOUR, *LATER_HOURS)}
        stack.start_workers(1)
        client = exits.enter_context(create_celery(stack.settings))
        down_since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3, seconds=30)  # local 08:59
        for moment in (down_since - timedelta(hours=1), down_since):  # beat's last two ticks before it went down
            tick = client.send_task("tasks.tasks.send_tick", kwargs={"now": moment.isoformat()})
            stack.wait(tick.ready, budget)
        before = set().union(*(by_hour[h] for h in BEFORE_HOURS))
        stack.wait_all(before, budget)
        sent_before = stack.sink.count()
        stack.start_beat()
        expected = before.union(*(by_hour[h] for h in (*MISSED_HOURS, NOW_HOUR)))
        stack.wait_all(expected, budget)
        stack.wait(lambda: False, 3)  # more ticks: nothing more may arrive
        with db.session_scope(stack.settings.sqlalchemy_url) as session:
            dates = sorted(str(d) for d in session.exec(select(col(Edition.date)).distinct()))
        return stack.result("beat down 3 hours", expected, 0, zone=zone, sent_before_outage=sent_before,
                            edition_dates=dates, ticks=stack.beats[0].ticks())


def two_beats(settings: Settings, folder: Path, *, count: int = 200, seconds: float = 4.0,
              budget: float = 60.0) -> FaultResult:
    """Two beats run side by side (every tick enqueued twice) with two workers, small batches."""
    with ExitStack() as exits:
        stack = Stack(settings, folder, exits, send_batch_size=25)
        expected = add_readers(stack.settings, readers(count), midday_zone(datetime.now(UTC)))
        stack.start_workers(2)
        stack.start_beat("one")
        stack.start_beat("two")
        stack.wait_all(expected, budget)
        stack.wait(lambda: False, seconds)
        return stack.result("two beats", expected, 0, ticks=[beat.ticks() for beat in stack.beats])


SCENARIOS: dict[str, Callable[..., FaultResult]] = {
    "smtp_outage": smtp_outage, "redis_restart": redis_restart, "postgres_restart": postgres_restart,
    "unrenderable_subscriber": unrenderable_subscriber, "beat_outage": beat_outage, "two_beats": two_beats}
