"""Moving subscribers in and out: import from CSV (with a header) or JSON lines, export to either.

Import reads and validates the whole file first, then writes every valid row in one transaction: a bad row is
reported (line number and reason) and never stops the good ones; a failure while writing leaves nothing written.
It is idempotent: an address already present is left as it is, unless `update` asks for its profile fields (name,
interests, keywords, followed authors, excluded keywords, time zone, send hour, frequency) to be set from the file;
its status, consent and pause are never changed by a file.

Consent: a row becomes `active` only when the operator passes `confirmed=True` (asserting the people in the file
agreed); otherwise it is `pending` (double opt-in). A status of `pending`, `unsubscribed`, `bounced` or
`complained` in the file is always kept: a file can hold someone back, never push them forward.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.batching import IN_CLAUSE, chunked
from newsletter.clock import utcnow
from newsletter.errors import InvalidInput
from newsletter.models import Subscriber, SubscriberStatus, address_key
from subscribers.profiles import normalize_email, reject_control_chars, validated_profile

FIELDS = ("email", "name", "status", "interests", "keywords", "followed_authors", "excluded_keywords", "timezone",
          "send_hour", "frequency", "paused", "consent", "created_at", "confirmed_at", "unsubscribed_at")
LIST_FIELDS = ("keywords", "followed_authors", "excluded_keywords")
TIME_FIELDS = ("created_at", "confirmed_at", "unsubscribed_at")
PROFILE_FIELDS = ("name", "interests", *LIST_FIELDS, "timezone", "send_hour", "frequency")
SUPPRESSED = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced, SubscriberStatus.complained)
OPERATOR_ASSERTED = "operator-asserted"
FORMATS = ("csv", "json")


@dataclass
class Rejected:
    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: dict[str, int] = field(default_factory=dict)  # by status
    already_present: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # present addresses whose profile the file changed (update=True)
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False

    @property
    def imported_total(self) -> int:
        return sum(self.imported.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "imported_total": self.imported_total}


# ---- reading -------------------------------------------------------------------------------------------------

def read_rows(path: Path, format: str | None = None) -> Iterator[tuple[int, dict | str]]:
    """(line number, raw row) for each record; a raw row is a dict, or a string saying why it is unreadable."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory") from None
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {error.start})") from None
    fmt = format or detect_format(path, text)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return _json_lines(text) if fmt == "json" else _csv_rows(text, path)


