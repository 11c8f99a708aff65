"""Contact reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactLabel,
    Identity,
    IdentityKind,
    Label,
    Verification,
)
from rapport.domain.contacts.policies import normalise_claim
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.conversations.policies import Viewer, visible_filter
from rapport.domain.errors import InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.domain.ports import IdentityClaim


async def get_contact(session: AsyncSession, *, account_id: int, contact_id: int) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.account_id != account_id:
        raise NotFound("contact")
    return contact


async def identities_of(session: AsyncSession, contact_id: int) -> list[Identity]:
    rows = await session.scalars(
        select(Identity).where(Identity.contact_id == contact_id).order_by(Identity.id)
    )
    return list(rows)


async def conversations_of(
    session: AsyncSession, contact_id: int, *, viewer: Viewer, limit: int = 20
) -> list[Conversation]:
    """The contact's conversations this viewer may see, most recent first."""
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.contact_id == contact_id, visible_filter(viewer))
        .order_by(Conversation.last_activity_at.desc())
        .limit(limit)
    )
    return list(rows)


def _matching(account_id: int, text: str) -> Select[Contact]:
    """The account's live contacts whose name, company or any identity value holds `text`."""
    query = select(Contact).where(
        Contact.account_id == account_id, Contact.merged_into_id.is_(None)
    )
    needle = text.strip()
    if needle:
        pattern = f"%{needle.lower()}%"
        by_identity = select(Identity.contact_id).where(
            Identity.account_id == account_id, Identity.value.ilike(pattern)
        )
        query = query.where(
            Contact.name.ilike(pattern)
            | Contact.company.ilike(pattern)
            | Contact.id.in_(by_identity)
        )
    return query


