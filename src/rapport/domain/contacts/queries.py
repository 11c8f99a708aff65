"""Contact reads."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import Conversation
from rapport.domain.conversations.policies import Viewer, visible_filter
from rapport.domain.errors import NotFound


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


async def search_contacts(
    session: AsyncSession, *, account_id: int, text: str = "", limit: int = 50, offset: int = 0
) -> list[Contact]:
    """Contacts by name, company or any identity value; most recently active first."""
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
