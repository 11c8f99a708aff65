"""The event log: every event as a typed class with its recipient rule, numbered per account.

Actions call `record(session, event)`; `commit(session)` numbers the pending events, writes them
in the same transaction as the state change, commits, and only then hands them to the
after-commit hooks (realtime publish, worker wake-up). Numbers are per account, increasing and
without gaps in commit order, because they are taken from the account row under its lock at the
very end of the transaction. A browser that saw event N can therefore ask for "everything after
N" and never miss one that committed late.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.helpers import insert_rows, row_binds, row_params
from rapport.db.prepared import Prepared
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow

PENDING_KEY = "rapport.pending_events"
AFTER_COMMIT_KEY = "rapport.after_commit"


class EventCounter(Base):
    """The last event number handed out per account (its own row, so nothing else locks it)."""

    __tablename__ = "event_counters"

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))


class Event(Base):
    """One row of the append-only event log."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    type: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="SET NULL")
    )
    actor_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("uq_events_account_seq", "account_id", "seq", unique=True),
        Index("ix_events_conversation", "conversation_id", "id"),
        Index("ix_events_contact", "contact_id", "id"),
    )


class Audience(StrEnum):
    """Who an event is pushed to."""

    conversation = "conversation"  # agents allowed to see the conversation (one visibility rule)
    account = "account"  # every agent of the account
    admins = "admins"  # admins and supervisors


class DomainEvent(BaseModel):
    """Base of every event. Subclasses declare `type` and `audience`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    audience: ClassVar[Audience]

    def reaches_visitor(self) -> bool:
        """Whether the customer's own live session (the website widget) receives it."""
        return False

    @property
    def conversation_ref(self) -> int | None:
        return None

    @property
    def contact_ref(self) -> int | None:
        return None


class ConversationEvent(DomainEvent):
    """An event about a conversation, carrying what the visibility rule needs for fan-out."""

    audience: ClassVar[Audience] = Audience.conversation

    conversation_id: int
    contact_id: int
    assignee_id: int | None
    team_id: int | None
    inbox_id: int | None

    @property
    def conversation_ref(self) -> int | None:
        return self.conversation_id

    @property
    def contact_ref(self) -> int | None:
        return self.contact_id


class MessageCreated(ConversationEvent):
    type: ClassVar[str] = "message.created"

    message_id: int
    direction: str
    private: bool
    channel: str | None
    sender_type: str

    def reaches_visitor(self) -> bool:
        return not self.private


class MessageStatusChanged(ConversationEvent):
    type: ClassVar[str] = "message.status_changed"

    message_id: int
    status: str
    error: str | None = None

    def reaches_visitor(self) -> bool:
        return True


class ConversationCreated(ConversationEvent):
    type: ClassVar[str] = "conversation.created"

    channel: str | None


class ConversationAssigned(ConversationEvent):
    type: ClassVar[str] = "conversation.assigned"

    previous_assignee_id: int | None
    previous_team_id: int | None


class ConversationStatusChanged(ConversationEvent):
    type: ClassVar[str] = "conversation.status_changed"

    status: str
    previous_status: str


class ChannelSwitched(ConversationEvent):
    type: ClassVar[str] = "conversation.channel_switched"

    from_channel: str | None
    to_channel: str
    from_inbox_id: int | None


class ConversationMerged(ConversationEvent):
    """`source_id`'s messages and events moved into `target_id`; the source is closed.

    Recorded twice: on the target (what arrived) and on the source (where it went)."""

    type: ClassVar[str] = "conversation.merged"

    source_id: int
    target_id: int
    moved_messages: int


class ConversationSplit(ConversationEvent):
    """Selected messages of `source_id` moved into the new conversation `target_id`.

    Recorded on both conversations, like a merge."""

    type: ClassVar[str] = "conversation.split"

    source_id: int
    target_id: int
    message_ids: list[int]


class ContactEvent(DomainEvent):
    """An event about one contact, pushed to every agent of the account."""

    audience: ClassVar[Audience] = Audience.account

    contact_id: int

    @property
    def contact_ref(self) -> int | None:
        return self.contact_id


class ContactCreated(ContactEvent):
    type: ClassVar[str] = "contact.created"


