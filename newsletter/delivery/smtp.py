"""The SMTP client: one connection reused for many messages, reconnecting when the server has dropped it.

Each message is one transaction: MAIL, RCPT, DATA (sent in one write when the server offers PIPELINING,
RFC 2920), then the content. Replies are classified so the caller knows what to do with the delivery:

- 2xx after the content: accepted.
- 5xx to RCPT, DATA or the content: `PermanentFailure` (the address is suppressed).
- 4xx, a timeout or a dropped connection: `TemporaryFailure` (retried later with backoff); no connection at
  all: `ServerUnreachable`, a TemporaryFailure that counts no attempt against the delivery.
- 5xx to MAIL (our envelope sender refused), refused AUTH, or a 5xx to RCPT that refuses us rather than the
  recipient (Postfix's "Client host rejected", "Sender address rejected", "Relay access denied", ...: what a
  server says when AUTH or TLS is missing, as it reports client and sender restrictions at RCPT):
  `SenderRejected` (a configuration problem: no recipient is blamed, sending stops).
- The message is larger than the server takes (552 to MAIL for its SIZE=, RFC 1870, or status 5.3.4 / 5.2.3):
  `MessageTooLarge`, a PermanentFailure of that message alone: the recipient is not blamed (not suppressed)
  and the run goes on.

`SmtpPool` keeps several such connections (NEWSLETTER_SMTP_CONNECTIONS) sending at the same time, one thread each.

A reused connection that turns out to be dead (or answers 421) before any content was sent is reopened and the
message sent on the fresh one at once: nothing reached the server, so this cannot duplicate anything. A failure
after the content was sent is ambiguous (the server may have kept it) and is a TemporaryFailure.

The content goes out as it is when it already has CRLF line endings (the MIME builder guarantees that); only
dot-stuffing is applied, with bytes.replace rather than smtplib's regex, which is most of the cost per message.
"""

from __future__ import annotations

import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import parseaddr

from newsletter.config import Settings, SmtpSecurity
from newsletter.delivery.mime import wire_address
from newsletter.errors import DeliveryError, InvalidInput


class PermanentFailure(DeliveryError):
    """The server refused this message with a 5xx reply: retrying will not help."""

    blames_recipient = True  # a refusal of the address: the subscriber is suppressed

    def __init__(self, code: int, message: str):
        super().__init__(f"{code} {message}")
        self.code = code


class MessageTooLarge(PermanentFailure):
    """The server's size limit refused this message: the message failed, the address is fine."""

    blames_recipient = False

    def __init__(self, code: int, message: str, size: int, limit: int | None):
        DeliveryError.__init__(self, f"message too large for the server ({size} bytes"
                                     f"{f', its limit is {limit} bytes' if limit else ''}): {code} {message}")
        self.code = code


class TemporaryFailure(DeliveryError):
    """A 4xx reply or a connection problem: the same message may succeed later."""


class ServerUnreachable(TemporaryFailure):
    """No connection could be opened: nothing of any message reached the server. The delivery is retried
    without counting an attempt against it (a server down for hours must not fail the rows tried meanwhile)."""


class SenderRejected(DeliveryError):
    """The server refused our login or envelope sender: no message can go out until the settings change."""


class _Reconnect(Exception):
    """A reused connection is unusable and nothing of the message was sent: retry on a fresh one."""


