"""Structured logging: one line per event, as `key=value` text or JSON (NEWSLETTER_LOG_FORMAT)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields) -> None:
    """Log `name` with `fields` attached (shown by the formatters below)."""
    logger.log(level, name, extra={"fields": fields})


def _pairs(fields: dict) -> str:
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, str) and (' ' in v or not v) else v}"
                    for k, v in fields.items())


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = _pairs(getattr(record, "fields", {}))
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {record.levelname} {record.name} {record.getMessage()}" + (f" {pairs}" if pairs else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class FieldsAppended(logging.Formatter):
    """Another formatter's lines (Celery's, in workers and beat) with each event's fields appended as key=value."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        first, newline, rest = self.inner.format(record).partition("\n")
        pairs = _pairs(getattr(record, "fields", {}))
        return f"{first} {pairs}{newline}{rest}" if pairs else f"{first}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now: a Rich progress bar (or a test runner) may have replaced it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always the current sys.stderr


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("mail.log", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
