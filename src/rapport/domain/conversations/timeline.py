"""One conversation's timeline: its messages with their senders and files, and the events
between them, read as plain rows through statements built once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    FromClause,
    Integer,
    Select,
    String,
    bindparam,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.prepared import Prepared
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
# a call only binds its values, and SQLAlchemy's compiled cache finds the SQL. A page is one
# statement: its messages with their sender's name and their files (one row per file), and the
# events shown between them (`_page_statement`).
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
_ONE_MESSAGE = _with_sender_and_files(
    select(*_columns(_messages, MessageView)).where(
        _messages.c.id == bindparam("message_id"),
        _messages.c.conversation_id == bindparam("conversation_id"),
    )
)
# Constants: written into the SQL once, not bound as five parameters on every call.
_IS_TIMELINE_TYPE = _events.c.type.in_(
    [literal_column(f"'{t}'", String) for t in TIMELINE_EVENT_TYPES]
)
_TIMELINE_EVENTS = (
    select(*_columns(_events, EventView), _users.c.name)
    .select_from(_events.outerjoin(_users, _users.c.id == _events.c.actor_user_id))
    .where(_IS_TIMELINE_TYPE)
)
_MESSAGE_WIDTH = len(fields(MessageView))
_FILE_WIDTH = len(fields(AttachmentView))


def _page_statement(*, before: bool) -> Executable:
    """A page of the timeline in one statement: its messages, then the events shown with them.

    A page is `:limit` messages (the page size plus one, which only says whether more exist)
    newest first, below `:before_id` when paging back. Its events are those from its oldest
    shown message up to, not including, the message the newer page starts with (`:before_id`),
    so an event between two pages shows on the older one and none is lost; the last page shows
    every event from the start. Both bounds come from the page itself, inside the statement, so
    a page is one round trip rather than three (messages, the newer page's start, events).

    Rows: `kind` 0 for a message (with its sender's name and one of its files, if any), 1 for
    an event (with its actor's name); each kind leaves the other's columns NULL.
    """
    newest = _NEWEST.where(_messages.c.id < bindparam("before_id")) if before else _NEWEST
    page = newest.cte("page")
    # From the oldest shown message if the page is full (more exist), else from the start.
    not_full = select(func.count()).select_from(page).scalar_subquery() != bindparam("limit")
    oldest_shown = select(page.c.created_at).order_by(page.c.id).offset(1).limit(1)
    in_bounds = [or_(not_full, _events.c.created_at >= oldest_shown.scalar_subquery())]
    if before:
        newer = select(_messages.c.created_at).where(_messages.c.id == bindparam("before_id"))
        newer_start = newer.scalar_subquery()
        in_bounds.append(or_(newer_start.is_(None), _events.c.created_at < newer_start))
    files = _columns(_attachments, AttachmentView)
    event_columns = _columns(_events, EventView)
    messages = select(
        literal_column("0", Integer).label("kind"),
        page.c.id.label("message_id"),
        *list(page.c)[1:],
        _users.c.name.label("sender_name"),
        *[file.label(f"file_{file.name}") for file in files],
        # Typed NULLs: the first SELECT of a UNION gives the result its types.
        *[type_coerce(null(), c.type).label(f"event_{c.name}") for c in event_columns],
        type_coerce(null(), String).label("actor_name"),
    ).select_from(
        page.outerjoin(_users, _users.c.id == page.c.sender_user_id).outerjoin(
            _attachments, _attachments.c.message_id == page.c.id
        )
    )
    events = (
        select(
            literal_column("1", Integer),
            *[null()] * (_MESSAGE_WIDTH + 1 + _FILE_WIDTH),
            *event_columns,
            _users.c.name,
        )
        .select_from(_events.outerjoin(_users, _users.c.id == _events.c.actor_user_id))
        .where(_events.c.conversation_id == bindparam("conversation_id"), _IS_TIMELINE_TYPE)
        .where(*in_bounds)
    )
    return union_all(messages, events).order_by(
        literal_column("kind"),
        literal_column("message_id").desc(),
        literal_column("file_id"),
        literal_column("event_id"),
    )


# Every conversation view reads one of these: straight to the driver (ADR 11).
_LATEST_PAGE = Prepared(_page_statement(before=False))
_PAGE_BEFORE = Prepared(_page_statement(before=True))
# Where each part of a page's row starts.
_MESSAGE = 1
_SENDER = _MESSAGE + _MESSAGE_WIDTH
_FILE = _SENDER + 1
_EVENT = _FILE + _FILE_WIDTH
_ACTOR = _EVENT + len(fields(EventView))


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
        rows = await _LATEST_PAGE.all(session, params)
    else:
        rows = await _PAGE_BEFORE.all(session, {**params, "before_id": before_id})
    page: list[TimelineMessage] = []  # newest first, one more than `limit` if more exist
    timeline_events: list[TimelineEvent] = []
    for row in rows:
        if row[0]:
            timeline_events.append(TimelineEvent(EventView(*row[_EVENT:_ACTOR]), row[_ACTOR]))
            continue
        if not page or page[-1].message.id != row[_MESSAGE]:
            page.append(TimelineMessage(MessageView(*row[_MESSAGE:_SENDER]), row[_SENDER]))
        if row[_FILE] is not None:
            page[-1].attachments.append(AttachmentView(*row[_FILE:_EVENT]))
    has_more = len(page) > limit
    messages = list(reversed(page[:limit]))
    if not messages:
        return [], False
    items: list[TimelineItem] = [*messages, *timeline_events]
    items.sort(key=_timeline_key)
    return items, has_more


def _timeline_key(item: TimelineItem) -> tuple[datetime, int]:
    if isinstance(item, TimelineMessage):
        return (item.message.created_at, 1)
    return (item.event.created_at, 0)


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
