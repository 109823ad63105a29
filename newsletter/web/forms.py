"""Reading forms: the raw request (strict UTF-8, bounded), the profile fields of the subscribe and preferences
forms with an error per field in plain words, and the choices those forms offer."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl
from zoneinfo import available_timezones

from fastapi import Request
from sqlmodel import Session
from starlette.datastructures import FormData

from newsletter.errors import InvalidInput, NewsletterError
from newsletter.models import Paper
from newsletter.ranking.seeds import seed_paper_ids
from subscribers.profiles import (
    MAX_ID,
    MAX_INTERESTS_CHARS,
    MAX_TERM_CHARS,
    MAX_TERMS,
    normalize_email,
    validated_profile,
)

# Shown when the recent papers carry no keywords of their own (the bundled sample has none).
DEFAULT_SUGGESTIONS = ("large language models", "diffusion", "reinforcement learning", "RAG", "agents",
                       "multimodal", "vision transformer", "Gaussian Splatting", "mixture-of-experts",
                       "quantization", "speech", "robotics")
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
PROFILE_TEXT_LIMIT = 2000  # characters per free-text field
MAX_FORM_FIELDS = 100  # more than any of our forms has (with every suggested keyword ticked)
MAX_BODY_BYTES = 64 * 1024  # no form of ours comes near; larger bodies are refused before they are read (app.py)
_HOUR = re.compile(r"[0-9]{1,2}")
_PAPER_ID = re.compile(r"[0-9]{1,10}")


class MalformedRequest(NewsletterError):
    """A request that no page of ours sends (undecodable text, too many fields): answered 400."""


class FormErrors(InvalidInput):
    """Some fields of a form are not acceptable: `errors` maps each field's name to what to do, in plain words."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


async def read_form(request: Request) -> FormData:
    """The posted form, refused (MalformedRequest, a 400) unless it is UTF-8 text with a sane number of fields.

    Starlette reads undecodable bytes as replacement characters (`%ed%a0%80@example.com` would arrive as
    `���@example.com`); a form of ours never sends those, so such a request is refused whole.
    """
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if content_type == "application/x-www-form-urlencoded":
            fields = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                               max_num_fields=MAX_FORM_FIELDS)
            if any("\x00" in name or "\x00" in value for name, value in fields):
                raise MalformedRequest("this form holds a NUL character")
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("this form was not sent as UTF-8 text, or has too many fields") from None
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")
    if len(value) > PROFILE_TEXT_LIMIT:
        raise InvalidInput(f"{name.replace('_', ' ')} is too long (at most {PROFILE_TEXT_LIMIT} characters)")
    return value


def send_hour(form: FormData) -> int:
    value = text(form, "send_hour").strip() or "7"
    if not _HOUR.fullmatch(value):  # ASCII digits only: "²".isdigit() is True, int("²") fails
        raise InvalidInput(f"send hour must be a whole number between 0 and 23, not {value[:10]!r}")
    return int(value)


def paper_id(form: FormData) -> int:
    """The `paper_id` field: a paper's id, or InvalidInput (never an integer the database cannot hold)."""
    value = form.get("paper_id", "")
    if not isinstance(value, str) or not _PAPER_ID.fullmatch(value.strip()) or not 0 < int(value) <= MAX_ID:
        raise InvalidInput("choose a paper to forget")
    return int(value)


def ticked(form: FormData, offered: Sequence[str]) -> list[str]:
    """The suggested keywords ticked, each one of those the page offered (anything else is ignored)."""
    allowed = {keyword.casefold(): keyword for keyword in offered}
    chosen: dict[str, str] = {}
    for value in form.getlist("suggested"):
        if isinstance(value, str) and value.casefold() in allowed:
            chosen.setdefault(value.casefold(), allowed[value.casefold()])
    return list(chosen.values())[: len(offered)]


