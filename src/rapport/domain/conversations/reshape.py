"""Reshaping conversations: merging two of one contact into one, splitting messages off into a
new one. Actions like those in `actions.py`: they change state and record events; the caller
commits.

A merge moves the source's messages and timeline events into the target, closes the source and
points it at the target (`merged_into_id`), so a token or a link naming the source still finds
where the story went. A split moves selected messages into a conversation of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.conversations.actions import change_status, conversation_scope
from rapport.domain.conversations.models import (
    OPEN_STATUSES,
    Conversation,
    Direction,
    Message,
    Status,
)
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.domain.visitors.models import VisitorSession
from rapport.lib.clock import utcnow


async def merge_conversations(
    session: AsyncSession, *, source: Conversation, target: Conversation, actor: User
) -> Conversation:
    """Move every message and event of `source` into `target`; close `source`, pointing there.

    Both must belong to the same contact. Returns the target.
    """
    await _lock(session, source, target)
    _check_mergeable(source, target)
    moved = await _move_messages(session, source_id=source.id, target_id=target.id)
    await session.execute(
        update(Event)
        .where(Event.conversation_id == source.id)
        .values(conversation_id=target.id)
        .execution_options(synchronize_session=False)
    )
    # A website visitor whose session named the source keeps chatting in the target.
    await session.execute(
        update(VisitorSession)
        .where(VisitorSession.conversation_id == source.id)
        .values(conversation_id=target.id)
        .execution_options(synchronize_session=False)
    )
    _absorb(target, source)
    if target.status not in OPEN_STATUSES and source.status in OPEN_STATUSES:
        await change_status(session, conversation=target, actor=actor, status=Status.open)
    source.merged_into_id = target.id
    if source.status != Status.resolved:
        await change_status(session, conversation=source, actor=actor, status=Status.resolved)
    for conversation in (target, source):
        events.record(
            session,
            account_id=conversation.account_id,
            actor_user_id=actor.id,
            event=events.ConversationMerged(
                **conversation_scope(conversation),
                source_id=source.id,
                target_id=target.id,
                moved_messages=moved,
            ),
        )
    return target


async def split_conversation(
    session: AsyncSession,
    *,
    source: Conversation,
    message_ids: Sequence[int],
    actor: User,
) -> Conversation:
    """Move the chosen messages of `source` into a new conversation of the same contact."""
    await _lock(session, source)
    if source.merged_into_id is not None:
        raise Conflict("this conversation was merged into another one")
    wanted = sorted(set(message_ids))
    if not wanted:
        raise InvalidInput("choose the messages to move", field="message_ids")
    chosen = list(
        await session.scalars(
            select(Message)
            .where(Message.conversation_id == source.id, Message.id.in_(wanted))
            .order_by(Message.id)
        )
    )
    if len(chosen) != len(wanted):
        raise NotFound("message")
    total = await session.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id == source.id)
    )
    if len(chosen) >= int(total or 0):
        raise InvalidInput("leave at least one message in this conversation", field="message_ids")
    target = await _new_conversation(session, source=source, moved=chosen)
    for message in chosen:
        message.conversation_id = target.id
    await _refresh_routes(session, source)
    source.last_activity_at = utcnow()
    for conversation in (source, target):
        events.record(
            session,
            account_id=conversation.account_id,
            actor_user_id=actor.id,
            event=events.ConversationSplit(
                **conversation_scope(conversation),
                source_id=source.id,
                target_id=target.id,
                message_ids=wanted,
            ),
        )
    return target


async def merge_candidates(
    session: AsyncSession, *, conversation: Conversation, limit: int = 20
) -> list[Conversation]:
    """Other conversations of the same contact this one could be merged into, newest first."""
    rows = await session.scalars(
        select(Conversation)
        .where(
            Conversation.account_id == conversation.account_id,
            Conversation.contact_id == conversation.contact_id,
            Conversation.id != conversation.id,
            Conversation.merged_into_id.is_(None),
        )
        .order_by(Conversation.last_activity_at.desc())
        .limit(limit)
    )
    return list(rows)


# --- helpers ------------------------------------------------------------------------------------


async def _lock(session: AsyncSession, *conversations: Conversation) -> None:
    """Row locks in id order (PostgreSQL), so two merges of the same pair cannot deadlock."""
    ids = sorted(c.id for c in conversations)
    await session.execute(
        select(Conversation.id)
        .where(Conversation.id.in_(ids))
        .order_by(Conversation.id)
        .with_for_update()
    )
    for conversation in conversations:
        await session.refresh(conversation)


def _check_mergeable(source: Conversation, target: Conversation) -> None:
    if source.id == target.id:
        raise InvalidInput("a conversation cannot be merged into itself", field="target_id")
    if source.account_id != target.account_id:
        raise NotFound("conversation")
    if source.contact_id != target.contact_id:
        raise InvalidInput(
            "only conversations of the same contact can be merged", field="target_id"
        )
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise Conflict("this conversation was merged into another one")


async def _move_messages(session: AsyncSession, *, source_id: int, target_id: int) -> int:
    # A client id is unique per conversation: the target's copy wins, the moved one forgets it.
    taken = select(Message.client_id).where(
        Message.conversation_id == target_id, Message.client_id.is_not(None)
    )
    await session.execute(
        update(Message)
        .where(Message.conversation_id == source_id, Message.client_id.in_(taken))
        .values(client_id=None)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        update(Message)
        .where(Message.conversation_id == source_id)
        .values(conversation_id=target_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _absorb(target: Conversation, source: Conversation) -> None:
    """The target's timestamps and reply route now cover the source's messages too."""
    now = utcnow()
    target.last_activity_at = now
    if source.last_incoming_at and (
        target.last_incoming_at is None or source.last_incoming_at > target.last_incoming_at
    ):
        target.last_incoming_at = source.last_incoming_at
        target.inbox_id = source.inbox_id
        target.channel = source.channel
    if source.first_reply_at and (
        target.first_reply_at is None or source.first_reply_at < target.first_reply_at
    ):
        target.first_reply_at = source.first_reply_at
    if not target.subject and source.subject:
        target.subject = source.subject


async def _new_conversation(
    session: AsyncSession, *, source: Conversation, moved: list[Message]
) -> Conversation:
    incoming = [m for m in moved if m.direction == Direction.incoming and m.inbox_id]
    route = incoming[-1] if incoming else next((m for m in reversed(moved) if m.inbox_id), None)
    conversation = Conversation(
        account_id=source.account_id,
        contact_id=source.contact_id,
        inbox_id=route.inbox_id if route else source.inbox_id,
        channel=route.channel if route else source.channel,
        status=Status.open,
        assignee_id=source.assignee_id,
        team_id=source.team_id,
        subject=source.subject,
        created_at=moved[0].created_at,
        last_activity_at=utcnow(),
        last_incoming_at=incoming[-1].created_at if incoming else None,
    )
    session.add(conversation)
    await session.flush()
    events.record(
        session,
        account_id=conversation.account_id,
        event=events.ConversationCreated(
            **conversation_scope(conversation), channel=conversation.channel
        ),
    )
    return conversation


async def _refresh_routes(session: AsyncSession, conversation: Conversation) -> None:
    """After messages left: the reply route is the channel of the latest incoming that stayed."""
    latest = await session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.incoming,
            Message.inbox_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    conversation.last_incoming_at = latest.created_at if latest else None
    if latest is not None:
        conversation.inbox_id = latest.inbox_id
        conversation.channel = latest.channel