class SmtpSender:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.envelope_from = parseaddr(settings.bounce_address or settings.from_address)[1]
        self._connection: smtplib.SMTP | None = None
        self._pipelining = False
        self._payload_size = 0
        self.connections_opened = 0

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection as configured (EHLO, STARTTLS or TLS, AUTH) without sending anything: what
        `newsletter doctor` checks. Raises TemporaryFailure or SenderRejected."""
        self._connect()

    def send(self, recipient: str, data: bytes, envelope_from: str | None = None) -> None:
        """Hand one message to the server. Raises PermanentFailure, TemporaryFailure or SenderRejected."""
        self.submit(recipient, data, envelope_from)
        self.collect()

    def submit(self, recipient: str, data: bytes, envelope_from: str | None = None) -> None:
        """Send the envelope and the content; `collect` then reads the server's final answer."""
        payload = wire_format(data)
        try:  # internationalized domains go out in their ASCII (IDNA) form
            sender, recipient = wire_address(envelope_from or self.envelope_from), wire_address(recipient)
        except InvalidInput as error:
            raise PermanentFailure(553, str(error)) from None
        reused = self._connection is not None
        try:
            self._submit(self._connect(), sender, recipient, payload, reused)
        except _Reconnect:
            self.close(polite=False)
            self._submit(self._connect(), sender, recipient, payload, reused=False)

    def collect(self) -> None:
        """Read the server's answer to the submitted message: return when accepted, raise otherwise."""
        if self._connection is None:
            raise TemporaryFailure("connection lost after the message was sent: not connected")
        try:
            code, message = self._connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close(polite=False)
            raise TemporaryFailure(f"connection lost after the message was sent: {_describe(error)}") from None
        if code >= 400:
            raise self._failure(code, message)

    def _submit(self, conn: smtplib.SMTP, sender: str, recipient: str, payload: bytes, reused: bool) -> None:
        self._payload_size = len(payload)
        mail = f"MAIL FROM:<{sender}>{self._mail_options(conn, sender, recipient, payload)}"
        commands = [mail, f"RCPT TO:<{recipient}>", "DATA"]
        try:
            if self._pipelining:
                conn.send(("\r\n".join(commands) + "\r\n").encode())
                replies = [conn.getreply() for _ in commands]
            else:
                replies = []
                for command in commands:
                    conn.send((command + "\r\n").encode())
                    replies.append(conn.getreply())
                    if replies[-1][0] >= 400:
                        break
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close(polite=False)
            if reused:
                raise _Reconnect(str(error)) from None
            raise TemporaryFailure(f"connection lost before the message was sent: {_describe(error)}") from None
        self._check_envelope(conn, replies, reused)
        try:
            conn.send(payload)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close(polite=False)
            raise TemporaryFailure(f"connection lost while sending the message: {_describe(error)}") from None

    def _check_envelope(self, conn: smtplib.SMTP, replies: list[tuple[int, bytes]], reused: bool) -> None:
        """Raise for the first refused envelope command; leave the connection ready for the next message."""
        codes = [code for code, _ in replies]
        if reused and codes[0] == 421:
            self.close(polite=False)
            raise _Reconnect("the server closed the reused connection (421)")
        if len(codes) == 3 and codes[2] == 354 and not (_positive(codes[0]) and _positive(codes[1])):
            conn.send(b".\r\n")  # DATA was accepted although a command before it failed: end it empty
            conn.getreply()
        for stage, (code, message) in zip(("MAIL", "RCPT", "DATA"), replies):
            accepted = code == 354 if stage == "DATA" else _positive(code)
            if accepted:
                continue
            self._reset(conn, code)
            if (stage == "MAIL" and code == 552) or _too_large(code, message):  # 552 to MAIL: SIZE= (RFC 1870)
                raise MessageTooLarge(code, _text(message), self._payload_size, self._size_limit(conn))
            if stage == "MAIL" and code >= 500:
                raise SenderRejected(f"the server refused the envelope sender: {code} {_text(message)}")
            if stage == "RCPT" and code >= 500 and _refuses_client(code, message):
                raise SenderRejected(f"the server refused mail from us, not the recipient: {code} {_text(message)}")
            raise self._failure(code, message)

    def _failure(self, code: int, message: bytes) -> DeliveryError:
        if code == 421:
            self.close(polite=False)
        if _too_large(code, message):
            return MessageTooLarge(code, _text(message), self._payload_size, self._size_limit(self._connection))
        if 500 <= code < 600:
            return PermanentFailure(code, _text(message))
        return TemporaryFailure(f"{code} {_text(message)}")

    def _reset(self, conn: smtplib.SMTP, code: int) -> None:
        if code == 421 or self._connection is None:
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close(polite=False)

    @staticmethod
    def _size_limit(conn: smtplib.SMTP | None) -> int | None:
        """The server's fixed message size limit from its EHLO SIZE keyword (RFC 1870), when it gave one."""
        value = conn.esmtp_features.get("size", "") if conn is not None else ""
        return int(value) if value.strip().isdigit() and int(value) > 0 else None

    def _mail_options(self, conn: smtplib.SMTP, sender: str, recipient: str, payload: bytes) -> str:
        options = ""
        if conn.has_extn("size"):
            options += f" SIZE={len(payload)}"
        if not payload.isascii() and conn.has_extn("8bitmime"):
            options += " BODY=8BITMIME"
        if not (sender + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise PermanentFailure(553, "the server cannot take an internationalized address (no SMTPUTF8)")
            options += " SMTPUTF8"
        return options

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        s = self.settings
        try:
            connection: smtplib.SMTP
            if s.smtp_security == SmtpSecurity.ssl:
                connection = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                              context=_tls_context(s))
            else:
                connection = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            _no_delay(connection)
            connection.ehlo()
            if s.smtp_security == SmtpSecurity.starttls:
                connection.starttls(context=_tls_context(s))
                connection.ehlo()
            if s.smtp_username:
                connection.login(s.smtp_username, s.smtp_password)
        except smtplib.SMTPAuthenticationError as error:
            raise SenderRejected(f"SMTP login to {s.smtp_host}:{s.smtp_port} as {s.smtp_username!r} refused: "
                                 f"{error.smtp_code} {_text(error.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as error:
            raise SenderRejected(f"SMTP server {s.smtp_host}:{s.smtp_port}: {error}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnreachable(f"cannot reach SMTP server {s.smtp_host}:{s.smtp_port}: "
                                    f"{_describe(error)}") from None
        self._connection = connection
        self._pipelining = connection.has_extn("pipelining")
        self.connections_opened += 1
        return connection

    def close(self, polite: bool = True) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            if polite:
                connection.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            connection.close()


class SmtpPool:
    """Up to `settings.smtp_connections` SmtpSenders sending at the same time, each on its own thread.

    `send` hands a message to a free connection and returns a Future whose result is None when the server
    accepted it, else the PermanentFailure, TemporaryFailure or SenderRejected it raised (anything else is
    raised by `result()`). A connection is opened when first needed, so a pool of one behaves exactly like one
    SmtpSender; the caller keeps at most `size` messages in flight (`send` blocks until a connection is free).
    """

    def __init__(self, settings: Settings):
        self.size = settings.smtp_connections
        self._senders = [SmtpSender(settings) for _ in range(self.size)]
        self._idle: queue.SimpleQueue[SmtpSender] = queue.SimpleQueue()
        for sender in self._senders:
            self._idle.put(sender)
        self._threads = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="smtp")

    def __enter__(self) -> SmtpPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def connections_opened(self) -> int:
        return sum(sender.connections_opened for sender in self._senders)

    def send(self, recipient: str, data: bytes, envelope_from: str | None = None) -> Future:
        return self._threads.submit(self._send, recipient, data, envelope_from)

    def _send(self, recipient: str, data: bytes, envelope_from: str | None) -> DeliveryError | None:
        sender = self._idle.get()
        try:
            sender.send(recipient, data, envelope_from)
            return None
        except (PermanentFailure, TemporaryFailure, SenderRejected) as error:
            return error
        finally:
            self._idle.put(sender)

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        for sender in self._senders:
            sender.close()


