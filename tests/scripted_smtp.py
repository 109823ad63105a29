"""A real SMTP server on loopback (aiosmtpd) that can be told how to misbehave.

    with ScriptedSmtp(tmp_path) as smtp:
        smtp.handler.refuse_rcpt["gone@example.org"] = "550 5.1.1 No such user"
        smtp.handler.next_data("451", "drop", "stall")   # the next three DATA replies; then accept again

DATA actions: "accept", a reply such as "451 ..." / "421 ..." / "554 ...", "drop" (close the connection once the content
has arrived, without answering), "stall" (wait `stall_seconds` before answering, past the client's timeout).
Only accepted messages are kept in `handler.accepted`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from email import message_from_bytes
from email.message import Message
from email.policy import default

from newsletter.sink import SmtpSink

REPLIES = {"451": "451 4.3.0 Try again later", "421": "421 4.3.2 Service shutting down",
           "550": "550 5.7.1 Message refused", "554": "554 5.7.1 Rejected as spam"}


class ScriptedHandler:
    def __init__(self, pipelining: bool = True, stall_seconds: float = 1.0, accept_delay: float = 0.0):
        self.pipelining = pipelining
        self.stall_seconds = stall_seconds
        self.accept_delay = accept_delay  # seconds before each 250 to the content, like a server that works
        self.refuse_rcpt: dict[str, str] = {}
        self.mail_reply: str | None = None
        self.close_after_next_accept = False  # then close the connection when the next transaction starts
        self._closing = False
        self.accepted: list = []  # envelopes
        self.data_attempts = 0
        self.ehlos = 0
        self._data_actions: deque[str] = deque()
        self._lock = threading.Lock()

    def next_data(self, *actions: str) -> None:
        self._data_actions.extend(actions)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self._closing:  # as a server does that closes idle connections
            self._closing = False
            server.transport.close()
            return "421 4.4.2 Idle timeout"
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.data_attempts += 1
            action = self._data_actions.popleft() if self._data_actions else None
        if action == "drop":
            server.transport.close()
            return "250 never seen"
        if action == "stall":
            await asyncio.sleep(self.stall_seconds)
            server.transport.close()
            return "250 too late"
        if action and action != "accept":
            return REPLIES.get(action, action)
        if self.accept_delay:
            await asyncio.sleep(self.accept_delay)
        with self._lock:
            self.accepted.append(envelope)
            if self.close_after_next_accept:
                self.close_after_next_accept, self._closing = False, True
        return "250 2.0.0 Ok: queued"

    def messages(self) -> list[Message]:
        return [message_from_bytes(e.original_content, policy=default) for e in self.accepted]

    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages()]


class ScriptedSmtp(SmtpSink):
    handler: ScriptedHandler

    def __init__(self, folder, **handler_options):
        super().__init__(folder, handler=ScriptedHandler(**handler_options))

    def __enter__(self) -> ScriptedSmtp:  # typed as this class, so `with ... as smtp` knows its handler
        super().__enter__()
        return self
