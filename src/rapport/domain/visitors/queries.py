"""Visitor reads: the session behind a token, and the one conversation a visitor may read.

A visitor sees the public messages of the conversation their session is bound to, never private
notes, never another conversation: any other id is "not found".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.agents.models import User
from rapport.domain.contacts.models import Contact, Identity, IdentityKind
from rapport.domain.conversations.models import (
    Attachment,
    DeliveryStatus,
    Direction,
    Message,
)
from rapport.domain.errors import NotFound
from rapport.domain.events import Event, PublishedEvent
from rapport.domain.ports import IdentityClaim
from rapport.domain.visitors.models import VisitorSession
from rapport.lib.crypto import sha256_hex


async def visit_by_token(session: AsyncSession, *, inbox_id: int, token: str) -> VisitorSession:
    """The session a browser's token names on this inbox; NotFound for anything else."""
    if not token:
        raise NotFound("visitor session")
    visit = await session.scalar(
        select(VisitorSession).where(VisitorSession.token_hash == sha256_hex(token))
    )
    if visit is None or visit.inbox_id != inbox_id:
        raise NotFound("visitor session")
    return visit


async def visitor_contact(session: AsyncSession, *, visit: VisitorSession) -> Contact | None:
    """The contact holding the session's `webchat` identity (after merges too), if any yet."""
    return await session.scalar(
        select(Contact)
        .join(Identity, Identity.contact_id == Contact.id)
        .where(
            Identity.account_id == visit.account_id,
            Identity.kind == IdentityKind.webchat,
            Identity.value == visit.visitor_id,
        )
    )


async def contact_ids_holding(
    session: AsyncSession, *, account_id: int, claims: Sequence[IdentityClaim]
) -> set[int]:
    """Contacts that already hold any of these (normalised) identities."""
    if not claims:
        return set()
    keys = [(c.kind.value, c.value) for c in claims]
    rows = await session.scalars(
        select(Identity.contact_id).where(
            Identity.account_id == account_id, tuple_(Identity.kind, Identity.value).in_(keys)
        )
    )
    return set(rows)


@dataclass
class VisitorMessage:
    message: Message
    sender_name: str | None
    sender_avatar: str | None
    attachments: list[Attachment] = field(default_factory=list)


def _visible(visit: VisitorSession) -> list[ColumnElement[bool]]:
    return [Message.conversation_id == visit.conversation_id, Message.private.is_(False)]


async def visitor_messages(
    session: AsyncSession, *, visit: VisitorSession, before_id: int | None = None, limit: int = 50
) -> tuple[list[VisitorMessage], bool]:
    """The visitor's conversation, oldest first (public messages only), and whether more exist."""
    if visit.conversation_id is None:
        return [], False
    query = (
        select(Message, User.name, User.avatar_url)
        .outerjoin(User, User.id == Message.sender_user_id)
        .where(*_visible(visit))
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        query = query.where(Message.id < before_id)
    rows = (await session.execute(query)).all()
    items = [VisitorMessage(m, name, avatar) for m, name, avatar in reversed(rows[:limit])]
    await _attach(session, items)
    return items, len(rows) > limit


async def visitor_message(
    session: AsyncSession, *, visit: VisitorSession, message_id: int
) -> VisitorMessage:
    """One message of the visitor's conversation; NotFound for notes and other conversations."""
    row = (
        await session.execute(
            select(Message, User.name, User.avatar_url)
            .outerjoin(User, User.id == Message.sender_user_id)
            .where(Message.id == message_id, *_visible(visit))
        )
    ).first()
    if row is None or visit.conversation_id is None:
        raise NotFound("message")
    item = VisitorMessage(row[0], row[1], row[2])
    await _attach(session, [item])
    return item


async def _attach(session: AsyncSession, items: list[VisitorMessage]) -> None:
    by_id = {item.message.id: item for item in items}
    if not by_id:
        return
    rows = await session.scalars(
        select(Attachment).where(Attachment.message_id.in_(list(by_id))).order_by(Attachment.id)
    )
    for row in rows:
        by_id[row.message_id].attachments.append(row)


async def outgoing_to_acknowledge(
    session: AsyncSession,
    *,
    visit: VisitorSession,
    inbox_id: int,
    up_to_id: int,
    below: DeliveryStatus,
) -> list[int]:
    """Ids of our replies on this inbox, up to `up_to_id`, not yet at status `below` or past it."""
    if visit.conversation_id is None:
        return []
    waiting = [DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.sent]
    if below == DeliveryStatus.read:
        waiting.append(DeliveryStatus.delivered)
    rows = await session.scalars(
        select(Message.id)
        .where(
            Message.conversation_id == visit.conversation_id,
            Message.inbox_id == inbox_id,
            Message.direction == Direction.outgoing,
            Message.private.is_(False),
            Message.id <= up_to_id,
            Message.status.in_([s.value for s in waiting]),
        )
        .order_by(Message.id)
        .limit(200)
    )
    return list(rows)


async def conversation_events_after(
    session: AsyncSession,
    *,
    account_id: int,
    conversation_id: int,
    after_seq: int,
    limit: int = 500,
) -> list[PublishedEvent]:
    """Replay for one conversation (the visitor's socket), through the (conversation, id) index."""
    rows = await session.scalars(
        select(Event)
        .where(
            Event.conversation_id == conversation_id,
            Event.account_id == account_id,
            Event.seq > after_seq,
        )
        .order_by(Event.id)
        .limit(limit)
    )
    return [PublishedEvent.from_row(row) for row in rows]
