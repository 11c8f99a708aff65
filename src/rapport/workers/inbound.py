"""Job `inbound.process`: turn one stored provider payload into messages and statuses.

Parsing is the adapter's pure function. Media is fetched through the adapter (the provider's
API, through the guarded client) and stored before the database transaction, which then does
everything else at once. A payload that cannot be parsed is kept, flagged and shown to admins;
it can be processed again after a fix.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Any

import structlog

from rapport.channels.base import BadPayload, Channel, SendContext
from rapport.channels.registry import adapter_for
from rapport.db import outbox
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.errors import DomainError
from rapport.domain.inboxes import actions as inbox_actions
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.domain.inboxes.queries import inbox_config
from rapport.domain.ports import InboundMessage, MediaRef, Parsed, StatusUpdate
from rapport.lib.text import clean_filename
from rapport.services import Services

log = structlog.get_logger(__name__)

# A status may arrive before our send recorded the provider id: look again a few times.
ORPHAN_STATUS_RETRIES = 4
ORPHAN_STATUS_DELAY = 3.0


class RetryLater(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


async def process_inbound(services: Services, job: ClaimedJob) -> None:
    inbound_id = int(job.payload["inbound_event_id"])
    async with services.read_session() as session:
        inbound = await session.get(InboundEvent, inbound_id)
        if inbound is None or inbound.status == "processed":
            return await _complete(services, job)
        inbox = await session.get(Inbox, inbound.inbox_id)
        assert inbox is not None
        adapter = adapter_for(inbox.channel)
        config = adapter.load_config(inbox_config(inbox, services.box))
        body, content_type = inbound.body, inbound.content_type
    try:
        parsed = list(adapter.parse(body, content_type, config))
    except (BadPayload, ValueError, KeyError, TypeError) as exc:
        return await _flag(services, job, inbound_id, f"{type(exc).__name__}: {exc}")
    try:
        # Refused media (too large, not the provider's) is bad input: flag it. Network errors
        # propagate and the job is tried again with backoff.
        files = await _fetch_all(services, adapter, config, parsed)
    except BadPayload as exc:
        return await _flag(services, job, inbound_id, f"{type(exc).__name__}: {exc}")
    try:
        await _apply(services, job, inbound_id, parsed, files)
    except DomainError as exc:
        await _flag(services, job, inbound_id, f"{type(exc).__name__}: {exc}")


async def _complete(services: Services, job: ClaimedJob) -> None:
    async with services.session() as session:
        await outbox.complete(session, job.id)
        await events.commit(session)


async def _flag(services: Services, job: ClaimedJob, inbound_id: int, error: str) -> None:
    log.warning("inbound.failed", inbound_event_id=inbound_id, error=error)
    async with services.session() as session:
        inbound = await session.get(InboundEvent, inbound_id)
        assert inbound is not None
        await inbox_actions.mark_inbound_failed(session, inbound=inbound, error=error)
        await outbox.complete(session, job.id)
        await events.commit(session)


async def _fetch_all(
    services: Services, adapter: Channel[Any], config: Any, parsed: Sequence[Parsed]
) -> dict[int, list[StoredFile]]:
    """Download and store every attachment, keyed by the parsed item's position."""
    ctx = SendContext(
        http=services.http, read_file=services.files.read, public_url=services.settings.public_url
    )
    stored: dict[int, list[StoredFile]] = {}
    for index, item in enumerate(parsed):
        if isinstance(item, InboundMessage) and item.attachments:
            stored[index] = [
                await _fetch_one(services, adapter, config, ctx, r) for r in item.attachments
            ]
    return stored


async def _fetch_one(
    services: Services, adapter: Channel[Any], config: Any, ctx: SendContext, ref: MediaRef
) -> StoredFile:
    data = await adapter.fetch_media(ref, config, ctx)
    if len(data) > services.settings.max_attachment_bytes:
        raise BadPayload(f"attachment {ref.filename!r} is larger than the limit")
    name = clean_filename(ref.filename, fallback="attachment")
    suffix = mimetypes.guess_extension(ref.content_type.split(";")[0].strip()) or ""
    key = await services.files.save(data, suffix=suffix if suffix.startswith(".") else "")
    return StoredFile(
        filename=name,
        content_type=ref.content_type or "application/octet-stream",
        size=len(data),
        storage_key=key,
        content_id=ref.content_id,
    )


async def _apply(
    services: Services,
    job: ClaimedJob,
    inbound_id: int,
    parsed: Sequence[Parsed],
    files: dict[int, list[StoredFile]],
) -> None:
    async with services.session() as session:
        inbound = await session.get(InboundEvent, inbound_id)
        assert inbound is not None
        inbox = await session.get(Inbox, inbound.inbox_id)
        account = await session.get(Account, inbound.account_id)
        assert inbox is not None and account is not None
        orphans = 0
        for index, item in enumerate(parsed):
            if isinstance(item, StatusUpdate):
                result = await actions.apply_status_update(session, inbox=inbox, update=item)
                orphans += result == actions.StatusResult.unknown
            else:
                await actions.receive_message(
                    session, account=account, inbox=inbox, inbound=item, files=files.get(index, ())
                )
                if item.consent is not None:
                    await contact_actions.record_consent(
                        session,
                        account=account,
                        claim=item.sender[0],
                        consent=item.consent,
                        channel=inbox.channel,
                        keyword=item.content.strip(),
                    )
        if orphans and job.attempts < ORPHAN_STATUS_RETRIES:
            await events.rollback(session)
            raise RetryLater("status for a message not recorded yet", ORPHAN_STATUS_DELAY)
        await inbox_actions.mark_inbound_processed(session, inbound=inbound)
        await outbox.complete(session, job.id)
        await events.commit(session)
