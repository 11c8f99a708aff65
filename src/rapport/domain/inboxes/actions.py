"""Inbox actions: connecting channels, and storing what providers send before anything else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db import outbox
from rapport.db.helpers import table_of
from rapport.db.prepared import Prepared
from rapport.domain import events
from rapport.domain.errors import InvalidInput, NotFound
from rapport.domain.inboxes import queries
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.lib.clock import utcnow
from rapport.lib.crypto import SecretBox, random_token

PROCESS_INBOUND_JOB = "inbound.process"


async def create_inbox(
    session: AsyncSession,
    *,
    account_id: int,
    name: str,
    channel: str,
    config: dict[str, Any],
    box: SecretBox,
    team_id: int | None = None,
) -> Inbox:
    """Connect a channel account. `config` was validated by the channel adapter's Config."""
    if not name.strip():
        raise InvalidInput("an inbox needs a name", field="name")
    inbox = Inbox(
        account_id=account_id,
        name=name.strip()[:120],
        channel=channel,
        config_encrypted=box.encrypt_json(config),
        public_token=random_token(18),
        team_id=team_id,
        is_active=True,
    )
    session.add(inbox)
    await session.flush()
    return inbox


async def update_inbox(
    session: AsyncSession,
    *,
    inbox: Inbox,
    name: str,
    config: dict[str, Any],
    box: SecretBox,
    team_id: int | None,
    is_active: bool,
) -> Inbox:
    if not name.strip():
        raise InvalidInput("an inbox needs a name", field="name")
    inbox.name = name.strip()[:120]
    inbox.config_encrypted = box.encrypt_json(config)
    inbox.team_id = team_id
    inbox.is_active = is_active
    return inbox


async def store_inbound(
    session: AsyncSession,
    *,
    inbox: Inbox,
    dedupe_key: str,
    body: bytes,
    content_type: str,
    meta: dict[str, Any] | None = None,
    if_unchanged: bool = False,
) -> bool:
    """Keep a verified provider call and queue its processing. False when it was a redelivery.

    `if_unchanged`: store only while the inbox is still active with the settings the call was
    verified against (`inbox` may be a copy remembered from earlier: `queries.inbox_memory`),
    checked in the insert itself; False is then also the answer when it changed."""
    inbound_id = await outbox.insert_and_enqueue(
        session,
        InboundEvent.__table__,  # type: ignore[arg-type]
        {
            "account_id": inbox.account_id,
            "inbox_id": inbox.id,
            "dedupe_key": dedupe_key[:255],
            "content_type": content_type[:255],
            "body": body,
            "meta": meta or {},
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        },
        conflict_columns=("inbox_id", "dedupe_key"),
        kind=PROCESS_INBOUND_JOB,
        ref="inbound_event_id",
        account_id=inbox.account_id,
        only_if=_INBOX_UNCHANGED if if_unchanged else None,
        only_if_values=queries.as_read_values(inbox) if if_unchanged else None,
    )
    return inbound_id is not None


_INBOXES = table_of(Inbox)
_INBOX_UNCHANGED = select(_INBOXES.c.id).where(queries.AS_READ).exists()


# Built once, values bound: the worker runs them for every payload and SQLAlchemy reuses
# their compiled form. Core statements: the payloads' loaded objects are not read after them.
_INBOUND = table_of(InboundEvent)
_PROCESSED: dict[str, Any] = {
    "status": "processed",
    "error": None,
    "processed_at": bindparam("now"),
}
_MARK_PROCESSED = (
    update(_INBOUND).where(_INBOUND.c.id.in_(bindparam("ids", expanding=True))).values(_PROCESSED)
)
# One payload (a batch of one): straight to the driver (ADR 11).
_MARK_ONE_PROCESSED = Prepared(
    update(_INBOUND).where(_INBOUND.c.id == bindparam("inbound_id")).values(_PROCESSED)
)
# PostgreSQL: the payloads marked and their jobs ended in one statement, the update as a
# data-modifying CTE of the jobs' deletion.
_IDS = ARRAY(BigInteger())
_FINISH = Prepared(
    delete(outbox.JOBS)
    .where(outbox.JOBS.c.id == any_(bindparam("job_ids", type_=_IDS)))
    .add_cte(
        update(_INBOUND)
        .where(_INBOUND.c.id == any_(bindparam("inbound_ids", type_=_IDS)))
        .values(_PROCESSED)
        .returning(_INBOUND.c.id)
        .cte("processed")
    )
)


async def finish_inbound(
    session: AsyncSession, *, inbound_ids: list[int], job_ids: list[int]
) -> None:
    """Mark payloads processed and end the jobs that applied them (a worker's batch, or one):
    one statement on PostgreSQL, one each elsewhere, however many."""
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        await _FINISH.all(session, {"inbound_ids": inbound_ids, "job_ids": job_ids, "now": now})
        return
    if len(inbound_ids) == 1:
        await _MARK_ONE_PROCESSED.all(session, {"inbound_id": inbound_ids[0], "now": now})
    elif inbound_ids:
        await session.execute(_MARK_PROCESSED, {"ids": inbound_ids, "now": now})
    await outbox.complete_all(session, job_ids)


async def mark_inbound_failed(session: AsyncSession, *, inbound: InboundEvent, error: str) -> None:
    """Keep the payload, flag it, and tell admins: nothing is lost, it can be processed again."""
    inbound.status = "failed"
    inbound.error = error[:4000]
    inbound.attempts += 1
    events.record(
        session,
        account_id=inbound.account_id,
        event=events.InboundFailed(
            inbound_event_id=inbound.id, inbox_id=inbound.inbox_id, error=error[:500]
        ),
    )


async def reprocess_inbound(session: AsyncSession, *, account_id: int, inbound_id: int) -> None:
    """Queue a failed payload again (after a fix was deployed)."""
    result = await session.execute(
        update(InboundEvent)
        .where(
            InboundEvent.id == inbound_id,
            InboundEvent.account_id == account_id,
            InboundEvent.status == "failed",
        )
        .values(status="pending")
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("inbound event")
    outbox.enqueue(
        session,
        kind=PROCESS_INBOUND_JOB,
        payload={"inbound_event_id": inbound_id},
        account_id=account_id,
    )
