"""The built-in SMTP listener (aiosmtpd): mail forwarded to Rapport, and replies to reply+TOKEN@.

It accepts mail only for the addresses of active email inboxes (never relays), adds the trace
headers an MTA adds (RFC 5321 section 4.4: Return-Path, Received; Delivered-To for the envelope
recipient), stores the bytes through the same path as a webhook, and answers 250 only after the
store committed: a failure answers 451 so the sending server tries again, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import socket
import time
from email.utils import format_datetime
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from rapport.channels.base import IntakeHost, ListenedInbox
from rapport.channels.email.config import EmailConfig
from rapport.channels.email.inbound import dedupe_key
from rapport.channels.email.threads import split_address, verify_reply_token
from rapport.lib.clock import utcnow

log = structlog.get_logger(__name__)

KIND = "email"
DIRECTORY_TTL = 5.0


class Directory:
    """Which inboxes an envelope recipient reaches, from the active email inboxes (cached)."""

    def __init__(self, host: IntakeHost) -> None:
        self._host = host
        self._inboxes: list[ListenedInbox] = []
        self._loaded_at = 0.0

    async def _load(self, *, force: bool) -> list[ListenedInbox]:
        if force or time.monotonic() - self._loaded_at > DIRECTORY_TTL:
            self._inboxes = await self._host.inboxes(KIND)
            self._loaded_at = time.monotonic()
        return self._inboxes

    async def route(self, address: str) -> list[ListenedInbox]:
        found = _match(await self._load(force=False), address)
        return found or _match(await self._load(force=True), address)


def _match(inboxes: list[ListenedInbox], address: str) -> list[ListenedInbox]:
    local, tag, domain = split_address(address)
    base = f"{local.casefold()}@{domain}"
    direct = [i for i in inboxes if isinstance(i.config, EmailConfig) and i.config.address == base]
    if direct:
        return direct[:1]
    if local.casefold() != "reply" or not tag:
        return []
    candidates = [
        i for i in inboxes if isinstance(i.config, EmailConfig) and i.config.reply_domain == domain
    ]
    # The inbox whose key signed the token; a forged token still reaches the domain's first
    # inbox (threaded there by references or subject), never another conversation.
    signed = [c for c in candidates if verify_reply_token(c.config.reply_secret, tag) is not None]
    return (signed or candidates)[:1]


def _trace(envelope: Envelope, session: Session, recipient: str) -> bytes:
    peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
    helo = " ".join(str(session.host_name or "unknown").split())
    lines = [
        f"Return-Path: <{envelope.mail_from or ''}>",
        f"Delivered-To: {recipient}",
        f"Received: from {helo} ([{peer}]) by {socket.gethostname()} (Rapport) with ESMTP; "
        f"{format_datetime(utcnow())}",
    ]
    return ("\r\n".join(" ".join(line.split()) for line in lines) + "\r\n").encode()


class Handler:
    """aiosmtpd handler hooks (names fixed by aiosmtpd)."""

    def __init__(self, host: IntakeHost, directory: Directory) -> None:
        self._host = host
        self._directory = directory

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        try:
            routed = await self._directory.route(address)
        except Exception as exc:
            log.warning("smtp.directory_failed", error=str(exc))
            return "451 4.3.0 Temporary failure, please try again later"
        if not routed:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            key = dedupe_key(raw)
            for recipient in envelope.rcpt_tos:
                for inbox in await self._directory.route(recipient):
                    await self._host.store(
                        inbox.id,
                        dedupe_key=key,
                        body=_trace(envelope, session, recipient) + raw,
                        content_type="message/rfc822",
                        meta={"via": "smtp", "recipient": recipient[:320]},
                    )
        except Exception as exc:
            log.error("smtp.store_failed", error=f"{type(exc).__name__}: {exc}")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 Message accepted"


async def start_listener(host: IntakeHost, directory: Directory) -> asyncio.Server:
    """Listen on RAPPORT_SMTP_LISTEN_HOST:PORT; several workers on one machine share the port."""
    settings = host.settings
    handler = Handler(host, directory)
    options: dict[str, Any] = {
        "data_size_limit": settings.smtp_listen_max_bytes,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "hostname": socket.gethostname(),
        "ident": "Rapport ESMTP",
    }
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **options),
        host=settings.smtp_listen_host,
        port=settings.smtp_listen_port,
        reuse_port=True,
    )
    log.info("smtp.listening", host=settings.smtp_listen_host, port=settings.smtp_listen_port)
    return server
