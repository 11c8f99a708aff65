"""JSON API v1: merging two contacts into one, and undoing a merge exactly."""

from __future__ import annotations

from fastapi import APIRouter

from rapport.domain import events
from rapport.domain.contacts import merge
from rapport.domain.contacts.merge_queries import merges_into
from rapport.domain.contacts.queries import get_contact
from rapport.web.deps import ApiAgent, DbSession
from rapport.web.routes.api_v1._common import PathId, errors
from rapport.web.schemas import MergeCreate, MergeRead

router = APIRouter(tags=["merges"])


@router.post(
    "/contacts/{contact_id}/merges",
    response_model=MergeRead,
    status_code=201,
    responses=errors(404, 409),
)
async def merge_into(
    contact_id: PathId, body: MergeCreate, agent: ApiAgent, session: DbSession
) -> MergeRead:
    """Merge another contact into this one: its identities, conversations, events and the
    attributes this one lacks move here. The answer's `id` undoes it."""
    record = await merge.merge_contacts(
        session,
        account_id=agent.account.id,
        survivor_id=contact_id,
        merged_id=body.merged_id,
        actor_user_id=agent.user.id,
    )
    await events.commit(session)
    return MergeRead.model_validate(record)


@router.get("/contacts/{contact_id}/merges", response_model=list[MergeRead], responses=errors(404))
async def merges_of(contact_id: PathId, agent: ApiAgent, session: DbSession) -> list[MergeRead]:
    """The merges into this contact that can still be undone, newest first."""
    contact = await get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    found = await merges_into(session, account_id=agent.account.id, contact_id=contact.id)
    return [MergeRead.model_validate(record) for record, _merged in found]


@router.post("/merges/{merge_id}/unmerge", response_model=MergeRead, responses=errors(404, 409))
async def unmerge(merge_id: PathId, agent: ApiAgent, session: DbSession) -> MergeRead:
    """Undo a merge: both contacts as they were; what arrived since stays with the survivor."""
    await merge.unmerge_contacts(
        session, account_id=agent.account.id, merge_id=merge_id, actor_user_id=agent.user.id
    )
    await events.commit(session)
    record = await session.get(merge.ContactMerge, merge_id)
    assert record is not None
    return MergeRead.model_validate(record)
