"""Job `inbound.process`: turn one stored provider payload into messages and statuses.

Parsing is the adapter's pure function. Media is fetched through the adapter (the provider's
API, through the guarded client) and stored before the database transaction, which then does
everything else at once. A payload that cannot be parsed is kept, flagged and shown to admins;
it can be processed again after a fix.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Any, NamedTuple

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.channels.base import BadPayload, Channel, SendContext
from rapport.channels.registry import inbox_adapter
from rapport.db import outbox
from rapport.db.helpers import table_of
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.errors import DomainError
from rapport.domain.inboxes import actions as inbox_actions
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.domain.ports import InboundMessage, MediaRef, Parsed, StatusUpdate
from rapport.lib.text import clean_filename
from rapport.services import Services

log = structlog.get_logger(__name__)

# A status may arrive before our send recorded the provider id: look again a few times.
ORPHAN_STATUS_RETRIES = 4
ORPHAN_STATUS_DELAY = 3.0
# Another job stored the same row at the same time (one message in two payloads): once that
# job has committed, this one finds its row and records a redelivery.
CONCURRENT_COPY_DELAY = 1.0


class RetryLater(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


async def process_inbound(services: Services, job: ClaimedJob) -> None:
    inbound_id = int(job.payload["inbound_event_id"])
    async with services.session() as session:
        loaded = await _load(session, inbound_id)
        if loaded is None:  # gone, or processed by an earlier attempt
            await outbox.complete(session, job.id)
            await events.commit(session)
            return
        inbound, inbox, account = loaded
        try:
            adapter, config, parsed = _parse(services, inbound, inbox)
        except (BadPayload, ValueError, KeyError, TypeError) as exc:
            return await _flag(session, job, inbound, f"{type(exc).__name__}: {exc}")
        if not _has_media(parsed):
            # The common case: everything in this one transaction.
            return await _apply_or_flag(session, job, inbound, inbox, account, parsed, {})
    # Attachments are downloaded and stored outside any transaction (a slow provider must not
    # hold database locks), then applied in a transaction of their own.
    try:
        # Refused media (too large, not the provider's) is bad input: flag it. Network errors
        # propagate and the job is tried again with backoff.
        files = await _fetch_all(services, adapter, config, parsed)
    except BadPayload as exc:
        async with services.session() as session:
            loaded = await _load(session, inbound_id)
            if loaded is not None:
                await _flag(session, job, loaded[0], f"{type(exc).__name__}: {exc}")
        return
    async with services.session() as session:
        loaded = await _load(session, inbound_id)
        if loaded is None:
            return
        await _apply_or_flag(session, job, *loaded, parsed, files)


# Built once, values bound: SQLAlchemy then reuses its compiled form without rebuilding it.
_PAYLOAD_WITH_INBOX_AND_ACCOUNT = (
    select(InboundEvent, Inbox, Account)
    .join(Inbox, Inbox.id == InboundEvent.inbox_id)
    .join(Account, Account.id == InboundEvent.account_id)
    .where(InboundEvent.id == bindparam("inbound_id"))
)


async def _load(
    session: AsyncSession, inbound_id: int
) -> tuple[InboundEvent, Inbox, Account] | None:
    """The pending payload with its inbox and account, in one query."""
    row = (
        await session.execute(_PAYLOAD_WITH_INBOX_AND_ACCOUNT, {"inbound_id": inbound_id})
    ).first()
    if row is None or row[0].status == "processed":
        return None
    return row[0], row[1], row[2]


class _Payload(NamedTuple):
    """What a batch reads of a stored payload: a plain row, not a loaded object."""

    id: int
    inbox_id: int
    account_id: int
    status: str
    body: bytes
    content_type: str


_INBOUND = table_of(InboundEvent)
_PAYLOADS = select(
    _INBOUND.c.id,
    _INBOUND.c.inbox_id,
    _INBOUND.c.account_id,
    _INBOUND.c.status,
    _INBOUND.c.body,
    _INBOUND.c.content_type,
).where(_INBOUND.c.id.in_(bindparam("ids", expanding=True)))
_INBOX_WITH_ACCOUNT = (
    select(Inbox, Account)
    .join(Account, Account.id == Inbox.account_id)
    .where(Inbox.id == bindparam("inbox_id"))
)


async def _load_batch(
    session: AsyncSession, inbound_ids: Sequence[int]
) -> dict[int, tuple[_Payload, Inbox, Account]]:
    """The batch's pending payloads as plain rows, in one statement, each with its inbox and
    account, loaded once per inbox (a batch's payloads mostly share one). Payloads gone or
    processed by an earlier attempt are left out."""
    rows = await session.execute(_PAYLOADS, {"ids": list(inbound_ids)})
    payloads = [_Payload(*row) for row in rows if row.status != "processed"]
    inboxes: dict[int, tuple[Inbox, Account]] = {}
    for inbox_id in sorted({payload.inbox_id for payload in payloads}):
        row = (await session.execute(_INBOX_WITH_ACCOUNT, {"inbox_id": inbox_id})).one()
        inboxes[inbox_id] = (row[0], row[1])
    return {payload.id: (payload, *inboxes[payload.inbox_id]) for payload in payloads}


def _parse(
    services: Services, inbound: InboundEvent | _Payload, inbox: Inbox
) -> tuple[Channel[Any], Any, list[Parsed]]:
    """The adapter's pure parse of a stored payload, with the adapter and its config."""
    adapter, config = inbox_adapter(inbox, services.box)
    return adapter, config, list(adapter.parse(inbound.body, inbound.content_type, config))


def _has_media(parsed: Sequence[Parsed]) -> bool:
    return any(isinstance(item, InboundMessage) and item.attachments for item in parsed)


async def _flag(session: AsyncSession, job: ClaimedJob, inbound: InboundEvent, error: str) -> None:
    log.warning("inbound.failed", inbound_event_id=inbound.id, error=error)
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


async def _apply_or_flag(
    session: AsyncSession,
    job: ClaimedJob,
    inbound: InboundEvent,
    inbox: Inbox,
    account: Account,
    parsed: Sequence[Parsed],
    files: dict[int, list[StoredFile]],
) -> None:
    """Apply every parsed item and commit; a domain refusal flags the payload instead."""
    try:
        await _apply(session, job, inbox, account, parsed, files)
    except DomainError as exc:
        inbound_id = inbound.id
        await events.rollback(session)
        reloaded = await session.get(InboundEvent, inbound_id)
        assert reloaded is not None
        return await _flag(session, job, reloaded, f"{type(exc).__name__}: {exc}")
    except RetryLater:
        await events.rollback(session)
        raise
    except IntegrityError as exc:
        # Most likely another job storing the same row: try again soon, once; a conflict that
        # comes back is something else, and the usual backoff applies.
        await events.rollback(session)
        delay = CONCURRENT_COPY_DELAY if job.attempts <= 1 else None
        raise RetryLater(f"a row it writes was stored meanwhile: {exc.orig}", delay) from exc
    await inbox_actions.finish_inbound(session, inbound_ids=[inbound.id], job_ids=[job.id])
    await events.commit(session)


async def _apply(
    session: AsyncSession,
    job: ClaimedJob,
    inbox: Inbox,
    account: Account,
    parsed: Sequence[Parsed],
    files: dict[int, list[StoredFile]],
    *,
    in_batch: bool = False,
) -> None:
    """Apply every parsed item (no commit; the caller marks the payload and ends the job).

    In a batch a message is not looked up by its provider id first: a redelivery fails the
    batch on the unique index, and each payload then runs on its own, with the lookup."""
    orphans = 0
    for index, item in enumerate(parsed):
        if isinstance(item, StatusUpdate):
            result = await actions.apply_status_update(session, inbox=inbox, update=item)
            orphans += result == actions.StatusResult.unknown
        else:
            await actions.receive_message(
                session,
                account=account,
                inbox=inbox,
                inbound=item,
                files=files.get(index, ()),
                look_for_redelivery=not in_batch,
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
        raise RetryLater("status for a message not recorded yet", ORPHAN_STATUS_DELAY)


class _NotBatchable(Exception):
    """A payload that needs its own transaction (media to fetch)."""


async def process_inbound_batch(services: Services, jobs: Sequence[ClaimedJob]) -> bool:
    """Apply several payloads in one transaction, in job order; False if it was rolled back.

    Under load most of an inbound job's cost is per transaction and per statement: BEGIN and
    COMMIT, the account's event counter (a lock held to the commit), the job deletions, the
    payloads' reads. A batch pays them once. Anything unusual (a payload to flag, media to
    fetch, a status for a message not recorded yet, a redelivered message, any error) rolls
    the whole batch back and returns False, and the relay runs each job on its own as before,
    with its own retries: a batch is only ever all of them or none.
    """
    try:
        async with services.session() as session:
            ids = [int(job.payload["inbound_event_id"]) for job in jobs]
            loaded = await _load_batch(session, ids)
            applied = []
            for job, inbound_id in zip(jobs, ids, strict=True):
                if inbound_id in loaded:
                    await _apply_in_batch(services, session, job, *loaded[inbound_id])
                    applied.append(inbound_id)
            await inbox_actions.finish_inbound(
                session, inbound_ids=applied, job_ids=[job.id for job in jobs]
            )
            await events.commit(session)
    except Exception as exc:  # nothing was committed: each job runs on its own instead
        log.info("inbound.batch_split", jobs=len(jobs), reason=f"{type(exc).__name__}: {exc}")
        return False
    return True


async def _apply_in_batch(
    services: Services,
    session: AsyncSession,
    job: ClaimedJob,
    payload: _Payload,
    inbox: Inbox,
    account: Account,
) -> None:
    """Apply one payload of a batch."""
    _adapter, _config, parsed = _parse(services, payload, inbox)
    if _has_media(parsed):
        raise _NotBatchable("media to fetch")
    await _apply(session, job, inbox, account, parsed, {}, in_batch=True)
