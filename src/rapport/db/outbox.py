"""The transactional outbox: jobs written with the state change, consumed by workers after commit.

A claim is a lease: claiming moves `available_at` forward by the lease, so a worker that dies
between claim and finish simply lets the lease run out and another worker takes the job again.
Jobs must therefore be idempotent, which every handler is (provider ids, idempotency keys).
PostgreSQL claims with FOR UPDATE SKIP LOCKED so concurrent workers never take the same row;
SQLite serialises writers, so a plain UPDATE inside the IMMEDIATE transaction is enough. Either
way the claim is one statement (see `claim`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Insert,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.engine import one_statement_alone
from rapport.db.helpers import insert_ignore, table_of, typed_row
from rapport.db.prepared import Prepared
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow

# Delay before attempt n+1 (seconds); the last value repeats.
BACKOFF_SECONDS = (1, 5, 15, 60, 300, 900, 1800, 3600)


class OutboxJob(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index(
            "ix_outbox_claimable",
            "available_at",
            "id",
            postgresql_where=text("dead_at IS NULL"),
            sqlite_where=text("dead_at IS NULL"),
        ),
    )


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    account_id: int | None


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    account_id: int | None,
    delay_seconds: float = 0,
) -> OutboxJob:
    """Add a job to the current transaction; it becomes visible to workers at commit."""
    job = OutboxJob(
        kind=kind,
        payload=payload,
        account_id=account_id,
        available_at=utcnow() + timedelta(seconds=delay_seconds),
        attempts=0,
    )
    session.add(job)
    session.info["outbox_written"] = True
    return job


async def insert_and_enqueue(
    session: AsyncSession,
    table: Table,
    values: dict[str, Any],
    *,
    conflict_columns: tuple[str, ...],
    kind: str,
    ref: str,
    account_id: int | None,
    only_if: ColumnElement[bool] | None = None,
    only_if_values: Mapping[str, Any] | None = None,
) -> int | None:
    """Insert a row unless it exists and, only if it is new, queue job `kind` with `{ref: id}`.

    The id of the new row, or None when it existed (nothing queued). On PostgreSQL both go in
    one statement, a data-modifying CTE: this is the webhook acknowledgement's path, where each
    round trip counts. Elsewhere it is the insert and then `enqueue`. `only_if` is a condition
    (built once, its values bound from `only_if_values`) the insert also requires, checked in
    the same statement; None is then also the answer when it did not hold."""
    if session.get_bind().dialect.name != "postgresql":
        row_id = await insert_ignore(
            session,
            table,
            values,
            conflict_columns=conflict_columns,
            only_if=only_if,
            only_if_values=only_if_values,
        )
        if row_id is not None:  # the job as a Core statement too: nothing reads it back here
            now = utcnow()
            await _ENQUEUE.all(
                session,
                {"account_id": account_id, "kind": kind, "payload": {ref: row_id}, "now": now},
            )
            session.info["outbox_written"] = True
        return row_id
    statement = _insert_and_enqueue_statement(
        table, tuple(values), conflict_columns, kind, ref, only_if
    )
    now = utcnow()
    params = {**values, **(only_if_values or {}), "job_account_id": account_id, "now": now}
    payload = await statement.scalar(session, params)
    if payload is None:
        return None
    session.info["outbox_written"] = True
    return int(payload[ref])


_STATEMENTS: dict[tuple[Any, ...], Prepared] = {}
# The jobs' table, for statements that end jobs along with their own work in one round trip.
JOBS = table_of(OutboxJob)
# A job queued with a stored row on SQLite (`insert_and_enqueue`), built once.
_ENQUEUE = Prepared(
    insert(JOBS).values(
        account_id=bindparam("account_id"),
        kind=bindparam("kind"),
        payload=bindparam("payload"),
        available_at=bindparam("now"),
        attempts=0,
        created_at=bindparam("now"),
    )
)


def _insert_and_enqueue_statement(
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    kind: str,
    ref: str,
    only_if: ColumnElement[bool] | None,
) -> Prepared:
    key = (table.name, columns, conflict, kind, ref, only_if)
    prepared = _STATEMENTS.get(key)
    if prepared is None:
        row = postgresql.insert(table)
        row = (
            row.values({name: bindparam(name) for name in columns})
            if only_if is None
            else row.from_select(list(columns), typed_row(table, columns).where(only_if))
        )
        stored = (
            row.on_conflict_do_nothing(index_elements=list(conflict))
            .returning(table.c.id)
            .cte("stored")
        )
        statement = jobs_for(stored.c.id, kind=kind, ref=ref).returning(JOBS.c.payload)
        prepared = _STATEMENTS[key] = Prepared(statement)
    return prepared


def jobs_for(ids: ColumnElement[Any], *, kind: str, ref: str) -> Insert:
    """PostgreSQL: an INSERT of one job `kind` with `{ref: id}` for each of `ids` (a column of
    a data-modifying CTE), due now; bound values `job_account_id` and `now`. Written with the
    rows it refers to, in their statement."""
    now = bindparam("now", type_=UTCDateTime())
    return insert(JOBS).from_select(
        ["account_id", "kind", "payload", "available_at", "attempts", "created_at"],
        select(
            bindparam("job_account_id", type_=BigId),
            literal(kind),
            func.jsonb_build_object(ref, ids),
            now,
            literal(0),
            now,
        ),
    )


async def claim(
    session: AsyncSession, *, worker_id: str, limit: int, lease_seconds: int
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs under a lease and commit the claim; oldest due first, the
    returned jobs in id order.

    One statement: `UPDATE ... WHERE id IN (the due ids) RETURNING`, so a poll that finds
    nothing costs that statement alone. On PostgreSQL it runs without a transaction around it
    (a single statement is atomic; BEGIN and COMMIT would be two more round trips on every
    poll) and its subquery locks with SKIP LOCKED, so concurrent workers never take the same
    row. SQLite keeps its IMMEDIATE transaction, which serialises the claim against writers."""
    postgres = session.get_bind().dialect.name == "postgresql"
    await one_statement_alone(session)
    now = utcnow()
    rows = await _claim_statement(postgres).all(
        session,
        {
            "now": now,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "worker_id": worker_id,
            "limit": limit,
        },
    )
    claimed = [ClaimedJob(*row) for row in rows]
    await session.commit()
    claimed.sort(key=lambda job: job.id)
    return claimed


