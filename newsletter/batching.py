"""Cutting long id lists into slices: SQL `IN (...)` lists, Celery task arguments, bulk writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_CLAUSE = 500  # ids per `IN (...)`: far below SQLite's and PostgreSQL's limits, few round trips


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items, in order."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