def profile_fields(form: FormData, offered: Sequence[str] = ()) -> dict:
    """The profile as typed, each field checked on its own (FormErrors names every bad one, in plain words).
    Suggested keywords ticked on the subscribe form (only those in `offered`) are added to the typed ones."""
    errors: dict[str, str] = {}
    values: dict = {}
    readers: dict[str, Callable[[], object]] = {
        "interests": lambda: text(form, "interests"),
        "keywords": lambda: ", ".join(k for k in [text(form, "keywords"), *ticked(form, offered)] if k.strip()),
        "followed_authors": lambda: text(form, "followed_authors"),
        "excluded_keywords": lambda: text(form, "excluded_keywords"),
        "frequency": lambda: text(form, "frequency") or "daily",
        "send_hour": lambda: send_hour(form),
        "timezone": lambda: text(form, "timezone").strip() or "UTC",
    }
    for name, read in readers.items():
        try:
            values[name] = read()
            validated_profile(**{name: values[name]})
        except InvalidInput as error:
            errors[name] = plain_words(name, str(error))
    if errors:
        raise FormErrors(errors)
    return values


def email_address(form: FormData, smtputf8: Callable[[], bool]) -> str:
    """The `email` field, normalized; FormErrors({"email": ...}) in plain words when it is not an address we can
    mail."""
    try:
        typed = text(form, "email")
        if not typed.strip():
            raise FormErrors({"email": "Please enter your email address."})
        return normalize_email(typed, smtputf8)
    except InvalidInput as error:
        if isinstance(error, FormErrors):
            raise
        raise FormErrors({"email": plain_words("email", str(error))}) from None


def plain_words(field: str, problem: str) -> str:
    """What a person should do about `problem` (a validator's message) in `field`."""
    problem_lower = problem.lower()
    if "control characters" in problem_lower:
        return ("Please enter one address, without line breaks." if field == "email"
                else "Please remove the line breaks from this field.")
    if "too long" in problem_lower or "at most" in problem_lower:
        if field in ("keywords", "followed_authors", "excluded_keywords"):
            return f"Please keep this to {MAX_TERMS} entries of at most {MAX_TERM_CHARS} characters each."
        return f"Please shorten this to {MAX_INTERESTS_CHARS} characters or fewer."
    if field == "email":
        if "smtputf8" in problem_lower:
            return ("We cannot send to an address with accented or non-Latin letters before the @ yet. "
                    "Please use another address.")
        if "@-sign" in problem and "must have" in problem:
            return "An email address needs an @, like name@example.org."
        if "after the @" in problem_lower:
            return "The part after the @ should be a domain name, like example.org."
        if "before the @" in problem_lower:
            return "The part before the @ has characters an email address cannot have."
        return "That does not look like an email address. It should look like name@example.org."
    return {
        "send_hour": "Choose an hour between 00:00 and 23:00.",
        "timezone": "Choose your time zone from the list.",
        "frequency": "Choose daily or weekly.",
    }.get(field, "Please check this field.")


def seed_references(form: FormData) -> str | None:
    """The seed papers as typed (arXiv ids or titles; newsletter.ranking.seeds resolves them), or None when the
    form has no such field (then the stored seeds stay as they are)."""
    return text(form, "seed_papers") if "seed_papers" in form else None


def seed_paper_choice(session: Session, typed: str) -> list[int]:
    """The stored papers the reader's seed references name; any that cannot be resolved is listed back beside
    the field (nothing is dropped silently)."""
    try:
        return seed_paper_ids(session, typed)
    except InvalidInput as error:
        raise FormErrors({"seed_papers": str(error)}) from None


def echo(form: FormData) -> dict:
    """What the person typed, to fill the form again after an error (nothing typed is lost)."""
    values: dict[str, str | list[str]] = {name: value[:PROFILE_TEXT_LIMIT] for name, value in form.items()
                                          if isinstance(value, str) and name != "csrf_token"}
    values["suggested"] = [v for v in form.getlist("suggested") if isinstance(v, str)][:MAX_FORM_FIELDS]
    return values


def keyword_suggestions(papers: list[Paper], limit: int = 12) -> list[str]:
    """The most common keywords of recent papers, or a fixed list of popular topics when they have none."""
    counts = Counter(k.strip() for p in papers for k in p.keywords if k.strip() and len(k) <= 40)
    common = [k for k, n in counts.most_common(limit) if n > 1]
    return common if len(common) >= limit // 2 else list(DEFAULT_SUGGESTIONS[:limit])


@lru_cache(maxsize=1)
def timezone_groups() -> list[tuple[str, list[str]]]:
    """IANA zone names grouped by region, for the fallback time-zone select."""
    groups: dict[str, list[str]] = {"UTC": ["UTC"]}
    for name in sorted(available_timezones()):
        region = name.split("/", 1)[0]
        if region in REGIONS:
            groups.setdefault(region, []).append(name)
    return list(groups.items())
