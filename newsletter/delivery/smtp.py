"""One SMTP connection reused for many messages; reconnects once when the server has dropped it."""

from __future__ import annotations

import smtplib
import ssl
from email.utils import parseaddr

from newsletter.config import Settings, SmtpSecurity
from newsletter.errors import DeliveryError


class PermanentFailure(DeliveryError):
    """The server refused this message with a 5xx reply: retrying will not help."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{code} {message}")
        self.code = code


class TemporaryFailure(DeliveryError):
    """A 4xx reply or a connection problem: the same message may succeed later."""


class SmtpSender:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.envelope_from = parseaddr(settings.from_address)[1]
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, recipient: str, data: bytes, envelope_from: str | None = None) -> None:
        """Hand one message to the server. Raises PermanentFailure or TemporaryFailure."""
        try:
            self._send_once(recipient, data, envelope_from)
        except smtplib.SMTPServerDisconnected:
            self.close()
            try:
                self._send_once(recipient, data, envelope_from)
            except smtplib.SMTPServerDisconnected as error:
                self.close()
                raise TemporaryFailure(f"server disconnected: {error}") from None

    def _send_once(self, recipient: str, data: bytes, envelope_from: str | None) -> None:
        try:
            self._connect().sendmail(envelope_from or self.envelope_from, [recipient], data)
        except smtplib.SMTPRecipientsRefused as error:
            code, message = next(iter(error.recipients.values()))
            raise _failure(code, message) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            self.close()  # the transaction state is unknown: start the next message on a fresh connection
            raise _failure(error.smtp_code, error.smtp_error) from None
        except smtplib.SMTPServerDisconnected:
            raise
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TemporaryFailure(f"{error.__class__.__name__}: {error}") from None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        s = self.settings
        try:
            if s.smtp_security == SmtpSecurity.ssl:
                connection = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                              context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
                if s.smtp_security == SmtpSecurity.starttls:
                    connection.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                connection.login(s.smtp_username, s.smtp_password)
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP login to {s.smtp_host}:{s.smtp_port} refused: {error.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(f"cannot reach SMTP server {s.smtp_host}:{s.smtp_port}: {error}") from None
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (OSError, smtplib.SMTPException):
            self._connection.close()
        self._connection = None


def _failure(code: int, message: bytes | str) -> DeliveryError:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    if 500 <= code < 600:
        return PermanentFailure(code, text)
    return TemporaryFailure(f"{code} {text}")
