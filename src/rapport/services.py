"""The running parts of a Rapport process, built once from settings and shared by web and workers.

Database, secret box, file store, event bus, realtime hub and the guarded HTTP client. Sessions
handed out here publish their committed events and wake the workers after commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.engine import Database, open_database
from rapport.domain import events
from rapport.domain.events import EventCounter
from rapport.domain.inboxes.intake import Intake
from rapport.domain.webhooks.actions import fan_out
from rapport.lib.crypto import SecretBox, check_purpose_token, purpose_token
from rapport.lib.http import build_client
from rapport.lib.storage import LocalFileStore
from rapport.realtime.bus import Bus, create_bus
from rapport.realtime.hub import Hub
from rapport.realtime.presence import Presence
from rapport.settings import Settings

ATTACHMENT_LINK_PURPOSE = "attachment-link"


@dataclass
class Services:
    settings: Settings
    db: Database
    box: SecretBox
    files: LocalFileStore
    bus: Bus
    http: httpx.AsyncClient
    hub: Hub | None = None
    presence: Presence | None = None
    # Verified provider calls being kept; those arriving together are written together.
    intake: Intake = field(init=False, repr=False)
    _started: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.session)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A writing session whose commits (via `events.commit`) fan out to webhook
        subscriptions, then publish and wake workers."""
        async with self.db.sessions() as session:
            events.add_before_commit_hook(session, fan_out)
            events.add_after_commit_hook(session, self._after_commit)
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self.db.read_sessions() as session:
            yield session

    async def _after_commit(
        self, published: Sequence[events.PublishedEvent], outbox_written: bool
    ) -> None:
        if published:
            await self.bus.publish(published)
        if outbox_written:
            await self.bus.wake_workers()

    def attachment_link(self, attachment_id: int) -> str:
        """A signed public URL for one attachment (providers fetch media we send from it)."""
        secret = self.settings.secret_key.get_secret_value()
        token = purpose_token(secret, ATTACHMENT_LINK_PURPOSE, attachment_id)
        return f"{self.settings.public_url}/public/attachments/{attachment_id}/{token}"

    def attachment_link_valid(self, attachment_id: int, token: str) -> bool:
        secret = self.settings.secret_key.get_secret_value()
        return check_purpose_token(secret, ATTACHMENT_LINK_PURPOSE, attachment_id, token)

    async def replay(self, account_id: int, after_seq: int) -> list[events.PublishedEvent]:
        async with self.read_session() as session:
            return await events.events_after(session, account_id=account_id, after_seq=after_seq)

    async def latest_seqs(self, account_ids: Sequence[int]) -> dict[int, int]:
        async with self.read_session() as session:
            rows = await session.execute(
                select(EventCounter.account_id, EventCounter.last_seq).where(
                    EventCounter.account_id.in_(list(account_ids))
                )
            )
            return {int(a): int(s) for a, s in rows.all()}

    async def start(self) -> None:
        await self.bus.start()
        if self.hub is not None:
            self.bus.on_event(self.hub.on_wire)
            self.bus.on_ephemeral(self.hub.on_ephemeral)
            self.bus.on_reconnect(self.hub.catch_up_all)
            await self.hub.start()
        if self.presence is not None:
            await self.presence.start()
        self._started = True

    async def stop(self) -> None:
        if self.presence is not None:
            await self.presence.stop()
        if self.hub is not None:
            await self.hub.stop()
        await self.bus.stop()
        await self.http.aclose()
        await self.db.dispose()


def build_services(settings: Settings, *, with_hub: bool) -> Services:
    services = Services(
        settings=settings,
        db=open_database(settings.database_url),
        box=SecretBox(settings.secret_key.get_secret_value()),
        files=LocalFileStore(settings.storage_dir),
        bus=create_bus(settings.redis_url, prefix=settings.redis_prefix),
        http=build_client(
            allow_private=settings.http_allow_private, timeout=settings.http_timeout_seconds
        ),
    )
    if with_hub:
        services.hub = Hub(replay=services.replay, latest=services.latest_seqs)
        services.presence = Presence(services.hub, settings.redis_url, prefix=settings.redis_prefix)
    return services
