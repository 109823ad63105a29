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


class BadToken(NewsletterError):
    """A signed link was tampered with, expired, or meant for something else."""


class DeliveryError(NewsletterError):
    """The SMTP server could not be reached or refused the message."""
