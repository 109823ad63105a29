import pytest

from newsletter.errors import InvalidInput, NotFound
from newsletter.models import SubscriberStatus
from subscribers.profiles import add_subscriber, get_subscriber, list_subscribers, normalize_email, remove_subscriber


@pytest.mark.parametrize("address", [
    "not-an-address", "a@", "@example.org", "a b@example.org", "a@example..org", "",
    "victim@example.org\r\nBcc: everyone@example.org", "x@example.org\n",
])
def test_invalid_addresses_are_rejected_with_a_clear_message(session, address):
    with pytest.raises(InvalidInput) as error:
        add_subscriber(session, address)
    assert "email address" in str(error.value) or "control characters" in str(error.value)
    assert list_subscribers(session) == []


def test_domain_is_lowercased_and_duplicates_refused(session):
    assert normalize_email("  Ada@Example.ORG ") == "Ada@example.org"
    add_subscriber(session, "Ada@Example.ORG")
    with pytest.raises(InvalidInput, match="already subscribed"):
        add_subscriber(session, "Ada@example.org")


@pytest.mark.parametrize("field, value, message", [
    ("name", "Eve\r\nBcc: x@example.org", "control characters"),
    ("interests", "LLMs\nSubject: hi", "control characters"),
    ("keywords", "MoE,\rKV", "control characters"),
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("send_hour", 24, "between 0 and 23"),
    ("frequency", "hourly", "frequency"),
])
def test_bad_profile_fields_are_rejected_and_nothing_is_written(session, field, value, message):
    with pytest.raises(InvalidInput, match=message):
        add_subscriber(session, "bob@example.org", **{field: value})
    assert list_subscribers(session) == []


def test_profile_terms_are_cleaned(session):
    subscriber = add_subscriber(session, "c@example.org", keywords="KV cache,  MoE ; moe,, diffusion",
                                followed_authors=["Yann LeCun", " yann lecun "], timezone="Europe/Paris",
                                send_hour=6, status=SubscriberStatus.active)
    assert subscriber.keywords == ["KV cache", "MoE", "diffusion"]
    assert subscriber.followed_authors == ["Yann LeCun"]
    assert subscriber.status == "active" and subscriber.confirmed_at is not None


def test_get_and_remove(session):
    subscriber = add_subscriber(session, "d@example.org")
    assert get_subscriber(session, "D@EXAMPLE.org".lower()).id == subscriber.id
    assert get_subscriber(session, subscriber.id).email == "d@example.org"
    remove_subscriber(session, "d@example.org")
    with pytest.raises(NotFound):
        get_subscriber(session, "d@example.org")


def test_tokens_read_back_and_older_compressed_ones_still_work(settings):
    """Tokens are written without itsdangerous's zlib step; a compressed one (as it writes for long payloads)
    is still read."""
    from itsdangerous import URLSafeTimedSerializer

    from subscribers.tokens import _fingerprint, make_token, read_token

    token = make_token("feedback", 7, "ada@example.org", settings, {"p": 12, "k": "more"})
    assert not token.startswith(".") and read_token("feedback", token, settings)["p"] == 12
    long_payload = {"s": 7, "e": _fingerprint("ada@example.org"), "d": "2026-11-25" * 20}
    compressed = URLSafeTimedSerializer(settings.signing_key, salt="newsletter.view").dumps(long_payload)
    assert compressed.startswith(".") and read_token("view", compressed, settings)["d"] == long_payload["d"]
