"""Mail test helpers: fixture messages, an email inbox, a recording SMTP receiver, sending mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from rapport.channels.email import EmailChannel
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.workers.listeners import listeners_in_background
from tests.support.factory import Factory
from tests.support.live import eventually, free_port

FIXTURES = Path(__file__).resolve().parents[2] / "src/rapport/channels/email/fixtures"
SUPPORT_ADDRESS = "support@support.example.com"
REPLY_SECRET = "reply-secret-for-tests-0123456789"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def crlf(raw: bytes) -> bytes:
    """Line endings as SMTP and IMAP carry them."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


async def email_inbox(
    factory: Factory, account: Account, *, name: str = "Support", **config: Any
) -> Inbox:
    """An email inbox created like the admin form does (config validated by the adapter)."""
    values = {
        "address": SUPPORT_ADDRESS,
        "reply_secret": REPLY_SECRET,
        "authserv_ids": ["mx.support.example.com"],
        **config,
    }
    services = factory.services
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name,
            channel="email",
            config=EmailChannel().validate_config(values),
            box=services.box,
        )
        await events.commit(session)
        return inbox


@dataclass
class SmtpReceiver:
    """A local SMTP server (aiosmtpd) playing the outgoing relay: records what Rapport sent.

    `answers` queues replies for the next DATA commands ("451 ..." or "550 ...") to simulate
    transient and permanent failures; when empty, mail is accepted.
    """

    port: int = field(default_factory=free_port)
    received: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answers:
            return self.answers.pop(0)
        self.received.append((envelope, parse(envelope.original_content or b"")))
        return "250 OK"

    @property
    def config(self) -> dict[str, Any]:
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "none"}


@asynccontextmanager
async def smtp_receiver() -> AsyncIterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(receiver, loop=loop, enable_SMTPUTF8=True), "127.0.0.1", receiver.port
    )
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


async def send_mail(port: int, raw: bytes, *, sender: str, recipients: list[str]) -> None:
    """Deliver raw bytes to an SMTP server on 127.0.0.1 (as a forwarding mail server would)."""
    await aiosmtplib.send(
        crlf(raw),
        sender=sender,
        recipients=recipients,
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
        use_tls=False,
        timeout=10,
    )


@asynccontextmanager
async def listening(services: Any, port: int) -> AsyncIterator[None]:
    """Run the channel listeners and wait until the SMTP listener accepts connections."""

    async def accepting() -> bool:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async with listeners_in_background(services):
        await eventually(accepting)
        yield