async def search_contacts(
    session: AsyncSession, *, account_id: int, text: str = "", limit: int = 50, offset: int = 0
) -> list[Contact]:
    """Contacts by name, company or any identity value; most recently active first."""
    query = _matching(account_id, text)
    rows = await session.scalars(
        query.order_by(Contact.last_activity_at.desc(), Contact.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def recent_identities(
    session: AsyncSession, *, account_id: int, kind: str, limit: int = 8
) -> list[tuple[Identity, Contact]]:
    """The account's identities of one kind, most recently active contacts first."""
    rows = await session.execute(
        select(Identity, Contact)
        .join(Contact, Contact.id == Identity.contact_id)
        .where(
            Identity.account_id == account_id,
            Identity.kind == kind,
            Contact.merged_into_id.is_(None),
        )
        .order_by(Contact.last_activity_at.desc(), Identity.id.desc())
        .limit(limit)
    )
    return [(identity, contact) for identity, contact in rows.all()]


@dataclass(frozen=True)
class ContactPage:
    items: list[Contact]
    next_cursor: str | None


def _contact_cursor(contact: Contact) -> str:
    return f"{contact.last_activity_at.timestamp():.6f}:{contact.id}"


def _parse_contact_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    stamp, _, ident = cursor.partition(":")
    try:
        when, after_id = datetime.fromtimestamp(float(stamp), tz=UTC), int(ident)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput("the cursor is not one this API gave out", field="cursor") from exc
    if not 0 < after_id < 2**63:
        raise InvalidInput("the cursor is not one this API gave out", field="cursor")
    return when, after_id


async def contact_page(
    session: AsyncSession,
    *,
    account_id: int,
    text: str = "",
    cursor: str | None = None,
    limit: int = 25,
) -> ContactPage:
    """One page of contacts (search by name, company or identity), most recently active first.

    Keyset pagination on (last_activity_at, id): pages stay stable while contacts are added.
    """
    query = _matching(account_id, text)
    after = _parse_contact_cursor(cursor)
    if after is not None:
        stamp, ident = after
        query = query.where(
            (Contact.last_activity_at < stamp)
            | ((Contact.last_activity_at == stamp) & (Contact.id < ident))
        )
    rows = list(
        await session.scalars(
            query.order_by(Contact.last_activity_at.desc(), Contact.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ContactPage(rows, _contact_cursor(rows[-1]) if more and rows else None)


async def identities_by_contact(
    session: AsyncSession, contact_ids: list[int]
) -> dict[int, list[Identity]]:
    """Identities of many contacts in one query (API list pages)."""
    found: dict[int, list[Identity]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    rows = await session.scalars(
        select(Identity).where(Identity.contact_id.in_(contact_ids)).order_by(Identity.id)
    )
    for row in rows:
        found[row.contact_id].append(row)
    return found


async def contact_by_identity(
    session: AsyncSession, *, account: Account, kind: IdentityKind, value: str
) -> Contact:
    """The contact holding an address, the value normalised as it would be on arrival."""
    claim = normalise_claim(
        IdentityClaim(kind, value, Verification.unverified), default_region=account.default_region
    )
    identity = await session.scalar(
        select(Identity).where(
            Identity.account_id == account.id,
            Identity.kind == claim.kind,
            Identity.value == claim.value,
        )
    )
    if identity is None:
        raise NotFound("contact")
    return await get_contact(session, account_id=account.id, contact_id=identity.contact_id)


# --- custom attributes and labels -------------------------------------------------------------


async def attribute_definitions(
    session: AsyncSession, *, account_id: int
) -> list[AttributeDefinition]:
    rows = await session.scalars(
        select(AttributeDefinition)
        .where(AttributeDefinition.account_id == account_id)
        .order_by(AttributeDefinition.position, AttributeDefinition.id)
    )
    return list(rows)


async def get_attribute_definition(
    session: AsyncSession, *, account_id: int, definition_id: int
) -> AttributeDefinition:
    found = await session.get(AttributeDefinition, definition_id)
    if found is None or found.account_id != account_id:
        raise NotFound("attribute")
    return found


@dataclass(frozen=True)
class AttributeRow:
    """One defined attribute of a contact, with its value (None when not set)."""

    definition: AttributeDefinition
    value: str | int | float | None


def attribute_rows(
    contact: Contact, definitions: Sequence[AttributeDefinition]
) -> list[AttributeRow]:
    values = contact.attributes or {}
    return [AttributeRow(d, values.get(d.key)) for d in definitions]


async def labels_of_account(session: AsyncSession, *, account_id: int) -> list[Label]:
    rows = await session.scalars(
        select(Label).where(Label.account_id == account_id).order_by(Label.name)
    )
    return list(rows)


async def get_label(session: AsyncSession, *, account_id: int, label_id: int) -> Label:
    found = await session.get(Label, label_id)
    if found is None or found.account_id != account_id:
        raise NotFound("label")
    return found


async def labels_of(session: AsyncSession, contact_id: int) -> list[Label]:
    rows = await session.scalars(
        select(Label)
        .join(ContactLabel, ContactLabel.label_id == Label.id)
        .where(ContactLabel.contact_id == contact_id)
        .order_by(Label.name)
    )
    return list(rows)


# --- the customer timeline --------------------------------------------------------------------

# What the contact timeline shows, all read from the event log (every one carries contact_id).
CONTACT_TIMELINE_TYPES = (
    "message.created",
    "conversation.channel_switched",
    "conversation.assigned",
    "conversation.status_changed",
    "contact.custom_event",
)


@dataclass(frozen=True)
class ContactTimelineItem:
    """One entry: an event, with its message when it is one, and who did it."""

    event: Event
    actor_name: str | None
    message: Message | None = None

    @property
    def kind(self) -> str:
        return self.event.type


@dataclass(frozen=True)
class ContactTimelinePage:
    items: list[ContactTimelineItem]  # newest first
    next_before: int | None  # pass as `before` for the next (older) page; None at the start


async def contact_timeline(
    session: AsyncSession,
    *,
    account_id: int,
    contact_id: int,
    before: int | None,
    limit: int,
    viewer: Viewer | None = None,
) -> ContactTimelinePage:
    """One page of everything that happened with a contact, across channels, newest first.

    Keyset pagination on the event id walks ix_events_contact (contact_id, id) backwards, so a
    page costs the same on the first day and after millions of events. With a viewer, events of
    conversations they may not see are left out (the one visibility rule).
    """
    actor = aliased(User)
    query = (
        select(Event, actor.name)
        .outerjoin(actor, actor.id == Event.actor_user_id)
        .where(
            Event.contact_id == contact_id,
            Event.account_id == account_id,
            Event.type.in_(CONTACT_TIMELINE_TYPES),
        )
        .order_by(Event.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(Event.id < before)
    if viewer is not None and not viewer.sees_everything:
        visible = select(Conversation.id).where(
            Conversation.contact_id == contact_id, visible_filter(viewer)
        )
        query = query.where(Event.conversation_id.is_(None) | Event.conversation_id.in_(visible))
    rows = (await session.execute(query)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    messages = await _messages_by_id(session, account_id, [event for event, _ in rows])
    items = [
        ContactTimelineItem(event, name, messages.get(int(event.data.get("message_id") or 0)))
        for event, name in rows
    ]
    return ContactTimelinePage(items, rows[-1][0].id if has_more and rows else None)


async def _messages_by_id(
    session: AsyncSession, account_id: int, rows: Sequence[Event]
) -> dict[int, Message]:
    ids = [int(e.data["message_id"]) for e in rows if e.type == "message.created"]
    if not ids:
        return {}
    found = await session.scalars(
        select(Message).where(Message.id.in_(ids), Message.account_id == account_id)
    )
    return {m.id: m for m in found}


# --- what an agent sees beside a conversation ("no repeating") ---------------------------------


@dataclass(frozen=True)
class EarlierConversation:
    conversation: Conversation
    last_messages: list[Message]  # oldest first, private notes included


async def earlier_conversations(
    session: AsyncSession,
    *,
    contact_id: int,
    viewer: Viewer,
    exclude_id: int | None,
    conversations: int = 5,
    messages: int = 3,
) -> list[EarlierConversation]:
    """The contact's other conversations on any channel, with their last few messages."""
    rows = await session.scalars(
        select(Conversation)
        .where(
            Conversation.contact_id == contact_id,
            visible_filter(viewer),
            Conversation.id != (exclude_id or 0),
        )
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(conversations)
    )
    found = list(rows)
    if not found:
        return []
    # The last few messages of every one of them in one query, not one query each.
    position = (
        func.row_number()
        .over(partition_by=Message.conversation_id, order_by=Message.id.desc())
        .label("position")
    )
    ranked = (
        select(Message.id, position)
        .where(Message.conversation_id.in_([c.id for c in found]))
        .subquery()
    )
    latest = await session.scalars(
        select(Message)
        .join(ranked, ranked.c.id == Message.id)
        .where(ranked.c.position <= messages)
        .order_by(Message.id)
    )
    by_conversation: dict[int, list[Message]] = {c.id: [] for c in found}
    for message in latest:
        by_conversation[message.conversation_id].append(message)
    return [EarlierConversation(c, by_conversation[c.id]) for c in found]
