"""One conversation's timeline: its messages with their senders and files, and the events
between them, read as plain rows through statements built once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    String,
    bindparam,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.agents.models import User
from rapport.domain.conversations.models import Attachment, Conversation, Message
from rapport.domain.errors import NotFound
from rapport.domain.events import Event


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message as the timeline shows it; read-only (actions load `Message` itself)."""

    id: int
    conversation_id: int
    inbox_id: int | None
    channel: str | None
    direction: str
    private: bool
    sender_type: str
    sender_user_id: int | None
    content: str
    content_html: str | None
    content_type: str
    payload: dict[str, Any]
    status: str
    error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """A file of a timeline message: enough to link it and to point inline email images at it."""

    id: int
    message_id: int
    filename: str
    content_type: str
    size: int
    content_id: str | None


@dataclass(frozen=True, slots=True)
class EventView:
    """An event of the log as the timeline shows it; read-only."""

    id: int
    seq: int
    type: str
    actor_user_id: int | None
    data: dict[str, Any]
    created_at: datetime


@dataclass
class TimelineMessage:
    message: MessageView
    sender_name: str | None
    attachments: list[AttachmentView] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEvent:
    event: EventView
    actor_name: str | None


TimelineItem = TimelineMessage | TimelineEvent

# Events shown between messages in a conversation's timeline.
TIMELINE_EVENT_TYPES = (
    "conversation.assigned",
    "conversation.status_changed",
    "conversation.channel_switched",
    "conversation.merged",
    "conversation.split",
)

# The timeline is read on every opened conversation and never written through, so it is read
# as plain rows into the views above rather than as ORM objects, by statements built once here:
# a call only binds its values, and SQLAlchemy's compiled cache finds the SQL. Messages come
# with their sender's name and their files in one statement (one row per file).
_messages, _attachments, _events, _users = (
    Message.__table__,
    Attachment.__table__,
    Event.__table__,
    User.__table__,
)


def _columns(table: FromClause, view: type) -> list[ColumnElement[Any]]:
    return [table.c[f.name] for f in fields(view)]


def _with_sender_and_files(page: Select[Any]) -> Select[Any]:
    """The page's messages, newest first, with the sender's name and one row per file."""
    rows = page.subquery("page")
    return (
        select(rows, _users.c.name, *_columns(_attachments, AttachmentView))
        .select_from(
            rows.outerjoin(_users, _users.c.id == rows.c.sender_user_id).outerjoin(
                _attachments, _attachments.c.message_id == rows.c.id
            )
        )
        .order_by(rows.c.id.desc(), _attachments.c.id)
    )


_NEWEST = (
    select(*_columns(_messages, MessageView))
    .where(_messages.c.conversation_id == bindparam("conversation_id"))
    .order_by(_messages.c.id.desc())
    .limit(bindparam("limit"))
)
_LATEST_MESSAGES = _with_sender_and_files(_NEWEST)
_MESSAGES_BEFORE = _with_sender_and_files(_NEWEST.where(_messages.c.id < bindparam("before_id")))
_ONE_MESSAGE = _with_sender_and_files(
    select(*_columns(_messages, MessageView)).where(
        _messages.c.id == bindparam("message_id"),
        _messages.c.conversation_id == bindparam("conversation_id"),
    )
)
_TIMELINE_EVENTS = (
    select(*_columns(_events, EventView), _users.c.name)
    .select_from(_events.outerjoin(_users, _users.c.id == _events.c.actor_user_id))
    # Constants: written into the SQL once, not bound as five parameters on every call.
    .where(_events.c.type.in_([literal_column(f"'{t}'", String) for t in TIMELINE_EVENT_TYPES]))
)
_MESSAGE_WIDTH = len(fields(MessageView))
_MESSAGE_TIME = select(_messages.c.created_at).where(_messages.c.id == bindparam("message_id"))


def _timeline_messages(rows: Sequence[Sequence[Any]]) -> list[TimelineMessage]:
    """Rows of `_with_sender_and_files` folded into one item per message, in their order."""
    items: list[TimelineMessage] = []
    for row in rows:
        if not items or items[-1].message.id != row[0]:
            items.append(TimelineMessage(MessageView(*row[:_MESSAGE_WIDTH]), row[_MESSAGE_WIDTH]))
        if row[_MESSAGE_WIDTH + 1] is not None:
            items[-1].attachments.append(AttachmentView(*row[_MESSAGE_WIDTH + 1 :]))
    return items


def _timeline_event(row: Sequence[Any]) -> TimelineEvent:
    return TimelineEvent(EventView(*row[:-1]), row[-1])


async def conversation_timeline(
    session: AsyncSession,
    *,
    conversation: Conversation,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[TimelineItem], bool]:
    """Messages and the events worth showing between them, oldest first; and whether more exist."""
    params = {"conversation_id": conversation.id, "limit": limit + 1}
    if before_id is None:
        result = await session.execute(_LATEST_MESSAGES, params)
    else:
        result = await session.execute(_MESSAGES_BEFORE, {**params, "before_id": before_id})
    page = _timeline_messages(result.all())
    has_more = len(page) > limit
    messages = list(reversed(page[:limit]))
    if not messages:
        return [], False
    # Pages split the events by time, with no gap: a page shows those from its oldest message
    # (or from the start, on the last page) up to, not including, the message the newer page
    # starts with, so an event between two pages shows on the older one.
    since = messages[0].message.created_at if has_more else None
    until = None
    if before_id is not None:
        until = await session.scalar(_MESSAGE_TIME, {"message_id": before_id})
    timeline_events = await _timeline_events(session, conversation.id, since, until)
    items: list[TimelineItem] = [*messages, *timeline_events]
    items.sort(key=_timeline_key)
    return items, has_more


def _timeline_key(item: TimelineItem) -> tuple[datetime, int]:
    if isinstance(item, TimelineMessage):
        return (item.message.created_at, 1)
    return (item.event.created_at, 0)


async def _timeline_events(
    session: AsyncSession,
    conversation_id: int,
    since: datetime | None,
    until: datetime | None,
) -> list[TimelineEvent]:
    query = _timeline_events_query(since=since is not None, until=until is not None)
    rows = await session.execute(
        query, {"conversation_id": conversation_id, "since": since, "until": until}
    )
    return [_timeline_event(row) for row in rows]


@cache
def _timeline_events_query(*, since: bool, until: bool) -> Select[Any]:
    """The events of a conversation between two optional bounds, built once per shape."""
    query = _TIMELINE_EVENTS.where(_events.c.conversation_id == bindparam("conversation_id"))
    if since:
        query = query.where(_events.c.created_at >= bindparam("since"))
    if until:
        query = query.where(_events.c.created_at < bindparam("until"))
    return query.order_by(_events.c.id)


async def timeline_event(
    session: AsyncSession, *, conversation: Conversation, seq: int
) -> TimelineEvent:
    """One event of the conversation's timeline by its account number (the live path)."""
    row = (
        await session.execute(
            _TIMELINE_EVENTS.where(
                _events.c.account_id == conversation.account_id,
                _events.c.seq == seq,
                _events.c.conversation_id == conversation.id,
            )
        )
    ).first()
    if row is None:
        raise NotFound("event")
    return _timeline_event(row)


async def message_in_conversation(
    session: AsyncSession, *, conversation: Conversation, message_id: int
) -> TimelineMessage:
    """One message of the conversation with its sender and files (the live path)."""
    result = await session.execute(
        _ONE_MESSAGE, {"message_id": message_id, "conversation_id": conversation.id}
    )
    items = _timeline_messages(result.all())
    if not items:
        raise NotFound("message")
    return items[0]
