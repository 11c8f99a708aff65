"""Intake cursor actions: claim a source for reading, move its position, let it go.

A cursor is read by one process at a time: `claim_cursor` takes (or renews) a lease that expires
by itself if the process dies; `move_cursor` succeeds only for the lease holder, in the same
transaction that stores what was read, so position and payloads never disagree.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.helpers import insert_ignore
from rapport.domain.errors import Conflict
from rapport.domain.inboxes.models import Inbox
from rapport.domain.intake.models import IntakeCursor
from rapport.lib.clock import utcnow


class LeaseNotHeld(Conflict):
    """Another process holds this source now."""


async def claim_cursor(
    session: AsyncSession, *, inbox: Inbox, source: str, owner: str, lease_seconds: int
) -> IntakeCursor | None:
    """Take or renew the lease on a source; None while another live process holds it."""
    now = utcnow()
    await insert_ignore(
        session,
        IntakeCursor.__table__,  # type: ignore[arg-type]
        {
            "account_id": inbox.account_id,
            "inbox_id": inbox.id,
            "source": source[:200],
            "position": 0,
            "created_at": now,
        },
        conflict_columns=("inbox_id", "source"),
    )
    result = await session.execute(
        update(IntakeCursor)
        .where(
            IntakeCursor.inbox_id == inbox.id,
            IntakeCursor.source == source[:200],
            or_(
                IntakeCursor.lease_owner.is_(None),
                IntakeCursor.lease_owner == owner,
                IntakeCursor.lease_expires_at < now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await session.scalar(
        select(IntakeCursor)
        .where(IntakeCursor.inbox_id == inbox.id, IntakeCursor.source == source[:200])
        .execution_options(populate_existing=True)
    )


async def move_cursor(
    session: AsyncSession,
    *,
    inbox_id: int,
    source: str,
    owner: str,
    epoch: int | None,
    position: int,
    lease_seconds: int,
) -> None:
    """Record the new position (and renew the lease); LeaseNotHeld if it was taken over."""
    now = utcnow()
    result = await session.execute(
        update(IntakeCursor)
        .where(
            IntakeCursor.inbox_id == inbox_id,
            IntakeCursor.source == source[:200],
            IntakeCursor.lease_owner == owner,
        )
        .values(
            epoch=epoch,
            position=position,
            updated_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise LeaseNotHeld("another process reads this mailbox now")


async def release_cursor(session: AsyncSession, *, inbox_id: int, source: str, owner: str) -> None:
    await session.execute(
        update(IntakeCursor)
        .where(
            IntakeCursor.inbox_id == inbox_id,
            IntakeCursor.source == source[:200],
            IntakeCursor.lease_owner == owner,
        )
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
