"""JSON API v1: conversations and their messages, assignment and status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from rapport.channels.registry import adapter_for
from rapport.domain import events
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
from rapport.web.schemas import (
    AssignmentUpdate,
    ConversationPageRead,
    ConversationRead,
    MessageCreate,
    MessageRead,
    StatusUpdateIn,
    UserRead,
)

router = APIRouter(tags=["conversations"])


@router.get("/me", response_model=UserRead)
async def me(agent: ApiAgent) -> UserRead:
    return UserRead.model_validate(agent.user)


@router.get("/conversations", response_model=ConversationPageRead)
async def conversations(
    agent: ApiAgent,
    session: DbSession,
    scope: Scope = Scope.all,
    status: Status | None = None,
    inbox_id: int | None = None,
    team_id: int | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> ConversationPageRead:
    page = await list_conversations(
        session,
        viewer=agent.viewer,
        flt=ConversationFilter(scope=scope, status=status, inbox_id=inbox_id, team_id=team_id),
        cursor=cursor,
        limit=limit,
    )
    return ConversationPageRead(
        items=[ConversationRead.model_validate(i.conversation) for i in page.items],
        next_cursor=page.next_cursor,
        counts={str(k): v for k, v in page.counts.items()},
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationRead)
async def conversation(
    conversation_id: int, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    return ConversationRead.model_validate(found)


@router.get("/conversations/{conversation_id}/messages", response_model=list[MessageRead])
async def messages(
    conversation_id: int,
    agent: ApiAgent,
    session: DbSession,
    before: int | None = None,
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
    "/conversations/{conversation_id}/messages", response_model=MessageRead, status_code=201
)
async def post_message(
    conversation_id: int, body: MessageCreate, agent: ApiAgent, session: DbSession
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


@router.post("/conversations/{conversation_id}/assignment", response_model=ConversationRead)
async def assign(
    conversation_id: int, body: AssignmentUpdate, agent: ApiAgent, session: DbSession
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


@router.post("/conversations/{conversation_id}/status", response_model=ConversationRead)
async def set_status(
    conversation_id: int, body: StatusUpdateIn, agent: ApiAgent, session: DbSession
) -> ConversationRead:
    found = await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=conversation_id
    )
    await actions.change_status(
        session, conversation=found, actor=agent.user, status=Status(body.status)
    )
    await events.commit(session)
    return ConversationRead.model_validate(found)
