"""Contact reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.accounts.models import Account
from rapport.domain.contacts.actions import normalise_claim
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.conversations.models import Conversation
from rapport.domain.conversations.policies import Viewer, visible_filter
from rapport.domain.errors import InvalidInput, NotFound
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
