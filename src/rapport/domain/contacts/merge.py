"""Merging two contacts into one, and undoing it exactly.

A merge moves the merged contact's identities, conversations and events to the survivor, copies
the attributes the survivor lacks (the survivor wins a conflict; the loser's value stays in the
merge record), fills the survivor's empty profile fields, and marks the merged contact
`merged_into_id`. The `ContactMerge` row keeps both contacts as they were and the ids of what
moved, so `unmerge_contacts` puts back exactly that, and leaves on the survivor what arrived
after the merge. Nothing here commits: callers finish with `events.commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from rapport.domain import events
from rapport.domain.contacts import suggestions
from rapport.domain.contacts.merge_models import ContactMerge, MergeSuggestion, SuggestionStatus
from rapport.domain.contacts.models import Contact, ContactLabel, Identity
from rapport.domain.contacts.queries import get_contact
from rapport.domain.conversations.models import Conversation
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.lib.clock import ensure_utc, utcnow

# Profile fields the survivor takes from the merged contact when its own are empty.
FILLED_FIELDS = ("name", "company", "avatar_url")
# Ids per UPDATE ... WHERE id IN (...): under SQLite's bound-parameter limit.
CHUNK = 500

__all__ = [
    "ContactMerge",
    "MergeSuggestion",
    "accept_suggestion",
    "dismiss_suggestion",
    "merge_contacts",
    "suggest_merges",
    "unmerge_contacts",
]


async def merge_contacts(
    session: AsyncSession,
    *,
    account_id: int,
    survivor_id: int,
    merged_id: int,
    actor_user_id: int | None,
) -> ContactMerge:
    """Merge `merged_id` into `survivor_id`; returns the record that can undo it."""
    # Another account's id is "not found" before anything else is said about it.
    survivor, merged = await _lock_pair(session, account_id, survivor_id, merged_id)
    if survivor_id == merged_id:
        raise InvalidInput("A contact cannot be merged into itself.")
    for contact in (survivor, merged):
        if contact.merged_into_id is not None:
            raise Conflict("That contact was already merged into another one.")
    snapshot = {"survivor": _profile(survivor), "merged": _profile(merged)}
    moved = {
        "identities": await _move(session, Identity, Identity.contact_id, merged.id, survivor.id),
        "conversations": await _move(
            session, Conversation, Conversation.contact_id, merged.id, survivor.id
        ),
        "events": await _move(session, Event, Event.contact_id, merged.id, survivor.id),
        "labels_added": await _copy_labels(session, merged, survivor),
        **_combine_profiles(survivor, merged),
    }
    merged.merged_into_id = survivor.id
    merged.updated_at = utcnow()
    record = ContactMerge(
        account_id=account_id,
        survivor_id=survivor.id,
        merged_id=merged.id,
        actor_user_id=actor_user_id,
        snapshot=snapshot,
        moved=moved,
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    await _decide_pair(session, survivor, merged, SuggestionStatus.accepted, actor_user_id)
    await _carry_suggestions(session, survivor, merged)
    events.record(
        session,
        account_id=account_id,
        event=events.ContactsMerged(
            contact_id=survivor.id, merged_id=merged.id, merge_id=record.id
        ),
        actor_user_id=actor_user_id,
    )
    return record


async def unmerge_contacts(
    session: AsyncSession, *, account_id: int, merge_id: int, actor_user_id: int | None
) -> tuple[Contact, Contact]:
    """Undo a merge: both contacts as they were; what arrived since stays with the survivor.

    Returns (survivor, restored contact).
    """
    record = await session.get(ContactMerge, merge_id)
    if record is None or record.account_id != account_id:
        raise NotFound("merge")
    if record.unmerged_at is not None:
        raise Conflict("This merge was already undone.")
    survivor, merged = await _lock_pair(session, account_id, record.survivor_id, record.merged_id)
    if survivor.merged_into_id is not None:
        raise Conflict("The surviving contact was merged again since: undo that merge first.")
    if merged.merged_into_id != survivor.id:
        raise Conflict("This merge was already undone.")
    moved = record.moved
    await _move_back(session, Identity, Identity.contact_id, moved["identities"], survivor, merged)
    await _move_back(
        session, Conversation, Conversation.contact_id, moved["conversations"], survivor, merged
    )
    await _move_back(session, Event, Event.contact_id, moved["events"], survivor, merged)
    await _events_of_conversations_back(session, moved["conversations"], survivor, merged)
    _restore_survivor(survivor, record)
    await _remove_copied_labels(session, survivor, moved.get("labels_added", []))
    _restore_profile(merged, record.snapshot["merged"])
    merged.merged_into_id = None
    record.unmerged_at = utcnow()
    record.unmerged_by_user_id = actor_user_id
    # The agent undid it: the pair was not one customer, so stop suggesting it.
    await _decide_pair(session, survivor, merged, SuggestionStatus.dismissed, actor_user_id)
    events.record(
        session,
        account_id=account_id,
        event=events.ContactsUnmerged(
            contact_id=survivor.id, merged_id=merged.id, merge_id=record.id
        ),
        actor_user_id=actor_user_id,
    )
    return survivor, merged


async def suggest_merges(
    session: AsyncSession, *, account_id: int, contact_id: int
) -> list[MergeSuggestion]:
    """Scan one contact for likely duplicates now; returns its pending suggestions, best first."""
    contact = await get_contact(session, account_id=account_id, contact_id=contact_id)
    return await suggestions.scan_contact(session, contact=contact)


async def accept_suggestion(
    session: AsyncSession,
    *,
    account_id: int,
    suggestion_id: int,
    survivor_id: int,
    actor_user_id: int | None,
) -> ContactMerge:
    """Merge the suggested pair, keeping `survivor_id` (one of the two)."""
    suggestion = await _suggestion(session, account_id, suggestion_id)
    pair = (suggestion.contact_id, suggestion.other_contact_id)
    if survivor_id not in pair:
        raise InvalidInput("Choose which of the two contacts to keep.", field="survivor_id")
    merged_id = pair[1] if survivor_id == pair[0] else pair[0]
    return await merge_contacts(
        session,
        account_id=account_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor_user_id=actor_user_id,
    )


async def dismiss_suggestion(
    session: AsyncSession, *, account_id: int, suggestion_id: int, actor_user_id: int | None
) -> MergeSuggestion:
    """Not the same customer: the pair is not suggested again."""
    suggestion = await _suggestion(session, account_id, suggestion_id)
    if suggestion.status == SuggestionStatus.pending:
        _decide(suggestion, SuggestionStatus.dismissed, actor_user_id)
        events.record(
            session,
            account_id=account_id,
            event=events.MergeDismissed(
                contact_id=suggestion.contact_id,
                other_contact_id=suggestion.other_contact_id,
                suggestion_id=suggestion.id,
            ),
            actor_user_id=actor_user_id,
        )
    return suggestion


# --- moving rows -------------------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


async def _move(
    session: AsyncSession,
    model: type[Identity | Conversation | Event],
    column: InstrumentedAttribute[Any],
    from_id: int,
    to_id: int,
) -> list[int]:
    """Point every row of `model` at `to_id` instead of `from_id`; returns the ids moved."""
    ids = sorted(await session.scalars(select(model.id).where(column == from_id)))
    for chunk in _chunks(ids):
        await session.execute(update(model).where(model.id.in_(chunk)).values({column.key: to_id}))
    return ids


async def _move_back(
    session: AsyncSession,
    model: type[Identity | Conversation | Event],
    column: InstrumentedAttribute[Any],
    ids: Sequence[int],
    survivor: Contact,
    merged: Contact,
) -> None:
    for chunk in _chunks(list(ids)):
        await session.execute(
            update(model)
            .where(model.id.in_(chunk), column == survivor.id)
            .values({column.key: merged.id})
        )


async def _events_of_conversations_back(
    session: AsyncSession, conversation_ids: Sequence[int], survivor: Contact, merged: Contact
) -> None:
    """Events that happened since in the conversations going back go back with them."""
    for chunk in _chunks(list(conversation_ids)):
        await session.execute(
            update(Event)
            .where(Event.conversation_id.in_(chunk), Event.contact_id == survivor.id)
            .values(contact_id=merged.id)
        )


# --- profiles ----------------------------------------------------------------------------------


async def _copy_labels(session: AsyncSession, merged: Contact, survivor: Contact) -> list[int]:
    """Put the merged contact's labels on the survivor; the merged contact keeps its own rows,
    so an unmerge only has to take back the ones added here."""
    theirs = set(
        await session.scalars(
            select(ContactLabel.label_id).where(ContactLabel.contact_id == merged.id)
        )
    )
    own = set(
        await session.scalars(
            select(ContactLabel.label_id).where(ContactLabel.contact_id == survivor.id)
        )
    )
    added = sorted(theirs - own)
    for label_id in added:
        session.add(
            ContactLabel(contact_id=survivor.id, label_id=label_id, account_id=survivor.account_id)
        )
    await session.flush()
    return added


async def _remove_copied_labels(
    session: AsyncSession, survivor: Contact, label_ids: Sequence[int]
) -> None:
    if label_ids:
        await session.execute(
            delete(ContactLabel).where(
                ContactLabel.contact_id == survivor.id, ContactLabel.label_id.in_(list(label_ids))
            )
        )


def _profile(contact: Contact) -> dict[str, Any]:
    return {
        "name": contact.name,
        "company": contact.company,
        "avatar_url": contact.avatar_url,
        "attributes": dict(contact.attributes or {}),
        "updated_at": contact.updated_at.isoformat(),
        "last_activity_at": contact.last_activity_at.isoformat(),
    }


def _combine_profiles(survivor: Contact, merged: Contact) -> dict[str, Any]:
    """The survivor takes what it lacks; returns what changed on it, for an exact unmerge."""
    filled = {}
    for field in FILLED_FIELDS:
        mine, theirs = getattr(survivor, field), getattr(merged, field)
        if not mine and theirs:
            setattr(survivor, field, theirs)
            filled[field] = theirs
    own = dict(survivor.attributes or {})
    theirs_attrs = dict(merged.attributes or {})
    added = {k: v for k, v in theirs_attrs.items() if k not in own}
    lost = {k: v for k, v in theirs_attrs.items() if k in own and own[k] != v}
    if added:
        survivor.attributes = {**own, **added}
    last_activity = max(survivor.last_activity_at, merged.last_activity_at)
    survivor.last_activity_at = last_activity
    return {
        "filled": filled,
        "attributes_added": added,
        # The merged contact's values that lost to the survivor's, kept so nothing is lost.
        "attributes_kept_from_survivor": lost,
        "last_activity_at": last_activity.isoformat(),
    }


def _restore_profile(contact: Contact, profile: dict[str, Any]) -> None:
    contact.name = profile["name"]
    contact.company = profile["company"]
    contact.avatar_url = profile["avatar_url"]
    contact.attributes = dict(profile["attributes"])
    contact.updated_at = _when(profile["updated_at"])
    contact.last_activity_at = _when(profile["last_activity_at"])


def _restore_survivor(survivor: Contact, record: ContactMerge) -> None:
    """Take back what the merge gave the survivor, unless someone changed it since."""
    before = record.snapshot["survivor"]
    for field, value in record.moved["filled"].items():
        if getattr(survivor, field) == value:
            setattr(survivor, field, before[field])
    added: dict[str, Any] = record.moved["attributes_added"]
    attributes = dict(survivor.attributes or {})
    kept = {k: v for k, v in attributes.items() if k not in added or added[k] != v}
    if kept != attributes:
        survivor.attributes = kept
    if survivor.last_activity_at == _when(record.moved["last_activity_at"]):
        survivor.last_activity_at = _when(before["last_activity_at"])


def _when(value: str) -> datetime:
    return ensure_utc(datetime.fromisoformat(value))


# --- lookups and suggestions -------------------------------------------------------------------


async def _lock_pair(
    session: AsyncSession, account_id: int, first_id: int, second_id: int
) -> tuple[Contact, Contact]:
    """Both contacts, row-locked in id order against `receive_message`'s lock of a contact.

    FOR NO KEY UPDATE: other transactions' foreign-key checks (an event naming the contact)
    must not wait on us while we wait for the event counter they hold.
    """
    rows = await session.scalars(
        select(Contact)
        .where(Contact.id.in_([first_id, second_id]), Contact.account_id == account_id)
        .order_by(Contact.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    found = {c.id: c for c in rows}
    if first_id not in found or second_id not in found:
        raise NotFound("contact")
    return found[first_id], found[second_id]


async def _suggestion(
    session: AsyncSession, account_id: int, suggestion_id: int
) -> MergeSuggestion:
    suggestion = await session.get(MergeSuggestion, suggestion_id)
    if suggestion is None or suggestion.account_id != account_id:
        raise NotFound("merge suggestion")
    return suggestion


async def _decide_pair(
    session: AsyncSession,
    first: Contact,
    second: Contact,
    status: SuggestionStatus,
    actor_user_id: int | None,
) -> None:
    low, high = sorted((first.id, second.id))
    suggestion = await session.scalar(
        select(MergeSuggestion).where(
            MergeSuggestion.account_id == first.account_id,
            MergeSuggestion.contact_id == low,
            MergeSuggestion.other_contact_id == high,
        )
    )
    if suggestion is not None:
        _decide(suggestion, status, actor_user_id)


async def _carry_suggestions(session: AsyncSession, survivor: Contact, merged: Contact) -> None:
    """What made the merged contact look like a third one now holds for the survivor."""
    for pending in await suggestions.pending_for(
        session, account_id=survivor.account_id, contact_id=merged.id
    ):
        third = pending.other_contact_id if pending.contact_id == merged.id else pending.contact_id
        await suggestions.suggest_pair(
            session,
            account_id=survivor.account_id,
            contact_id=survivor.id,
            other_id=third,
            reasons=list(pending.reasons),
        )


def _decide(
    suggestion: MergeSuggestion, status: SuggestionStatus, actor_user_id: int | None
) -> None:
    suggestion.status = status
    suggestion.decided_by_user_id = actor_user_id
    suggestion.decided_at = utcnow()
    suggestion.updated_at = utcnow()