class ContactUpdated(ContactEvent):
    type: ClassVar[str] = "contact.updated"

    fields: list[str]


class ConsentChanged(ContactEvent):
    """A customer opted out of (or back in to) a channel that requires consent (SMS STOP)."""

    type: ClassVar[str] = "contact.consent_changed"

    identity_id: int
    channel: str
    opted_out: bool
    keyword: str


class ContactsMerged(ContactEvent):
    """An agent merged `merged_id` into `contact_id` (the survivor); `merge_id` can undo it."""

    type: ClassVar[str] = "contact.merged"

    merged_id: int
    merge_id: int


class ContactsUnmerged(ContactEvent):
    """A merge was undone: `merged_id` is its own contact again, as it was."""

    type: ClassVar[str] = "contact.unmerged"

    merged_id: int
    merge_id: int


class MergeSuggested(ContactEvent):
    """Two contacts may be one customer (a typed claim of a proven identity, a similar name)."""

    type: ClassVar[str] = "contact.merge_suggested"

    other_contact_id: int
    suggestion_id: int
    score: int


class MergeDismissed(ContactEvent):
    """An agent said a suggested pair are two customers; it is not suggested again."""

    type: ClassVar[str] = "contact.merge_dismissed"

    other_contact_id: int
    suggestion_id: int


class ContactCustomEvent(ContactEvent):
    """Something the customer did elsewhere, posted through the API (an order, a page visit)."""

    type: ClassVar[str] = "contact.custom_event"

    name: str
    properties: dict[str, Any]
    occurred_at: datetime


class Change(StrEnum):
    created = "created"
    updated = "updated"
    deleted = "deleted"


class AttributeDefinitionChanged(DomainEvent):
    """An admin added, renamed or removed a custom contact attribute."""

    type: ClassVar[str] = "contact_attribute.changed"
    audience: ClassVar[Audience] = Audience.admins

    definition_id: int
    key: str
    change: Change


class LabelChanged(DomainEvent):
    """A label was created, renamed (or recoloured) or deleted."""

    type: ClassVar[str] = "label.changed"
    audience: ClassVar[Audience] = Audience.account

    label_id: int
    name: str
    change: Change


class SegmentChanged(DomainEvent):
    """A segment (a saved contact filter) was created, edited or deleted."""

    type: ClassVar[str] = "segment.changed"
    audience: ClassVar[Audience] = Audience.account

    segment_id: int
    name: str
    change: Change


class ContactDeleted(DomainEvent):
    """A contact was erased with its identities and conversations (a right-to-erasure request).

    Its id travels in the data only: the row is gone, so the log cannot point at it.
    """

    type: ClassVar[str] = "contact.deleted"
    audience: ClassVar[Audience] = Audience.account

    contact_id: int


class IdentityAdded(ContactEvent):
    type: ClassVar[str] = "contact.identity_added"

    identity_id: int
    kind: str
    verification: str


class IdentityRemoved(ContactEvent):
    type: ClassVar[str] = "contact.identity_removed"

    identity_id: int
    kind: str


class WebhookSubscriptionChanged(DomainEvent):
    """An admin created, changed, re-keyed or deleted an outbound webhook subscription."""

    type: ClassVar[str] = "webhook.subscription_changed"
    audience: ClassVar[Audience] = Audience.admins

    subscription_id: int
    change: str


class InboundFailed(DomainEvent):
    """A stored provider payload could not be processed; it is kept for a retry after a fix."""

    type: ClassVar[str] = "inbound.failed"
    audience: ClassVar[Audience] = Audience.admins

    inbound_event_id: int
    inbox_id: int
    error: str


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.type: cls
    for cls in (
        MessageCreated,
        MessageStatusChanged,
        ConversationCreated,
        ConversationAssigned,
        ConversationStatusChanged,
        ChannelSwitched,
        ConversationMerged,
        ConversationSplit,
        ContactCreated,
        ContactUpdated,
        ConsentChanged,
        ContactCustomEvent,
        AttributeDefinitionChanged,
        LabelChanged,
        SegmentChanged,
        ContactsMerged,
        ContactsUnmerged,
        MergeSuggested,
        MergeDismissed,
        ContactDeleted,
        IdentityAdded,
        IdentityRemoved,
        WebhookSubscriptionChanged,
        InboundFailed,
    )
}


