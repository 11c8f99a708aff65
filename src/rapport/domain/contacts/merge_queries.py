"""Reads for merging: the review queue of suggested pairs, a contact's merges, where a merged
contact went."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from rapport.domain.contacts.merge_models import ContactMerge, MergeSuggestion, SuggestionStatus
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.contacts.queries import identities_by_contact
from rapport.domain.conversations.models import Conversation
from rapport.domain.errors import NotFound

# A chain of merges (A into B, B into C) is followed this far at most.
MAX_CHAIN = 20


@dataclass(frozen=True)
class Side:
    """One contact of a suggested pair, with what an agent compares."""

    contact: Contact
    identities: list[Identity] = field(default_factory=list)
    conversations: int = 0


@dataclass(frozen=True)
class SuggestedPair:
    suggestion: MergeSuggestion
    left: Side
    right: Side


def _reviewable(account_id: int) -> Select[MergeSuggestion, Contact, Contact]:
    left, right = aliased(Contact), aliased(Contact)
    return (
        select(MergeSuggestion, left, right)
        .join(left, left.id == MergeSuggestion.contact_id)
        .join(right, right.id == MergeSuggestion.other_contact_id)
        .where(
            MergeSuggestion.account_id == account_id,
            MergeSuggestion.status == SuggestionStatus.pending,
            left.merged_into_id.is_(None),
            right.merged_into_id.is_(None),
        )
    )


async def pending_count(session: AsyncSession, *, account_id: int) -> int:
    """How many suggestions wait for review (the number next to the link)."""
    query = _reviewable(account_id).with_only_columns(func.count(MergeSuggestion.id))
    return int(await session.scalar(query) or 0)


async def review_queue(
    session: AsyncSession, *, account_id: int, contact_id: int | None = None, limit: int = 50
) -> list[SuggestedPair]:
    """Pending suggestions whose contacts are both still their own, best score first."""
    query = _reviewable(account_id)
    if contact_id is not None:
        query = query.where(
            or_(
                MergeSuggestion.contact_id == contact_id,
                MergeSuggestion.other_contact_id == contact_id,
            )
        )
    rows = (
        await session.execute(
            query.order_by(MergeSuggestion.score.desc(), MergeSuggestion.id.desc()).limit(limit)
        )
    ).all()
    ids = {c.id for _s, a, b in rows for c in (a, b)}
    identities = await identities_by_contact(session, sorted(ids))
    counts = await _conversation_counts(session, ids)

    def side(contact: Contact) -> Side:
        return Side(contact, identities.get(contact.id, []), counts.get(contact.id, 0))

    return [SuggestedPair(s, side(a), side(b)) for s, a, b in rows]


async def _conversation_counts(session: AsyncSession, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Conversation.contact_id, func.count())
        .where(Conversation.contact_id.in_(ids))
        .group_by(Conversation.contact_id)
    )
    return {contact_id: int(count) for contact_id, count in rows.all()}


async def merges_into(
    session: AsyncSession, *, account_id: int, contact_id: int
) -> list[tuple[ContactMerge, Contact]]:
    """The merges this contact survived that can still be undone, newest first."""
    rows = await session.execute(
        select(ContactMerge, Contact)
        .join(Contact, Contact.id == ContactMerge.merged_id)
        .where(
            ContactMerge.account_id == account_id,
            ContactMerge.survivor_id == contact_id,
            ContactMerge.unmerged_at.is_(None),
        )
        .order_by(ContactMerge.id.desc())
    )
    return [(merge, merged) for merge, merged in rows.all()]


async def survivor_of(session: AsyncSession, *, contact: Contact) -> Contact:
    """Where a merged contact lives now (following merges of merges); itself if not merged."""
    current = contact
    for _ in range(MAX_CHAIN):
        if current.merged_into_id is None:
            return current
        found = await session.get(Contact, current.merged_into_id)
        if found is None or found.account_id != contact.account_id:
            break
        current = found
    raise NotFound("contact")
