"""The email channel's long-running part: the SMTP listener and one poller per IMAP mailbox.

Started by the workers' listeners (`rapport worker`, and in-process by `rapport demo` and
`rapport serve --with-worker`). Every few seconds the set of email inboxes is read again, so a
mailbox added, changed or switched off in the admin is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from contextlib import suppress

import structlog

from rapport.channels.base import IntakeHost, ListenedInbox
from rapport.channels.email.config import EmailConfig
from rapport.channels.email.imap import MailboxPoller
from rapport.channels.email.listener import KIND, Directory, start_listener

log = structlog.get_logger(__name__)

_IMAP_FIELDS = (
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
    "imap_mailbox",
    "imap_poll_seconds",
    "imap_backfill_days",
)


def _fingerprint(config: EmailConfig) -> str:
    fields = {name: getattr(config, name) for name in _IMAP_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class Pollers:
    """One running poller per inbox with IMAP settings; restarted when those settings change."""

    def __init__(self, host: IntakeHost) -> None:
        self._host = host
        self._running: dict[int, tuple[str, asyncio.Task[None]]] = {}

    async def refresh(self) -> None:
        inboxes = await self._host.inboxes(KIND)
        wanted: dict[int, tuple[str, ListenedInbox]] = {
            inbox.id: (_fingerprint(inbox.config), inbox)
            for inbox in inboxes
            if isinstance(inbox.config, EmailConfig) and inbox.config.imap_host
        }
        for inbox_id, (fingerprint, task) in list(self._running.items()):
            if wanted.get(inbox_id, ("",))[0] != fingerprint or task.done():
                await self._stop(inbox_id)
        for inbox_id, (fingerprint, inbox) in wanted.items():
            if inbox_id not in self._running:
                task = asyncio.create_task(MailboxPoller(self._host, inbox).run())
                self._running[inbox_id] = (fingerprint, task)

    async def _stop(self, inbox_id: int) -> None:
        _, task = self._running.pop(inbox_id)
        task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await task

    async def close(self) -> None:
        for inbox_id in list(self._running):
            await self._stop(inbox_id)


async def run_intake(host: IntakeHost, stop: asyncio.Event) -> None:
    settings = host.settings
    server = None
    if settings.smtp_listen_port is not None:
        server = await start_listener(host, Directory(host))
    pollers = Pollers(host)
    try:
        while not stop.is_set():
            try:
                await pollers.refresh()
            except Exception as exc:  # the database may be restarting: keep going
                log.warning("email.intake_refresh_failed", error=f"{type(exc).__name__}: {exc}")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.intake_refresh_seconds)
    finally:
        await pollers.close()
        if server is not None:
            server.close()
            await server.wait_closed()
