"""JSON API v1: contacts and their identities.

DELETE erases (see docs/api.md): a contact center must honour a customer's request to be
forgotten, and a hidden row would still hold the data. Merging is how duplicates go away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.contacts import actions, queries
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.web.deps import Agent, ApiAgent, DbSession
from rapport.web.routes.api_v1._common import CURSOR_PATTERN, PathId, errors, require_supervisor
from rapport.web.schemas import (
    ContactCreate,
    ContactPageRead,
    ContactRead,
    ContactUpdate,
    ConversationRead,
    CustomEventCreate,
    CustomEventRead,
    IdentityCreate,
    IdentityRead,
    Text,
)

router = APIRouter(tags=["contacts"])


async def _read(session: AsyncSession, contact: Contact) -> ContactRead:
    identities = await queries.identities_of(session, contact.id)
    return contact_read(contact, identities)


def contact_read(contact: Contact, identities: Sequence[Identity]) -> ContactRead:
    data = {c: getattr(contact, c) for c in ContactRead.model_fields if c != "identities"}
    return ContactRead(**data, identities=[IdentityRead.model_validate(i) for i in identities])


def _verification(agent: Agent) -> Verification:
    """API-added identities are an agent's word, or verified when the token is trusted."""
    trusted = agent.api_token is not None and agent.api_token.trusted
    return Verification.verified if trusted else Verification.agent


@router.get("/contacts", response_model=ContactPageRead, responses=errors())
async def list_contacts(
    agent: ApiAgent,
    session: DbSession,
    q: Annotated[Text, Query(max_length=200, description="Name, company or identity")] = "",
    cursor: Annotated[Text | None, Query(max_length=64, pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> ContactPageRead:
    page = await queries.contact_page(
        session, account_id=agent.account.id, text=q, cursor=cursor, limit=limit
    )
    identities = await queries.identities_by_contact(session, [c.id for c in page.items])
    return ContactPageRead(
        items=[contact_read(c, identities[c.id]) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/contacts", response_model=ContactRead, status_code=201, responses=errors(409))
async def create_contact(body: ContactCreate, agent: ApiAgent, session: DbSession) -> ContactRead:
    verification = _verification(agent)
    contact = await actions.create_contact(
        session,
        account=agent.account,
        actor=agent.user,
        name=body.name,
        company=body.company,
        claims=[IdentityClaim(i.kind, i.value, verification) for i in body.identities],
    )
    await events.commit(session)
    return await _read(session, contact)


@router.get("/contacts/lookup", response_model=ContactRead, responses=errors(404))
async def lookup_contact(
    agent: ApiAgent,
    session: DbSession,
    kind: IdentityKind,
    value: Annotated[Text, Query(min_length=1, max_length=320)],
) -> ContactRead:
    """The contact holding an identity; the value is normalised first (E.164, case-folding)."""
    contact = await queries.contact_by_identity(
        session, account=agent.account, kind=kind, value=value
    )
    return await _read(session, contact)


@router.get("/contacts/{contact_id}", response_model=ContactRead, responses=errors(404))
async def get_contact(contact_id: PathId, agent: ApiAgent, session: DbSession) -> ContactRead:
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    return await _read(session, contact)


@router.patch("/contacts/{contact_id}", response_model=ContactRead, responses=errors(404))
async def update_contact(
    contact_id: PathId, body: ContactUpdate, agent: ApiAgent, session: DbSession
) -> ContactRead:
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    if body.attributes:  # checked first: a bad value changes nothing, not even the name
        await actions.set_attributes(
            session,
            contact=contact,
            definitions=await queries.attribute_definitions(session, account_id=agent.account.id),
            values=body.attributes,
            actor_user_id=agent.user.id,
        )
    await actions.update_contact(session, contact=contact, name=body.name, company=body.company)
    await events.commit(session)
    return await _read(session, contact)


@router.delete(
    "/contacts/{contact_id}", status_code=204, response_class=Response, responses=errors(403, 404)
)
async def delete_contact(contact_id: PathId, agent: ApiAgent, session: DbSession) -> Response:
    """Erase the contact with its identities, conversations and messages (supervisors, admins)."""
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    require_supervisor(agent)
    await actions.delete_contact(session, contact=contact, actor=agent.user)
    await events.commit(session)
    return Response(status_code=204)


@router.post(
    "/contacts/{contact_id}/identities",
    response_model=IdentityRead,
    status_code=201,
    responses=errors(404, 409),
)
async def add_identity(
    contact_id: PathId, body: IdentityCreate, agent: ApiAgent, session: DbSession
) -> IdentityRead:
    """Add an address. Verification is `agent`, or `verified` through a trusted token."""
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    identity = await actions.add_identity(
        session,
        account=agent.account,
        contact=contact,
        claim=IdentityClaim(body.kind, body.value, _verification(agent)),
        actor=agent.user,
    )
    await events.commit(session)
    return IdentityRead.model_validate(identity)


@router.delete(
    "/contacts/{contact_id}/identities/{identity_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404),
)
async def remove_identity(
    contact_id: PathId, identity_id: PathId, agent: ApiAgent, session: DbSession
) -> Response:
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    await actions.remove_identity(
        session, contact=contact, identity_id=identity_id, actor=agent.user
    )
    await events.commit(session)
    return Response(status_code=204)


@router.get(
    "/contacts/{contact_id}/conversations",
    response_model=list[ConversationRead],
    responses=errors(404),
)
async def contact_conversations(
    contact_id: PathId,
    agent: ApiAgent,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> list[ConversationRead]:
    """The contact's conversations you may see, most recent first."""
    contact = await queries.get_contact(session, account_id=agent.account.id, contact_id=contact_id)
    found = await queries.conversations_of(session, contact.id, viewer=agent.viewer, limit=limit)
    return [ConversationRead.model_validate(c) for c in found]


@router.post(
    "/contacts/{contact_id}/events",
    response_model=CustomEventRead,
    status_code=201,
    summary="Record a custom event on a contact's timeline",
    responses=errors(404),
)
async def post_contact_event(
    contact_id: PathId, body: CustomEventCreate, agent: ApiAgent, session: DbSession
) -> CustomEventRead:
    """An order placed, a page visited...: it shows on the contact's timeline."""
    event = await actions.record_custom_event(
        session,
        account_id=agent.account.id,
        contact_id=contact_id,
        name=body.name,
        properties=body.properties,
        occurred_at=body.occurred_at,
        actor_user_id=agent.user.id,
    )
    published = await events.commit(session)
    return CustomEventRead(
        contact_id=event.contact_id,
        name=event.name,
        properties=event.properties,
        occurred_at=event.occurred_at,
        seq=next(p.seq for p in published if p.event is event),
    )
