"""Segment reads: the saved segments, and who is in one (count and pages of contacts)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.contacts.models import AttributeDefinition, Contact
from rapport.domain.contacts.queries import attribute_definitions
from rapport.domain.errors import NotFound
from rapport.domain.segments.filters import SegmentFilter, compile_filter, parse_filter
from rapport.domain.segments.models import Segment
from rapport.lib.clock import utcnow


async def segments_of(session: AsyncSession, *, account_id: int) -> list[Segment]:
    rows = await session.scalars(
        select(Segment).where(Segment.account_id == account_id).order_by(Segment.name)
    )
    return list(rows)


async def get_segment(session: AsyncSession, *, account_id: int, segment_id: int) -> Segment:
    found = await session.get(Segment, segment_id)
    if found is None or found.account_id != account_id:
        raise NotFound("segment")
    return found


async def filter_condition(
    session: AsyncSession,
    *,
    account_id: int,
    flt: SegmentFilter,
    definitions: Sequence[AttributeDefinition] | None = None,
) -> ColumnElement[bool]:
    """The SQL condition on contacts for a filter, for this account and database.

    A page that compiles several filters passes the account's attribute `definitions`, read
    once; otherwise they are read here."""
    if definitions is None:
        definitions = await attribute_definitions(session, account_id=account_id)
    return compile_filter(
        flt,
        account_id=account_id,
        definitions=definitions,
        dialect=session.get_bind().dialect.name,
        now=utcnow(),
    )


async def filter_count(
    session: AsyncSession,
    *,
    account_id: int,
    flt: SegmentFilter,
    definitions: Sequence[AttributeDefinition] | None = None,
) -> int:
    where = await filter_condition(session, account_id=account_id, flt=flt, definitions=definitions)
    return int(await session.scalar(select(func.count(Contact.id)).where(where)) or 0)


async def filter_contacts(
    session: AsyncSession,
    *,
    account_id: int,
    flt: SegmentFilter,
    limit: int,
    offset: int = 0,
    definitions: Sequence[AttributeDefinition] | None = None,
) -> list[Contact]:
    """Matching contacts, most recently active first."""
    where = await filter_condition(session, account_id=account_id, flt=flt, definitions=definitions)
    rows = await session.scalars(
        select(Contact)
        .where(where)
        .order_by(Contact.last_activity_at.desc(), Contact.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def segment_count(session: AsyncSession, *, account_id: int, segment_id: int) -> int:
    """How many contacts are in the segment right now."""
    segment = await get_segment(session, account_id=account_id, segment_id=segment_id)
    return await filter_count(session, account_id=account_id, flt=parse_filter(segment.filters))


async def segment_contacts(
    session: AsyncSession, *, account_id: int, segment_id: int, limit: int, offset: int = 0
) -> list[Contact]:
    """One page of the segment's contacts, most recently active first."""
    segment = await get_segment(session, account_id=account_id, segment_id=segment_id)
    return await filter_contacts(
        session,
        account_id=account_id,
        flt=parse_filter(segment.filters),
        limit=limit,
        offset=offset,
    )


async def contact_in_segment(
    session: AsyncSession, *, account_id: int, segment_id: int, contact_id: int
) -> bool:
    """Whether one contact is in the segment now (for routing and automation rules)."""
    segment = await get_segment(session, account_id=account_id, segment_id=segment_id)
    where = await filter_condition(
        session, account_id=account_id, flt=parse_filter(segment.filters)
    )
    found = await session.scalar(select(Contact.id).where(where, Contact.id == contact_id))
    return found is not None