@dataclass(frozen=True)
class PublishedEvent:
    """An event as it travels to browsers: committed, numbered, and typed again."""

    account_id: int
    seq: int
    event: DomainEvent
    actor_user_id: int | None
    created_at: datetime

    @property
    def type(self) -> str:
        return self.event.type

    def to_wire(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "seq": self.seq,
            "type": self.event.type,
            "actor_user_id": self.actor_user_id,
            "created_at": self.created_at.isoformat(),
            "data": self.event.model_dump(mode="json"),
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> PublishedEvent:
        event_cls = EVENT_TYPES[wire["type"]]
        return cls(
            account_id=int(wire["account_id"]),
            seq=int(wire["seq"]),
            event=event_cls.model_validate(wire["data"]),
            actor_user_id=wire.get("actor_user_id"),
            created_at=datetime.fromisoformat(wire["created_at"]),
        )

    @classmethod
    def from_row(cls, row: Event) -> PublishedEvent:
        return cls(
            account_id=row.account_id,
            seq=row.seq,
            event=EVENT_TYPES[row.type].model_validate(row.data),
            actor_user_id=row.actor_user_id,
            created_at=row.created_at,
        )


AfterCommitHook = Callable[[Sequence[PublishedEvent], bool], Awaitable[None]]
# Runs inside the transaction, after the events are numbered and before the commit (webhook
# fan-out writes its deliveries and outbox jobs here, so they commit with the events).
BeforeCommitHook = Callable[[AsyncSession, Sequence[PublishedEvent]], Awaitable[None]]
BEFORE_COMMIT_KEY = "rapport.before_commit"


@dataclass
class _Pending:
    account_id: int
    event: DomainEvent
    actor_user_id: int | None
    created_at: datetime = field(default_factory=utcnow)


def record(
    session: AsyncSession,
    *,
    account_id: int,
    event: DomainEvent,
    actor_user_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Append an event to the current transaction; it is numbered and written at commit.

    `at` dates the event like the change it explains (a channel switch takes its message's
    time, so the timeline shows it just before that message)."""
    pending = _Pending(account_id, event, actor_user_id, at or utcnow())
    session.info.setdefault(PENDING_KEY, []).append(pending)


def add_after_commit_hook(session: AsyncSession, hook: AfterCommitHook) -> None:
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(hook)


def add_before_commit_hook(session: AsyncSession, hook: BeforeCommitHook) -> None:
    session.info.setdefault(BEFORE_COMMIT_KEY, []).append(hook)


async def commit(session: AsyncSession) -> list[PublishedEvent]:
    """Number and write pending events, commit, then run after-commit hooks (publish, wake)."""
    pending: list[_Pending] = session.info.pop(PENDING_KEY, [])
    published = await _write_events(session, pending) if pending else []
    if published:
        for before in session.info.get(BEFORE_COMMIT_KEY, []):
            await before(session, published)
    outbox_written = bool(session.info.pop("outbox_written", False))
    await session.commit()
    for hook in session.info.get(AFTER_COMMIT_KEY, []):
        await hook(published, outbox_written)
    return published


async def rollback(session: AsyncSession) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop("outbox_written", None)
    await session.rollback()


async def _write_events(session: AsyncSession, pending: list[_Pending]) -> list[PublishedEvent]:
    by_account: dict[int, list[_Pending]] = defaultdict(list)
    for item in pending:
        by_account[item.account_id].append(item)
    # The rows the events refer to first (a new contact, conversation or message). The log is
    # appended to, never read back through this session: no ORM objects, no ids returned.
    await session.flush()
    postgres = session.get_bind().dialect.name == "postgresql"
    published: list[PublishedEvent] = []
    numbered: list[dict[str, Any]] = []
    # Lock account rows in id order so two transactions touching two accounts cannot deadlock.
    for account_id in sorted(by_account):
        items = by_account[account_id]
        rows = [_row(account_id, item) for item in items]
        if postgres and len(rows) <= _NUMBERED_AT_ONCE:
            # The counter's upsert and the rows in one statement: a round trip fewer.
            first = await _number_and_insert(session, account_id, rows) - len(rows) + 1
        else:
            first = await _take_numbers(session, account_id, len(rows)) - len(rows) + 1
            numbered += [{**row, "seq": first + offset} for offset, row in enumerate(rows)]
        published += [
            PublishedEvent(account_id, first + offset, i.event, i.actor_user_id, i.created_at)
            for offset, i in enumerate(items)
        ]
    await insert_rows(session, _EVENTS, numbered)
    return published


def _row(account_id: int, item: _Pending) -> dict[str, Any]:
    """An event's row, numbered later."""
    return {
        "account_id": account_id,
        "type": item.event.type,
        "conversation_id": item.event.conversation_ref,
        "contact_id": item.event.contact_ref,
        "actor_user_id": item.actor_user_id,
        "data": item.event.model_dump(mode="json"),
        "created_at": item.created_at,
    }


_EVENTS = cast(Table, Event.__table__)
_COUNTERS = cast(Table, EventCounter.__table__)


async def _take_numbers(session: AsyncSession, account_id: int, count: int) -> int:
    """Reserve `count` numbers; the upsert holds the counter row's lock until commit."""
    statement = _take_numbers_statement(session.get_bind().dialect.name == "postgresql")
    return int(await statement.scalar(session, {"account_id": account_id, "count": count}))


_TAKE_NUMBERS: dict[bool, Prepared] = {}


def _take_numbers_statement(postgres: bool) -> Prepared:
    """The counter's upsert, built once per dialect (every commit with events runs it; its
    values are bound parameters, so SQLAlchemy reuses its compiled form)."""
    prepared = _TAKE_NUMBERS.get(postgres)
    if prepared is None:
        prepared = _TAKE_NUMBERS[postgres] = Prepared(
            _counter_upsert(postgresql.insert if postgres else sqlite.insert)
        )
    return prepared


def _counter_upsert(builder: Any) -> Any:
    count = bindparam("count", type_=Integer())
    return (
        builder(_COUNTERS)
        .values(account_id=bindparam("account_id"), last_seq=count)
        .on_conflict_do_update(
            index_elements=[_COUNTERS.c.account_id], set_={"last_seq": _COUNTERS.c.last_seq + count}
        )
        .returning(_COUNTERS.c.last_seq)
    )


# Up to this many events of one account are numbered and written in one statement.
_NUMBERED_AT_ONCE = 8
_NUMBER_AND_INSERT: dict[int, tuple[Prepared, tuple[str, ...]]] = {}


async def _number_and_insert(
    session: AsyncSession, account_id: int, rows: list[dict[str, Any]]
) -> int:
    """PostgreSQL: reserve the numbers and write the rows in one statement (the upsert as a
    data-modifying CTE, each row's number computed from its result); the last number."""
    count = len(rows)
    if count not in _NUMBER_AND_INSERT:
        taken = _counter_upsert(postgresql.insert).cte("taken")
        last = select(taken.c.last_seq).scalar_subquery()
        columns = tuple(c.key for c in _EVENTS.c if c.key not in ("id", "seq", "account_id"))
        account = bindparam("account_id", type_=_EVENTS.c.account_id.type)
        values: list[dict[str, Any]] = [
            {**binds, "account_id": account, "seq": last - literal(count - 1 - n, Integer())}
            for n, binds in enumerate(row_binds(_EVENTS, columns, count))
        ]
        built = insert(_EVENTS).values(values).returning(_EVENTS.c.seq)
        _NUMBER_AND_INSERT[count] = (Prepared(built), columns)
    statement, columns = _NUMBER_AND_INSERT[count]
    params = {"account_id": account_id, "count": count, **row_params(columns, rows)}
    return max(int(seq) for (seq,) in await statement.all(session, params))


async def events_after(
    session: AsyncSession, *, account_id: int, after_seq: int, limit: int = 500
) -> list[PublishedEvent]:
    """Replay: the account's events after `after_seq`, oldest first."""
    rows = await session.scalars(
        select(Event)
        .where(Event.account_id == account_id, Event.seq > after_seq)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [PublishedEvent.from_row(row) for row in rows]


async def latest_seq(session: AsyncSession, *, account_id: int) -> int:
    value = await session.scalar(
        select(EventCounter.last_seq).where(EventCounter.account_id == account_id)
    )
    return int(value or 0)
