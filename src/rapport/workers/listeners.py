"""Listeners: the long-running parts of channels that receive by listening or polling.

Each adapter's `listen` runs here (the email channel's SMTP listener and IMAP pollers), against
`Intake`, which stores what they receive exactly as a verified webhook call is stored
(`store_inbound` plus the `inbound.process` job, in one transaction), and keeps polled sources'
positions and leases. `rapport worker` runs the listeners next to the outbox worker; `rapport
demo` and `rapport serve --with-worker` run both in the web process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import select

from rapport.channels.base import Cursor, CursorMove, LeaseLost, ListenedInbox
from rapport.channels.registry import ADAPTERS, adapter_for
from rapport.domain import events
from rapport.domain.inboxes.actions import store_inbound
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from rapport.domain.intake import actions as intake
from rapport.services import Services
from rapport.settings import Settings
from rapport.workers.relay import default_worker_id

log = structlog.get_logger(__name__)


class Intake:
    """The `IntakeHost` the channels' listeners talk to."""

    def __init__(self, services: Services, *, owner: str | None = None) -> None:
        self._services = services
        self.settings: Settings = services.settings
        self.owner = owner or default_worker_id()

    async def inboxes(self, kind: str) -> list[ListenedInbox]:
        adapter = adapter_for(kind)
        async with self._services.read_session() as session:
            rows = list(
                await session.scalars(
                    select(Inbox).where(Inbox.channel == kind, Inbox.is_active).order_by(Inbox.id)
                )
            )
        found = []
        for inbox in rows:
            try:
                config = adapter.load_config(inbox_config(inbox, self._services.box))
            except Exception as exc:  # one broken inbox must not stop the others
                log.warning("intake.bad_config", inbox_id=inbox.id, error=type(exc).__name__)
                continue
            found.append(ListenedInbox(inbox.id, inbox.account_id, config))
        return found

    async def store(
        self,
        inbox_id: int,
        *,
        dedupe_key: str,
        body: bytes,
        content_type: str,
        meta: dict[str, Any],
        cursor: CursorMove | None = None,
    ) -> bool:
        async with self._services.session() as session:
            inbox = await session.get(Inbox, inbox_id)
            if inbox is None:
                raise LeaseLost(f"inbox {inbox_id} is gone")
            if cursor is not None:
                await self._move(session, inbox_id, cursor)
            stored = await store_inbound(
                session,
                inbox=inbox,
                dedupe_key=dedupe_key,
                body=body,
                content_type=content_type,
                meta=meta,
            )
            await events.commit(session)
            return stored

    async def store_position(self, inbox_id: int, cursor: CursorMove) -> None:
        async with self._services.session() as session:
            await self._move(session, inbox_id, cursor)
            await events.commit(session)

    async def _move(self, session: Any, inbox_id: int, cursor: CursorMove) -> None:
        try:
            await intake.move_cursor(
                session,
                inbox_id=inbox_id,
                source=cursor.source,
                owner=self.owner,
                epoch=cursor.epoch,
                position=cursor.position,
                lease_seconds=self.settings.intake_lease_seconds,
            )
        except intake.LeaseNotHeld as exc:
            raise LeaseLost(cursor.source) from exc

    async def claim(self, inbox_id: int, source: str) -> Cursor | None:
        async with self._services.session() as session:
            inbox = await session.get(Inbox, inbox_id)
            if inbox is None or not inbox.is_active:
                return None
            row = await intake.claim_cursor(
                session,
                inbox=inbox,
                source=source,
                owner=self.owner,
                lease_seconds=self.settings.intake_lease_seconds,
            )
            cursor = Cursor(row.source, row.epoch, row.position, row.updated_at) if row else None
            await events.commit(session)
            return cursor

    async def release(self, inbox_id: int, source: str) -> None:
        async with self._services.session() as session:
            await intake.release_cursor(session, inbox_id=inbox_id, source=source, owner=self.owner)
            await events.commit(session)


async def _listen(adapter_kind: str, intake_host: Intake, stop: asyncio.Event) -> None:
    try:
        await adapter_for(adapter_kind).listen(intake_host, stop)
    except Exception as exc:  # a listener that cannot start (port taken) says so loudly
        log.error("listener.failed", channel=adapter_kind, error=f"{type(exc).__name__}: {exc}")
        raise


@asynccontextmanager
async def listeners_in_background(services: Services) -> AsyncIterator[Intake]:
    """Run every channel's listeners in this process until the block ends."""
    stop = asyncio.Event()
    host = Intake(services)
    tasks = [
        asyncio.create_task(_listen(adapter.kind, host, stop), name=f"listen:{adapter.kind}")
        for adapter in ADAPTERS
    ]
    try:
        yield host
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