def _no_delay(connection: smtplib.SMTP) -> None:
    """TCP_NODELAY: under TLS a message leaves as several 16 KB records, one write each; with Nagle's algorithm
    each write after the first waits for the server's (delayed, ~40 ms) ACK, which capped STARTTLS/SSL sending
    at about 20 messages/s per connection against Postfix. Our writes are whole commands or whole messages, so
    there is nothing for Nagle to coalesce."""
    if connection.sock is None:
        return
    try:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not TCP: nothing to tune
        pass


SMTPUTF8_CHECK_SECONDS = 600
_smtputf8_answers: dict[tuple, tuple[float, bool]] = {}
_smtputf8_lock = threading.Lock()


def offers_smtputf8(settings: Settings) -> bool:
    """Whether the configured SMTP server offers SMTPUTF8 (RFC 6531), i.e. can take an address whose local part
    is not ASCII. Asked with one EHLO, remembered for 10 minutes per server; a server that cannot be reached
    counts as "no" (such an address is then refused at sign-up rather than lost at send time)."""
    server = (settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username)
    with _smtputf8_lock:
        known = _smtputf8_answers.get(server)
        if known is not None and time.monotonic() - known[0] < SMTPUTF8_CHECK_SECONDS:
            return known[1]
    sender = SmtpSender(settings)
    try:
        offered = sender._connect().has_extn("smtputf8")
    except DeliveryError:
        offered = False
    finally:
        sender.close()
    with _smtputf8_lock:
        _smtputf8_answers[server] = (time.monotonic(), offered)
    return offered


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name always verified: against smtp_ca_file when set, else the system's CAs."""
    return ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)


_LINE_END = re.compile(rb"\r\n|\r|\n")


def wire_format(data: bytes) -> bytes:
    """The DATA payload: CRLF line endings, dot-stuffed, ending with the terminating dot line."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # a bare LF or CR (never sent as such)
        data = _LINE_END.sub(b"\r\n", data)
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


_TOO_LARGE = re.compile(r"^5\.(3\.4|2\.3)\b")
# What servers say at RCPT when they refuse the client or its envelope sender rather than the recipient: Postfix
# reports its client, HELO and sender restrictions at RCPT (smtpd_delay_reject), e.g. "554 5.7.1
# <host[127.0.0.1]>: Client host rejected: Access denied" on a submission port without AUTH; relaying refused
# (Postfix, Sendmail, Exim); and 530 "Authentication required" (RFC 4954).
_REFUSES_CLIENT = re.compile(r"client host rejected|helo command rejected|sender address rejected|"
                             r"relay access denied|relaying denied|relay not permitted|authentication required", re.I)


def _too_large(code: int, message: bytes | str) -> bool:
    return 500 <= code < 600 and bool(_TOO_LARGE.match(_text(message).strip()))


def _refuses_client(code: int, message: bytes | str) -> bool:
    return code == 530 or bool(_REFUSES_CLIENT.search(_text(message)))


def _positive(code: int) -> bool:
    return 200 <= code < 300


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _describe(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}" if str(error) else error.__class__.__name__