def detect_format(path: Path, text: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    if suffix == ".csv":
        return "csv"
    return "json" if text.lstrip().startswith("{") else "csv"


def _json_lines(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"not valid JSON ({error.msg} at column {error.colno})"
            continue
        yield number, row if isinstance(row, dict) else "not a JSON object"


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict | str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return iter(())
    _check_header(header, path)
    return _csv_records(reader, header)


def _csv_records(reader, header: list[str]) -> Iterator[tuple[int, dict | str]]:
    while True:
        start = reader.line_num + 1  # a quoted value may span lines: report the line the record starts on
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InvalidInput(f"line {start}: unreadable CSV ({error}); nothing was imported") from None
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            missing = header[len(values):]
            yield start, (f"missing column(s) {', '.join(missing)}" if missing
                          else f"{len(values)} values for {len(header)} columns")
            continue
        yield start, dict(zip(header, values))


def _check_header(header: list[str], path: Path) -> None:
    if "email" not in header:
        raise InvalidInput(f"{path}: the header has no 'email' column (columns: {', '.join(FIELDS)})")
    unknown = [name for name in header if name not in FIELDS]
    if unknown:
        raise InvalidInput(f"{path}: unknown column(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidInput(f"{path}: column(s) {', '.join(repeated)} appear more than once")


# ---- validating ----------------------------------------------------------------------------------------------

def clean_row(raw: dict, confirmed: bool, smtputf8: bool | Callable[[], bool] = True) -> dict:
    """The Subscriber fields for one raw row. Raises InvalidInput with the reason. `smtputf8`: whether addresses
    with a non-ASCII local part can be mailed (see profiles.normalize_email)."""
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}")
    if not isinstance(raw.get("email"), str) or not raw["email"].strip():
        raise InvalidInput("missing column email")
    values = {name: value for name, value in raw.items() if value is not None and value != ""}
    email = normalize_email(_text(values["email"], "email"), smtputf8)
    cleaned: dict[str, Any] = {"email": email, "email_key": address_key(email)}
    profile = {name: values[name] for name in PROFILE_FIELDS if name in values}
    if "send_hour" in profile:
        profile["send_hour"] = _integer(profile["send_hour"], "send_hour")
    for name, value in profile.items():
        if name in LIST_FIELDS:
            if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise InvalidInput(f"{name} must be text or a list of texts")
        elif name != "send_hour":
            _text(value, name)
    cleaned.update(validated_profile(**profile))
    cleaned["paused"] = _boolean(values.get("paused", False))
    cleaned["consent"] = reject_control_chars(_text(values.get("consent", ""), "consent"), "consent").strip()
    times = {name: _timestamp(values[name], name) for name in TIME_FIELDS if name in values}
    cleaned.update(_status_fields(values.get("status", ""), confirmed, cleaned["consent"], times))
    return cleaned


def _status_fields(given: str, confirmed: bool, consent: str, times: dict) -> dict:
    """Status, consent and timestamps under the module's consent rule."""
    try:
        status = SubscriberStatus(given) if given else None
    except ValueError:
        raise InvalidInput(f"unknown status {given!r} (one of {', '.join(s.value for s in SubscriberStatus)})") \
            from None
    now = utcnow()
    fields = {"created_at": times.get("created_at", now), "confirmed_at": None, "unsubscribed_at": None}
    if status in SUPPRESSED:
        fields.update(status=status.value, consent=consent, confirmed_at=times.get("confirmed_at"),
                      unsubscribed_at=times.get("unsubscribed_at", now))
    elif confirmed and status != SubscriberStatus.pending:
        fields.update(status=SubscriberStatus.active, consent=consent or OPERATOR_ASSERTED,
                      confirmed_at=times.get("confirmed_at", now))
    else:
        fields.update(status=SubscriberStatus.pending, consent="")
    return fields


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")
    return value


def _integer(value, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a whole number, not {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from None


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("", "0", "false", "no", "n"):
        return False
    raise InvalidInput(f"paused must be true or false, not {value!r}")


def _timestamp(value, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(_text(value, name).strip())
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date-time, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---- importing -----------------------------------------------------------------------------------------------

def import_subscribers(session: Session, path: Path, *, confirmed: bool = False, dry_run: bool = False,
                       format: str | None = None, update: bool = False,
                       smtputf8: bool | Callable[[], bool] = True) -> ImportReport:
    """Validate every row of `path`, then add the valid new ones in one go (nothing at all with `dry_run`); with
    `update`, also set the profile fields the file gives for addresses already present. Addresses are one
    subscriber per mailbox (case-insensitive: profiles.address_key), in the file and against the database.
    `smtputf8`: whether the SMTP server can take addresses with a non-ASCII local part (asked once, if needed)."""
    if callable(smtputf8):
        smtputf8 = _asked_once(smtputf8)
    report = ImportReport(dry_run=dry_run)
    valid: list[dict] = []
    first_line: dict[str, int] = {}
    for line, raw in read_rows(path, format):
        report.rows += 1
        email = raw.get("email", "") if isinstance(raw, dict) else ""
        try:
            if isinstance(raw, str):
                raise InvalidInput(raw)
            row = clean_row(raw, confirmed, smtputf8)
        except InvalidInput as error:
            report.rejected.append(Rejected(line, str(email)[:200], str(error)))
            continue
        if row["email_key"] in first_line:
            report.rejected.append(Rejected(line, row["email"], f"duplicate of line {first_line[row['email_key']]}"))
            continue
        first_line[row["email_key"]] = line
        valid.append(row)
    _store(session, valid, report, update)
    return report


def _asked_once(question: Callable[[], bool]) -> Callable[[], bool]:
    answers: list[bool] = []

    def ask() -> bool:
        if not answers:
            answers.append(question())
        return answers[0]

    return ask


def _store(session: Session, rows: list[dict], report: ImportReport, update: bool = False) -> None:
    """Add the rows not yet present (and update present profiles when asked), all in the caller's transaction
    (committed, or rolled back, as one)."""
    present = _existing(session, [row["email_key"] for row in rows])
    defaults = _column_defaults()
    new_rows = []
    for row in rows:
        existing = present.get(row["email_key"])
        if existing is not None:
            report.already_present.append(existing.email)
            if update and _update_profile(existing, row, report.dry_run):
                report.updated.append(existing.email)
            continue
        new_rows.append({**defaults, **row})
        report.imported[row["status"]] = report.imported.get(row["status"], 0) + 1
    if report.dry_run or not new_rows:
        return
    try:
        session.execute(insert(Subscriber), new_rows)  # one executemany: building 10k model objects takes ~30 s
    except IntegrityError:
        session.rollback()
        raise InvalidInput("another process added some of these addresses meanwhile; nothing was imported, "
                           "run the import again") from None


def _column_defaults() -> dict:
    """Every column's default for a new subscriber (a bulk insert does not apply the model's Python defaults)."""
    return Subscriber(email="", email_key="").model_dump(exclude={"id", "email", "email_key"})


def _update_profile(subscriber: Subscriber, row: dict, dry_run: bool) -> bool:
    """Set the profile fields `row` gives on `subscriber` (unless `dry_run`). True when something differs."""
    changes = {name: row[name] for name in PROFILE_FIELDS if name in row and getattr(subscriber, name) != row[name]}
    if not dry_run:
        for name, value in changes.items():
            setattr(subscriber, name, value)
    return bool(changes)


def _existing(session: Session, keys: list[str]) -> dict[str, Subscriber]:
    """address key -> the subscriber already holding it."""
    found: dict[str, Subscriber] = {}
    for chunk in chunked(keys, IN_CLAUSE):
        found.update((s.email_key, s) for s in session.exec(select(Subscriber)
                                                            .where(col(Subscriber.email_key).in_(chunk))))
    return found


# ---- exporting -----------------------------------------------------------------------------------------------

def export_rows(session: Session, status: str | None = None) -> list[dict]:
    """Every subscriber as a dict of FIELDS (JSON-ready), in id order."""
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status:
        query = query.where(col(Subscriber.status) == status)
    return [export_row(subscriber) for subscriber in session.exec(query)]


def export_row(subscriber: Subscriber) -> dict:
    """The subscriber's FIELDS, JSON-ready (what `import` reads back)."""
    row = {name: getattr(subscriber, name) for name in FIELDS}
    for name in TIME_FIELDS:
        row[name] = row[name].astimezone(UTC).isoformat() if row[name] else None
    return row


def listing_row(subscriber: Subscriber) -> dict:
    """What `subscribers list --json` shows: the id, the exported fields and the soft-bounce count (never the
    stored profile embedding)."""
    return {"id": subscriber.id, **export_row(subscriber), "soft_bounces": subscriber.soft_bounces}


def write_rows(rows: Iterable[dict], stream, format: str = "csv") -> None:
    if format == "json":
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if format != "csv":
        raise InvalidInput(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([_csv_value(row[name]) for name in FIELDS])


def _csv_value(value) -> str:
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
