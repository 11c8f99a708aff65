"""Segment actions: create, change and delete saved filters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.contacts.models import Label
from rapport.domain.contacts.queries import attribute_definitions
from rapport.domain.errors import Conflict, InvalidInput
from rapport.domain.segments.filters import SegmentFilter, check_filter, parse_filter
from rapport.domain.segments.models import Segment
from rapport.lib.clock import utcnow


async def _checked(session: AsyncSession, account_id: int, filters: object) -> SegmentFilter:
    flt = parse_filter(filters)
    label_ids = set(await session.scalars(select(Label.id).where(Label.account_id == account_id)))
    definitions = await attribute_definitions(session, account_id=account_id)
    return check_filter(flt, definitions=definitions, label_ids=label_ids)


async def _name(session: AsyncSession, account_id: int, name: str, segment_id: int | None) -> str:
    clean = " ".join(name.replace("\x00", "").split())[:120]
    if not clean:
        raise InvalidInput("a segment needs a name", field="name")
    taken = await session.scalar(
        select(Segment.id).where(Segment.account_id == account_id, Segment.name == clean)
    )
    if taken is not None and taken != segment_id:
        raise Conflict("a segment with this name already exists")
    return clean


async def create_segment(
    session: AsyncSession,
    *,
    account_id: int,
    name: str,
    filters: object,
    description: str = "",
    created_by_id: int | None = None,
) -> Segment:
    """Save a filter under a name; its conditions are checked against the account first."""
    flt = await _checked(session, account_id, filters)
    segment = Segment(
        account_id=account_id,
        name=await _name(session, account_id, name, None),
        description=description.replace("\x00", "").strip()[:500],
        filters=flt.model_dump(mode="json"),
        created_by_id=created_by_id,
    )
    session.add(segment)
    await session.flush()
    _changed(session, segment, events.Change.created, created_by_id)
    return segment


async def update_segment(
    session: AsyncSession,
    *,
    segment: Segment,
    name: str,
    filters: object,
    description: str = "",
    actor_user_id: int | None = None,
) -> Segment:
    flt = await _checked(session, segment.account_id, filters)
    segment.name = await _name(session, segment.account_id, name, segment.id)
    segment.description = description.replace("\x00", "").strip()[:500]
    segment.filters = flt.model_dump(mode="json")
    segment.updated_at = utcnow()
    await session.flush()
    _changed(session, segment, events.Change.updated, actor_user_id)
    return segment


async def delete_segment(
    session: AsyncSession, *, segment: Segment, actor_user_id: int | None = None
) -> None:
    _changed(session, segment, events.Change.deleted, actor_user_id)
    await session.delete(segment)
    await session.flush()


def _changed(
    session: AsyncSession, segment: Segment, change: events.Change, actor_user_id: int | None
) -> None:
    events.record(
        session,
        account_id=segment.account_id,
        event=events.SegmentChanged(segment_id=segment.id, name=segment.name, change=change),
        actor_user_id=actor_user_id,
    )
