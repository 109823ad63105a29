"""A local SMTP sink on loopback that keeps every message it accepts as an .eml file.

The demo mails through it so nothing leaves the machine; tests use it as a real SMTP server.
"""

from __future__ import annotations

import itertools
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


class SaveToFolder:
    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(len(list(folder.glob("*.eml"))) + 1)
        self._lock = threading.Lock()
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        with self._lock:
            number = next(self._counter)
            self.envelopes.append(envelope)
        recipient = envelope.rcpt_tos[0].replace("/", "_") if envelope.rcpt_tos else "unknown"
        (self.folder / f"{number:06d}-{recipient}.eml").write_bytes(_content(envelope))
        return "250 Message accepted for delivery"


class SmtpSink:
    """`with SmtpSink(folder) as sink:` serves on 127.0.0.1:`sink.port` until the block ends. `smtputf8`: offer
    SMTPUTF8 (RFC 6531: addresses whose local part is not ASCII), as some servers do and others do not."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0, handler=None, smtputf8: bool = False):
        self.folder = Path(folder)
        self.handler = handler or SaveToFolder(self.folder)
        self._controller = Controller(self.handler, hostname=host, port=port or _free_port(host),
                                      enable_SMTPUTF8=smtputf8)

    @property
    def host(self) -> str:
        return self._controller.hostname

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._controller.stop()

    def messages(self) -> list[Message]:
        return [message_from_bytes(_content(e)) for e in self.handler.envelopes]


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _content(envelope: Envelope) -> bytes:
    """The message as received (aiosmtpd keeps the original bytes; `content` is only a decoded fallback)."""
    content = envelope.original_content or envelope.content or b""
    return content.encode() if isinstance(content, str) else content
