"""Reading the profile fields of the subscribe and preferences forms, and the choices those forms offer."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from zoneinfo import available_timezones

from starlette.datastructures import FormData

from newsletter.errors import InvalidInput
from newsletter.models import Paper

# Shown when the recent papers carry no keywords of their own (the bundled sample has none).
DEFAULT_SUGGESTIONS = ("large language models", "diffusion", "reinforcement learning", "RAG", "agents",
                       "multimodal", "vision transformer", "Gaussian Splatting", "mixture-of-experts",
                       "quantization", "speech", "robotics")
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
PROFILE_TEXT_LIMIT = 2000  # characters per free-text field


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")
    if len(value) > PROFILE_TEXT_LIMIT:
        raise InvalidInput(f"{name.replace('_', ' ')} is too long (at most {PROFILE_TEXT_LIMIT} characters)")
    return value


def send_hour(form: FormData) -> int:
    value = text(form, "send_hour").strip() or "7"
    if not value.isdigit():
        raise InvalidInput(f"send hour must be a whole number between 0 and 23, not {value!r}")
    return int(value)


def profile_fields(form: FormData) -> dict:
    """The profile as typed (not yet validated: subscribers.profiles does that). Suggested keywords ticked on the
    subscribe form are added to the typed ones."""
    ticked = [v for v in form.getlist("suggested") if isinstance(v, str)]
    keywords = ", ".join(k for k in [text(form, "keywords"), *ticked] if k.strip())
    return {
        "interests": text(form, "interests"),
        "keywords": keywords,
        "followed_authors": text(form, "followed_authors"),
        "excluded_keywords": text(form, "excluded_keywords"),
        "frequency": text(form, "frequency") or "daily",
        "send_hour": send_hour(form),
        "timezone": text(form, "timezone").strip() or "UTC",
    }


def seed_references(form: FormData) -> str | None:
    """The seed papers as typed (arXiv ids or titles; newsletter.ranking.seeds resolves them), or None when the
    form has no such field (then the stored seeds stay as they are)."""
    return text(form, "seed_papers") if "seed_papers" in form else None


def echo(form: FormData) -> dict:
    """What the person typed, to fill the form again after an error (nothing typed is lost)."""
    values: dict[str, str | list[str]] = {name: value for name, value in form.items()
                                          if isinstance(value, str) and name != "csrf_token"}
    values["suggested"] = [v for v in form.getlist("suggested") if isinstance(v, str)]
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
