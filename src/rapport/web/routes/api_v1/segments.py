"""JSON API v1: saved segments (read-only here) and the contacts in them right now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from rapport.domain.contacts.queries import attribute_definitions, identities_by_contact
from rapport.domain.segments import queries
from rapport.domain.segments.filters import parse_filter
from rapport.web.deps import ApiAgent, DbSession
from rapport.web.routes.api_v1._common import PathId, errors
from rapport.web.routes.api_v1.contacts import contact_read
from rapport.web.schemas import SegmentContactsRead, SegmentRead

router = APIRouter(tags=["segments"])

MAX_OFFSET = 100_000


@router.get("/segments", response_model=list[SegmentRead], responses=errors())
async def list_segments(agent: ApiAgent, session: DbSession) -> list[SegmentRead]:
    found = await queries.segments_of(session, account_id=agent.account.id)
    return [SegmentRead.model_validate(s) for s in found]


@router.get("/segments/{segment_id}", response_model=SegmentRead, responses=errors(404))
async def get_segment(segment_id: PathId, agent: ApiAgent, session: DbSession) -> SegmentRead:
    segment = await queries.get_segment(session, account_id=agent.account.id, segment_id=segment_id)
    return SegmentRead.model_validate(segment)


@router.get(
    "/segments/{segment_id}/contacts", response_model=SegmentContactsRead, responses=errors(404)
)
async def segment_contacts(
    segment_id: PathId,
    agent: ApiAgent,
    session: DbSession,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> SegmentContactsRead:
    """Who is in the segment now (evaluated on each call), most recently active first."""
    account_id = agent.account.id
    segment = await queries.get_segment(session, account_id=account_id, segment_id=segment_id)
    flt = parse_filter(segment.filters)
    definitions = await attribute_definitions(session, account_id=account_id)
    count = await queries.filter_count(
        session, account_id=account_id, flt=flt, definitions=definitions
    )
    contacts = await queries.filter_contacts(
        session,
        account_id=account_id,
        flt=flt,
        limit=limit,
        offset=offset,
        definitions=definitions,
    )
    identities = await identities_by_contact(session, [c.id for c in contacts])
    more = offset + len(contacts) < count and len(contacts) == limit
    return SegmentContactsRead(
        count=count,
        items=[contact_read(c, identities[c.id]) for c in contacts],
        next_offset=offset + limit if more else None,
    )
