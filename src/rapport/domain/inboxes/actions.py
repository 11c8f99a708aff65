"""Inbox actions: connecting channels, and storing what providers send before anything else."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    Text,
    any_,
    bindparam,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
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


@dataclass(frozen=True)
class InboundCall:
    """A verified provider call to keep: its dedupe key, raw body and content type."""

    dedupe_key: str
    body: bytes
    content_type: str


class Kept(enum.Enum):
    """What became of a provider call (`store_inbound_calls`)."""

    STORED = "stored"  # new: stored with its processing job
    REDELIVERY = "redelivery"  # stored before (or earlier in the same calls): nothing to do
    INBOX_CHANGED = "inbox changed"  # not stored: judge the call again on the inbox as it is


async def store_inbound_calls(
    session: AsyncSession, *, inbox: Inbox, calls: Sequence[InboundCall]
) -> list[Kept]:
    """Keep verified calls to one inbox and queue their processing, in this session's
    transaction, while the inbox is still active with the settings the calls were verified
    against (`inbox` may be a copy remembered from earlier: `queries.inbox_memory`).

    On PostgreSQL it is one statement whatever the number of calls: the rows come from arrays
    (`unnest`), their jobs are a data-modifying CTE of the insert, and the same statement says
    whether the inbox is as read, so a redelivery costs no statement of its own. This is the
    webhook acknowledgement's path, where calls arriving together are written together
    (`inboxes.intake`)."""
    keys = [call.dedupe_key[:255] for call in calls]
    if session.get_bind().dialect.name == "postgresql":
        new_keys, unchanged = await _STORE_CALLS.first(
            session,
            {
                "account_id": inbox.account_id,
                "inbox_id": inbox.id,
                "job_account_id": inbox.account_id,
                "keys": keys,
                "content_types": [call.content_type[:255] for call in calls],
                "bodies": [call.body for call in calls],
                "now": utcnow(),
                **queries.as_read_values(inbox),
            },
        )
        new = set(new_keys or ())
        if new:
            session.info["outbox_written"] = True
    else:  # SQLite: no round trips to save
        new = set()
        for key, call in zip(keys, calls, strict=True):
            if key not in new and await store_inbound(
                session,
                inbox=inbox,
                dedupe_key=key,
                body=call.body,
                content_type=call.content_type,
                if_unchanged=True,
            ):
                new.add(key)
        unchanged = len(new) == len(set(keys)) or await queries.still_as_read(session, inbox)
    if not unchanged:
        return [Kept.INBOX_CHANGED] * len(calls)
    answers = []
    for key in keys:
        answers.append(Kept.STORED if key in new else Kept.REDELIVERY)
        new.discard(key)  # a second copy in the same calls is a redelivery
    return answers


def _store_calls_statement() -> Any:
    """PostgreSQL: the calls' rows from arrays, each inserted unless its key exists, and a job
    for each row stored. One row comes back: the keys stored, and whether the inbox is as
    read (both seen by the same snapshot)."""
    calls = (
        func.unnest(
            bindparam("keys", type_=ARRAY(Text())),
            bindparam("content_types", type_=ARRAY(Text())),
            bindparam("bodies", type_=ARRAY(LargeBinary())),
        )
        .table_valued("dedupe_key", "content_type", "body")
        .render_derived(name="calls")
    )
    now = bindparam("now", type_=_INBOUND.c.received_at.type)
    columns = {
        "account_id": bindparam("account_id", type_=_INBOUND.c.account_id.type),
        "inbox_id": bindparam("inbox_id", type_=_INBOUND.c.inbox_id.type),
        "dedupe_key": calls.c.dedupe_key,
        "content_type": calls.c.content_type,
        "body": calls.c.body,
        "meta": literal({}, _INBOUND.c.meta.type),
        "status": literal("pending"),
        "attempts": literal(0),
        "received_at": now,
    }
    stored = (
        postgresql.insert(_INBOUND)
        .from_select(list(columns), select(*columns.values()).where(_INBOX_UNCHANGED))
        .on_conflict_do_nothing(index_elements=["inbox_id", "dedupe_key"])
        .returning(_INBOUND.c.id, _INBOUND.c.dedupe_key)
        .cte("stored")
    )
    jobs = outbox.jobs_for(stored.c.id, kind=PROCESS_INBOUND_JOB, ref="inbound_event_id")
    stored_keys = func.array(select(stored.c.dedupe_key).scalar_subquery())
    return select(stored_keys, _INBOX_UNCHANGED).add_cte(jobs.cte("jobs"))


# Built once, values bound: the worker runs them for every payload and SQLAlchemy reuses
# their compiled form. Core statements: the payloads' loaded objects are not read after them.
_INBOUND = table_of(InboundEvent)
_STORE_CALLS = Prepared(_store_calls_statement())
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
