"""Every error the core raises on purpose. The CLI and the web app turn these into one clear message."""


class NewsletterError(Exception):
    """Base class: an expected failure with a message meant for a person."""


class InvalidInput(NewsletterError):
    """A value from outside (an address, a name, a feed) is not acceptable."""


class FeedError(InvalidInput):
    """A source of papers could not be read or parsed; nothing from it was stored."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class NotFound(NewsletterError):
    """The named subscriber, paper or edition does not exist."""


class EditionClosed(InvalidInput):
    """An operator paused or cancelled the edition: nothing more is planned or sent for it until resumed."""

    def __init__(self, edition_id: int, message: str):
        super().__init__(message)
        self.edition_id = edition_id


class BadToken(NewsletterError):
    """A signed link was tampered with, expired, or meant for something else."""


class ExpiredToken(BadToken):
    """A genuine link that is too old. Its payload is still trustworthy, e.g. to offer a fresh link."""

    def __init__(self, message: str, purpose: str, token: str, payload: dict):
        super().__init__(message)
        self.purpose = purpose
        self.token = token
        self.payload = payload


class RateLimited(NewsletterError):
    """Too many requests from one client or for one address; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many requests; please try again later")
        self.retry_after = retry_after


class DeliveryError(NewsletterError):
    """The SMTP server could not be reached or refused the message."""