_CLAIMS: dict[bool, Prepared] = {}


def _claim_statement(postgres: bool) -> Prepared:
    """The claim, built once per dialect (its values are bound parameters)."""
    prepared = _CLAIMS.get(postgres)
    if prepared is None:
        now = bindparam("now", type_=UTCDateTime())
        due = (
            select(JOBS.c.id)
            .where(JOBS.c.dead_at.is_(None), JOBS.c.available_at <= now)
            .order_by(JOBS.c.available_at, JOBS.c.id)
            .limit(bindparam("limit", type_=Integer()))
        )
        if postgres:
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(JOBS)
            .where(JOBS.c.id.in_(due))
            .values(
                available_at=bindparam("lease_until", type_=UTCDateTime()),
                attempts=JOBS.c.attempts + 1,
                locked_by=bindparam("worker_id", type_=String()),
            )
            .returning(JOBS.c.id, JOBS.c.kind, JOBS.c.payload, JOBS.c.attempts, JOBS.c.account_id)
        )
        prepared = _CLAIMS[postgres] = Prepared(statement)
    return prepared


# Built once, values bound: every finished job runs one of these, and SQLAlchemy reuses their
# compiled form. Core statements: a job is finished by id, never through a loaded ORM object.
_COMPLETE = Prepared(delete(JOBS).where(JOBS.c.id == bindparam("job_id")))
_COMPLETE_ALL = delete(JOBS).where(JOBS.c.id.in_(bindparam("job_ids", expanding=True)))


async def complete(session: AsyncSession, job_id: int) -> None:
    """Remove a finished job (called in the same transaction as the job's own effects)."""
    await _COMPLETE.all(session, {"job_id": job_id})


async def complete_all(session: AsyncSession, job_ids: list[int]) -> None:
    """`complete` for many jobs in one statement (a worker's batch)."""
    if len(job_ids) == 1:
        await complete(session, job_ids[0])
    elif job_ids:
        await session.execute(_COMPLETE_ALL, {"job_ids": job_ids})


async def retry_later(
    session: AsyncSession,
    *,
    job_id: int,
    attempts: int,
    error: str,
    max_attempts: int,
    delay_seconds: float | None = None,
) -> bool:
    """Schedule another attempt with backoff, or mark the job dead. Returns True when dead."""
    now = utcnow()
    if attempts >= max_attempts:
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id)
            .values(dead_at=now, last_error=error[:2000], locked_by=None)
        )
        return True
    if delay_seconds is None:
        delay_seconds = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    await session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == job_id)
        .values(
            available_at=now + timedelta(seconds=delay_seconds),
            last_error=error[:2000],
            locked_by=None,
        )
    )
    return False


async def requeue_dead(session: AsyncSession, *, job_id: int) -> None:
    """Give a dead job a fresh set of attempts (the agent pressed retry)."""
    await session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == job_id)
        .values(dead_at=None, attempts=0, available_at=utcnow(), last_error=None)
    )
