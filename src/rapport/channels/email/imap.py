"""Polling an existing mailbox over IMAP (aioimaplib), with IDLE where the server offers it.

Position is (UIDVALIDITY, last UID) per mailbox (RFC 3501 section 2.3.1.1), advanced in the
same transaction that stores each mail, so a crash never skips one and a refetch is a no-op
(the Message-ID dedupes). When UIDVALIDITY changes, the old UIDs mean nothing: the mailbox is
scanned again from a day before the last successful read, and deduplication drops what was
already stored. Mail is fetched with BODY.PEEK[] so Rapport never marks it read. One process at
a time reads a mailbox (a lease on the cursor row); the others wait their turn.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import suppress
from datetime import datetime, timedelta

import aioimaplib
import structlog

from rapport.channels.base import Cursor, CursorMove, IntakeHost, LeaseLost, ListenedInbox
from rapport.channels.email.config import EmailConfig
from rapport.channels.email.inbound import dedupe_key
from rapport.lib.clock import utcnow

log = structlog.get_logger(__name__)

IMAP_TIMEOUT = 30.0
MAX_BACKOFF = 300.0
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class ImapError(Exception):
    """The server said NO or BAD, or answered something we cannot read."""


def source_of(config: EmailConfig) -> str:
    return (
        f"imap:{config.imap_username}@{config.imap_host}:{config.imap_port}/{config.imap_mailbox}"[
            :200
        ]
    )


def _imap_date(moment: datetime) -> str:
    return f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year}"  # RFC 3501 date


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        raise ImapError(f"{what}: {response.result}")
    return response


def _number(pattern: re.Pattern[bytes], lines: list[bytes]) -> int | None:
    for line in lines:
        if isinstance(line, bytes | bytearray):
            match = pattern.search(bytes(line))
            if match:
                return int(match.group(1))
    return None


class MailboxPoller:
    def __init__(self, host: IntakeHost, inbox: ListenedInbox) -> None:
        self._host = host
        self._inbox_id = inbox.id
        self._config: EmailConfig = inbox.config
        self.source = source_of(self._config)

    async def run(self) -> None:
        """Read the mailbox until cancelled, reconnecting with backoff."""
        failures = 0
        try:
            while True:
                cursor = await self._host.claim(self._inbox_id, self.source)
                if cursor is None:  # another worker holds the mailbox
                    await asyncio.sleep(self._host.settings.intake_lease_seconds / 2)
                    continue
                try:
                    await self._session(cursor)
                except LeaseLost:
                    continue
                except (aioimaplib.AioImapException, ImapError, OSError, TimeoutError) as exc:
                    failures += 1
                    log.warning(
                        "imap.failed", inbox_id=self._inbox_id, error=f"{type(exc).__name__}: {exc}"
                    )
                    await asyncio.sleep(min(MAX_BACKOFF, 2.0**failures))
                else:
                    failures = 0
        finally:
            with suppress(Exception):
                await self._host.release(self._inbox_id, self.source)

    def _client(self) -> aioimaplib.IMAP4:
        config = self._config
        kind = aioimaplib.IMAP4_SSL if config.imap_security == "tls" else aioimaplib.IMAP4
        return kind(host=config.imap_host, port=config.imap_port, timeout=IMAP_TIMEOUT)

    async def _session(self, cursor: Cursor) -> None:
        imap = self._client()
        try:
            await imap.wait_hello_from_server()
            login = await imap.login(self._config.imap_username, self._config.imap_password)
            if login.result != "OK":
                raise ImapError("the IMAP server refused the username or password")
            await self._read(imap, cursor)
        finally:
            await _close(imap)

    async def _read(self, imap: aioimaplib.IMAP4, cursor: Cursor) -> None:
        selected = _ok(await imap.select(self._config.imap_mailbox), "SELECT")
        uidvalidity = _number(_UIDVALIDITY, selected.lines)
        if uidvalidity is None:
            raise ImapError("the server gave no UIDVALIDITY")
        position = await self._start(imap, cursor, uidvalidity, selected.lines)
        idle = "IDLE" in imap.protocol.capabilities
        while True:
            position = await self._fetch_new(imap, uidvalidity, position)
            await self._wait(imap, idle)
            if await self._host.claim(self._inbox_id, self.source) is None:
                raise LeaseLost(self.source)

    async def _start(
        self, imap: aioimaplib.IMAP4, cursor: Cursor, uidvalidity: int, lines: list[bytes]
    ) -> int:
        """Where to read from in this UIDVALIDITY: the cursor, or a dated scan when it is new."""
        if cursor.epoch == uidvalidity:
            return cursor.position
        uidnext = _number(_UIDNEXT, lines) or 1
        if cursor.epoch is not None and cursor.updated_at is not None:
            since: datetime | None = cursor.updated_at - timedelta(days=1)
            log.warning("imap.uidvalidity_changed", inbox_id=self._inbox_id, source=self.source)
        elif self._config.imap_backfill_days:
            since = utcnow() - timedelta(days=self._config.imap_backfill_days)
        else:
            since = None
        position = uidnext - 1
        if since is not None:
            found = _ok(await imap.uid_search(f"SINCE {_imap_date(since)}", charset=None), "SEARCH")
            uids = _uids(found.lines)
            position = min(uids) - 1 if uids else uidnext - 1
        await self._host.store_position(
            self._inbox_id, CursorMove(self.source, uidvalidity, max(position, 0))
        )
        return max(position, 0)

    async def _fetch_new(self, imap: aioimaplib.IMAP4, uidvalidity: int, position: int) -> int:
        found = _ok(await imap.uid_search(f"UID {position + 1}:*", charset=None), "SEARCH")
        # "N:*" always includes the highest UID, even one below N (RFC 3501 section 6.4.8).
        for uid in sorted(u for u in _uids(found.lines) if u > position):
            fetched = _ok(await imap.uid("fetch", str(uid), "(UID BODY.PEEK[])"), "FETCH")
            raw = next((bytes(x) for x in fetched.lines if isinstance(x, bytearray)), None)
            move = CursorMove(self.source, uidvalidity, uid)
            if raw is None:  # expunged between SEARCH and FETCH: nothing to keep, move on
                await self._host.store_position(self._inbox_id, move)
            else:
                await self._host.store(
                    self._inbox_id,
                    dedupe_key=dedupe_key(raw),
                    body=raw,
                    content_type="message/rfc822",
                    meta={"via": "imap", "uidvalidity": uidvalidity, "uid": uid},
                    cursor=move,
                )
            position = uid
        return position

    async def _wait(self, imap: aioimaplib.IMAP4, idle: bool) -> None:
        """Until the server says something changed (IDLE), or the poll interval passed."""
        lease = self._host.settings.intake_lease_seconds
        if not idle:
            await asyncio.sleep(min(self._config.imap_poll_seconds, lease / 2))
            return
        waiting = await imap.idle_start(timeout=lease / 2)
        try:
            await imap.wait_server_push(timeout=lease / 2 + 5)
        except TimeoutError:
            pass
        finally:
            imap.idle_done()
        await asyncio.wait_for(waiting, IMAP_TIMEOUT)


async def _close(imap: aioimaplib.IMAP4) -> None:
    """Log out politely if the connection allows it, and always close the socket."""
    if imap.get_state() in ("AUTH", "SELECTED"):
        with suppress(Exception):
            await imap.logout()
    transport = getattr(imap.protocol, "transport", None)
    if transport is not None:
        transport.close()


def _uids(lines: list[bytes]) -> list[int]:
    """UIDs from an untagged SEARCH answer (the last line is the tagged status)."""
    numbers: list[int] = []
    for line in lines[:-1]:
        if isinstance(line, bytes | bytearray):
            numbers.extend(int(x) for x in bytes(line).split() if x.isdigit())
    return numbers
