"""Message bytes: multipart/alternative (text + HTML) with the bulk-mail headers, CRLF line endings."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from datetime import datetime, timezone

from newsletter.render import RenderedEmail, one_line


def build_message(rendered: RenderedEmail, *, sender: str, to: str, message_id: str,
                  extra_headers: dict[str, str] | None = None, when: datetime | None = None) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(rendered.subject, 200)
    message["Date"] = format_datetime(when or datetime.now(timezone.utc))
    message["Message-ID"] = message_id
    for name, value in (extra_headers or {}).items():
        message[name] = one_line(value, 2000)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message.as_bytes()


def address_domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def display_address(name: str, address: str) -> str:
    return formataddr((one_line(name), address))
