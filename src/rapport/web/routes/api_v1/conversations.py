"""JSON API v1: conversations and their messages, assignment and status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from rapport.channels.registry import adapter_for
from rapport.domain import events
from rapport.domain.contacts.queries import get_contact
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Message, Status
from rapport.domain.conversations.queries import (
    ConversationFilter,
    Scope,
    get_visible_conversation,
    list_conversations,
)
from rapport.domain.inboxes.queries import get_inbox
from rapport.web.deps import ApiAgent, DbSession
from rapport.web.routes.api_v1._common import CURSOR_PATTERN, PathId, errors
from rapport.web.schemas import (
    MAX_ID,
    AssignmentUpdate,
    ConversationCreate,
    ConversationPageRead,
    ConversationRead,
    MessageCreate,
    MessageRead,
    StatusUpdateIn,
    UserRead,
)

router = APIRouter(tags=["conversations"])


@router.get("/me", response_model=UserRead, responses=errors())
async def me(agent: ApiAgent) -> UserRead:
    return UserRead.model_validate(agent.user)


QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/conversations", response_model=ConversationPageRead, responses=errors())
async def conversations(
    agent: ApiAgent,
    session: DbSession,
    scope: Scope = Scope.all,
    status: Status | None = None,
    inbox_id: QueryId = None,
    team_id: QueryId = None,
    contact_id: QueryId = None,
    channel: Annotated[str | None, Query(max_length=16, description="e.g. sms, email")] = None,
    cursor: Annotated[str | None, Query(max_length=64, pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> ConversationPageRead:
    """Conversations you may see, most recent activity first, with the filters combined."""
    flt = ConversationFilter(
        scope=scope,
        status=status,
        inbox_id=inbox_id,
        team_id=team_id,
        contact_id=contact_id,
        channel=channel,
    )
    page = await list_conversations(
        session,
        viewer=agent.viewer,
        flt=flt,
        cursor=cursor,
        limit=limit,
    )
    return ConversationPageRead(
        items=[ConversationRead.model_validate(i.conversation) for i in page.items],
        next_cursor=page.next_cursor,
        counts={str(k): v for k, v in page.counts.items()},
    )


@router.post(
    "/conversations", response_model=ConversationRead, status_code=201, responses=errors(404, 409)
)
async def create_conversation(
    body: ConversationCreate, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    """Start an outbound conversation with a contact; its first message goes out on the inbox
    (the channel's rules apply: a contact without an address there is a 409)."""
    contact = await get_contact(session, account_id=agent.account.id, contact_id=body.contact_id)
    inbox = await get_inbox(session, account_id=agent.account.id, inbox_id=body.inbox_id)
    conversation = await actions.start_conversation(
        session, account=agent.account, inbox=inbox, contact=contact, subject=body.subject
    )
    await actions.send_reply(
        session,
        conversation=conversation,
        author=agent.user,
        reply=actions.Reply(
            content=body.content,
            inbox=inbox,
            policy=adapter_for(inbox.channel).policy,
            client_id=body.client_id,
        ),
    )
    await events.commit(session)
    return ConversationRead.model_validate(conversation)


@router.get(
    "/conversations/{conversation_id}", response_model=ConversationRead, responses=errors(404)
)
async def conversation(
    conversation_id: PathId, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    return ConversationRead.model_validate(found)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=list[MessageRead],
    responses=errors(404),
)
async def messages(
    conversation_id: PathId,
    agent: ApiAgent,
    session: DbSession,
    before: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[MessageRead]:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    query = select(Message).where(Message.conversation_id == found.id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = await session.scalars(query.order_by(Message.id.desc()).limit(limit))
    return [MessageRead.model_validate(m) for m in reversed(list(rows))]


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageRead,
    status_code=201,
    responses=errors(404, 409),
)
async def post_message(
    conversation_id: PathId, body: MessageCreate, agent: ApiAgent, session: DbSession
) -> MessageRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    inbox = policy = None
    if not body.private:
        inbox_id = body.inbox_id or found.inbox_id
        if inbox_id is not None:
            inbox = await get_inbox(session, account_id=agent.account.id, inbox_id=inbox_id)
            policy = adapter_for(inbox.channel).policy
    message = await actions.send_reply(
        session,
        conversation=found,
        author=agent.user,
        reply=actions.Reply(
            content=body.content,
            private=body.private,
            inbox=inbox,
            policy=policy,
            client_id=body.client_id,
        ),
    )
    await events.commit(session)
    return MessageRead.model_validate(message)


@router.post(
    "/conversations/{conversation_id}/assignment",
    response_model=ConversationRead,
    responses=errors(404),
)
async def assign(
    conversation_id: PathId, body: AssignmentUpdate, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    await actions.assign_conversation(
        session,
        conversation=found,
        actor=agent.user,
        assignee_id=body.assignee_id,
        team_id=body.team_id,
    )
    await events.commit(session)
    return ConversationRead.model_validate(found)


@router.post(
    "/conversations/{conversation_id}/status",
    response_model=ConversationRead,
    responses=errors(404),
)
async def set_status(
    conversation_id: PathId, body: StatusUpdateIn, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    await actions.change_status(
        session, conversation=found, actor=agent.user, status=Status(body.status)
    )
    await events.commit(session)
    return ConversationRead.model_validate(found)
