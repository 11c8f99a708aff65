"""Contact actions: the only place contacts and identities change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Boolean,
    Text,
    any_,
    bindparam,
    case,
    delete,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db import outbox
from rapport.db.helpers import insert_object, insert_rows, sync_loaded, table_of
from rapport.db.prepared import Prepared
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.contacts import policies, suggestions
from rapport.domain.contacts.models import (
    TRUSTED_VERIFICATIONS,
    AttributeDefinition,
    AttributeKind,
    Contact,
    ContactLabel,
    Identity,
    Label,
    Verification,
)
from rapport.domain.contacts.policies import normalise_claim
from rapport.domain.conversations.models import Attachment, Conversation, Message
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.ports import Consent, IdentityClaim
from rapport.lib.clock import ensure_utc, utcnow

# Removes stored files whose attachment rows are gone: {"keys": [storage keys]}.
DELETE_FILES_JOB = "files.delete"
# Storage keys per job, so one job stays small however many files an erased contact had.
FILES_PER_JOB = 200

# Strongest first: a stronger claim upgrades an identity's recorded verification.
_STRENGTH = {
    Verification.provider: 3,
    Verification.verified: 2,
    Verification.agent: 1,
    Verification.unverified: 0,
}


def _may_join(claim: IdentityClaim, existing: _Known) -> bool:
    """A typed claim never joins a contact that holds the identity with proof."""
    if claim.verification in TRUSTED_VERIFICATIONS:
        return True
    return existing.verification not in TRUSTED_VERIFICATIONS


@dataclass(frozen=True)
class ResolvedContact:
    contact: Contact
    created: bool
    # Claims that matched an identity of another contact and were not attached (takeover guard).
    conflicts: tuple[tuple[IdentityClaim, int], ...] = ()


@dataclass(frozen=True)
class ResolvedSender:
    """What receiving a message needs of its sender's contact: the id, no loaded object."""

    contact_id: int
    created: bool
    conflicts: tuple[tuple[IdentityClaim, int], ...] = ()


@dataclass(frozen=True)
class _Known:
    """What resolving reads of a stored identity (a plain row, not a loaded object)."""

    id: int
    contact_id: int
    kind: str
    value: str
    verification: str


@dataclass(frozen=True)
class _Found:
    contact_id: int
    # Loaded when the caller wants the contact (`resolve_contact`) or it was just created.
    contact: Contact | None
    created: bool
    conflicts: tuple[tuple[IdentityClaim, int], ...]


async def resolve_contact(
    session: AsyncSession,
    *,
    account: Account,
    claims: Sequence[IdentityClaim],
    name: str = "",
) -> ResolvedContact:
    """Find the contact these identities belong to, creating or linking as needed.

    A contact found is locked until commit (a row lock on PostgreSQL; SQLite serialises
    writers anyway), so two messages of one customer arriving together cannot both start a
    conversation."""
    found = await _resolve_claims(session, account=account, claims=claims, name=name)
    assert found.contact is not None
    return ResolvedContact(found.contact, found.created, found.conflicts)


async def resolve_sender(
    session: AsyncSession,
    *,
    account: Account,
    claims: Sequence[IdentityClaim],
    name: str,
    active_at: datetime,
) -> ResolvedSender:
    """`resolve_contact` for an incoming message, which needs only the contact's id.

    The contact is marked active at `active_at` (the message's time) by the statement that
    locks or creates it, so no UPDATE of the contact follows, and a returning contact is not
    loaded as an object at all."""
    found = await _resolve_claims(
        session, account=account, claims=claims, name=name, active_at=active_at
    )
    return ResolvedSender(found.contact_id, found.created, found.conflicts)


async def _resolve_claims(
    session: AsyncSession,
    *,
    account: Account,
    claims: Sequence[IdentityClaim],
    name: str,
    active_at: datetime | None = None,
) -> _Found:
    normalised = _dedupe(
        [normalise_claim(c, default_region=account.default_region) for c in claims]
    )
    if not normalised:
        raise InvalidInput("a message needs at least one sender identity")
    if active_at is not None and len(normalised) == 1 and not _writers_serialised(session):
        returning, existing = await _returning_sender(
            session, account_id=account.id, claim=normalised[0], name=name, active_at=active_at
        )
        if returning is not None:
            return returning
    else:
        existing = await _identities_for(session, account.id, normalised)
    resolve = partial(
        _resolve, session, account=account, claims=normalised, name=name, active_at=active_at
    )
    if all((c.kind, c.value) in existing for c in normalised) or _writers_serialised(session):
        # Nothing to insert, or no other writer to collide with: no savepoint (the usual case).
        found = await resolve(existing=existing)
    else:
        try:
            async with session.begin_nested():
                found = await resolve(existing=existing)
        except IntegrityError:
            # A concurrent transaction created one of these identities first: resolve again.
            found = await resolve()
    await _suggest(session, account.id, found)
    return found


def _writers_serialised(session: AsyncSession) -> bool:
    """SQLite: a writing transaction holds the database's write lock from its BEGIN IMMEDIATE,
    so the identities read above cannot be inserted by anyone else before this one commits."""
    return session.get_bind().dialect.name == "sqlite"


async def _suggest(session: AsyncSession, account_id: int, found: _Found) -> None:
    """Every caller of `resolve_contact` gets this: a refused claim becomes a merge suggestion
    for an agent to review (the takeover guard), and a new contact is compared by name."""
    if found.conflicts:
        await suggestions.suggest_from_conflicts(
            session,
            account_id=account_id,
            contact_id=found.contact_id,
            conflicts=found.conflicts,
        )
    if found.created:
        assert found.contact is not None
        await suggestions.suggest_similar(session, contact=found.contact)


def _dedupe(claims: list[IdentityClaim]) -> list[IdentityClaim]:
    best: dict[tuple[str, str], IdentityClaim] = {}
    for claim in claims:
        key = (claim.kind, claim.value)
        if key not in best or _STRENGTH[claim.verification] > _STRENGTH[best[key].verification]:
            best[key] = claim
    return sorted(best.values(), key=lambda c: -_STRENGTH[c.verification])


async def _resolve(
    session: AsyncSession,
    *,
    account: Account,
    claims: list[IdentityClaim],
    name: str,
    existing: dict[tuple[str, str], _Known] | None = None,
    active_at: datetime | None = None,
) -> _Found:
    if existing is None:
        existing = await _identities_for(session, account.id, claims)
    contact_id = next(
        (
            existing[(c.kind, c.value)].contact_id
            for c in claims
            if (c.kind, c.value) in existing and _may_join(c, existing[(c.kind, c.value)])
        ),
        None,
    )
    if contact_id is None and all((c.kind, c.value) in existing for c in claims):
        # Every claim was refused: the same refused claim again is the same claimant.
        contact_id = await suggestions.earlier_claimant(
            session, account_id=account.id, holders=[existing[(c.kind, c.value)] for c in claims]
        )
    created = contact_id is None
    contact: Contact | None = None
    if contact_id is None:
        contact = await _create_contact(session, account_id=account.id, name=name, at=active_at)
        contact_id = contact.id
    elif active_at is None:
        contact = await session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            raise NotFound("contact")
        if name and not contact.name:
            contact.name = name.strip()[:200]
    else:
        await _lock_and_mark_active(session, contact_id, active_at=active_at, name=name)
    conflicts = await _attach(
        session, account_id=account.id, contact_id=contact_id, claims=claims, existing=existing
    )
    if created:
        events.record(
            session, account_id=account.id, event=events.ContactCreated(contact_id=contact_id)
        )
    return _Found(contact_id, contact, created, tuple(conflicts))


async def _create_contact(
    session: AsyncSession, *, account_id: int, name: str, at: datetime | None
) -> Contact:
    """A new contact, written with one Core INSERT; `at`: active since a message's time."""
    now = utcnow()
    return await insert_object(
        session,
        Contact,
        {
            "account_id": account_id,
            "name": name.strip()[:200],
            "company": "",
            "avatar_url": None,
            "attributes": {},
            "merged_into_id": None,
            "created_at": now,
            "updated_at": now,
            "last_activity_at": at or now,
        },
    )


async def _lock_and_mark_active(
    session: AsyncSession, contact_id: int, *, active_at: datetime, name: str
) -> None:
    """Lock the contact until commit and mark its activity in one statement (an UPDATE, which
    takes the row lock), giving it the sender's name if it has none; no object is loaded."""
    name = name.strip()[:200]
    row = await _LOCK_AND_MARK_ACTIVE.first(
        session, {"contact_id": contact_id, "active_at": active_at, "sender_name": name}
    )
    if row is None:
        raise NotFound("contact")
    sync_loaded(session, Contact, contact_id, {"last_activity_at": active_at, "name": row.name})


async def _returning_sender(
    session: AsyncSession,
    *,
    account_id: int,
    claim: IdentityClaim,
    name: str,
    active_at: datetime,
) -> tuple[_Found | None, dict[tuple[str, str], _Known]]:
    """PostgreSQL, a message's one sender identity: when it is known and may join its contact,
    the contact is locked and marked active and the identity marked seen (its verification
    raised by a stronger claim), all in the statement that reads the identity
    (`_RETURNING_SENDER`). Otherwise nothing is written, and what was read is handed to the
    general path, which decides without reading it again."""
    now = utcnow()
    claimed = Verification(claim.verification)
    weaker = [v.value for v in Verification if _STRENGTH[v] < _STRENGTH[claimed]]
    row = await _RETURNING_SENDER.first(
        session,
        {
            "account_id": account_id,
            "kind": claim.kind.value,
            "value": claim.value,
            "claim_trusted": claimed in TRUSTED_VERIFICATIONS,
            "trusted": [v.value for v in TRUSTED_VERIFICATIONS],
            "active_at": active_at,
            "sender_name": name.strip()[:200],
            "now": now,
            "weaker": weaker,
            "claimed": claimed.value,
        },
    )
    if row is None:  # a new identity
        return None, {}
    known = _Known(row.id, row.contact_id, row.kind, row.value, row.verification)
    if row.name is None:  # not joined (the takeover guard), or its contact is gone
        return None, {(known.kind, known.value): known}
    sync_loaded(
        session, Contact, known.contact_id, {"last_activity_at": active_at, "name": row.name}
    )
    raised = claimed.value if known.verification in weaker else None
    _synced_identity(session, known.id, now, raised)
    return _Found(known.contact_id, None, False, ()), {}


# The statements every inbound message runs are built once with their values bound, as Core
# statements on the tables: rows in, rows out, no ORM loading or flushing. Those of one row go
# straight to the driver (`Prepared`, ADR 11). No bound value is named like a column: Core
# would add it to an UPDATE's SET clause.
_CONTACTS = table_of(Contact)
_IDENTITIES_TABLE = table_of(Identity)
# A nameless contact takes the sender's name; an empty sender name leaves any name as it is.
_MARKED_ACTIVE = {
    "last_activity_at": bindparam("active_at"),
    "name": case((_CONTACTS.c.name == "", bindparam("sender_name")), else_=_CONTACTS.c.name),
}
_LOCK_AND_MARK_ACTIVE = Prepared(
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_id"))
    .values(_MARKED_ACTIVE)
    .returning(_CONTACTS.c.name)
)
_KNOWN = select(
    _IDENTITIES_TABLE.c.id,
    _IDENTITIES_TABLE.c.contact_id,
    _IDENTITIES_TABLE.c.kind,
    _IDENTITIES_TABLE.c.value,
    _IDENTITIES_TABLE.c.verification,
).where(_IDENTITIES_TABLE.c.account_id == bindparam("account_id"))
# A message usually carries one claim: a plain statement, not an expanding IN, whose SQL
# SQLAlchemy would render again on every execution.
_ONE_KNOWN = _KNOWN.where(
    _IDENTITIES_TABLE.c.kind == bindparam("kind"),
    _IDENTITIES_TABLE.c.value == bindparam("value"),
)
_IDENTITY = Prepared(_ONE_KNOWN)
_IDENTITIES = _KNOWN.where(
    tuple_(_IDENTITIES_TABLE.c.kind, _IDENTITIES_TABLE.c.value).in_(
        bindparam("keys", expanding=True)
    )
)
# PostgreSQL: a message's one sender identity read, and if it may join its contact (`_may_join`:
# a trusted claim, or an identity held without proof), the contact locked and marked active and
# the identity marked seen, its verification raised by a stronger claim. The contact's UPDATE
# is read by the main query, so it runs first; the identity's, a CTE nothing reads, runs after
# it (to completion, at the statement's end), only if the contact was there: the contact is
# locked before the identity, the order a merge takes. One row when the identity is known,
# with the contact's name only if it was locked.
_TEXTS = ARRAY(Text())
_SENDER = _ONE_KNOWN.cte("known")
_JOINABLE = (
    select(_SENDER.c.id, _SENDER.c.contact_id)
    .where(
        or_(
            bindparam("claim_trusted", type_=Boolean()),
            not_(_SENDER.c.verification == any_(bindparam("trusted", type_=_TEXTS))),
        )
    )
    .cte("joinable")
)
_SENDER_LOCKED = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == select(_JOINABLE.c.contact_id).scalar_subquery())
    .values(_MARKED_ACTIVE)
    .returning(_CONTACTS.c.name)
    .cte("locked")
)
_SENDER_SEEN = (
    update(_IDENTITIES_TABLE)
    .where(
        _IDENTITIES_TABLE.c.id == select(_JOINABLE.c.id).scalar_subquery(),
        select(_SENDER_LOCKED.c.name).exists(),
    )
    .values(
        last_seen_at=bindparam("now"),
        verification=case(
            (
                _IDENTITIES_TABLE.c.verification == any_(bindparam("weaker", type_=_TEXTS)),
                bindparam("claimed"),
            ),
            else_=_IDENTITIES_TABLE.c.verification,
        ),
    )
    .cte("seen")
)
_RETURNING_SENDER = Prepared(
    select(*_SENDER.c, _SENDER_LOCKED.c.name)
    .select_from(_SENDER.outerjoin(_SENDER_LOCKED, true()))
    .add_cte(_SENDER_SEEN)
)
_SEEN_ONE = Prepared(
    update(_IDENTITIES_TABLE)
    .where(_IDENTITIES_TABLE.c.id == bindparam("identity_id"))
    .values(last_seen_at=bindparam("now"))
)
_SEEN = (
    update(_IDENTITIES_TABLE)
    .where(_IDENTITIES_TABLE.c.id.in_(bindparam("ids", expanding=True)))
    .values(last_seen_at=bindparam("now"))
)
_SEEN_AND_VERIFIED = Prepared(
    update(_IDENTITIES_TABLE)
    .where(_IDENTITIES_TABLE.c.id == bindparam("identity_id"))
    .values(last_seen_at=bindparam("now"), verification=bindparam("stronger"))
)


async def _identities_for(
    session: AsyncSession, account_id: int, claims: list[IdentityClaim]
) -> dict[tuple[str, str], _Known]:
    if len(claims) == 1:
        (claim,) = claims
        rows = await _IDENTITY.all(
            session, {"account_id": account_id, "kind": claim.kind.value, "value": claim.value}
        )
    else:
        keys = [(c.kind.value, c.value) for c in claims]
        result = await session.execute(_IDENTITIES, {"account_id": account_id, "keys": keys})
        rows = list(result.all())
    return {(row.kind, row.value): _Known(*row) for row in rows}


async def _attach(
    session: AsyncSession,
    *,
    account_id: int,
    contact_id: int,
    claims: list[IdentityClaim],
    existing: dict[tuple[str, str], _Known],
) -> list[tuple[IdentityClaim, int]]:
    """Add the contact's new identities and mark its known ones seen (upgrading a weaker
    verification), in Core statements; an identity the session has loaded is kept in step."""
    now = utcnow()
    conflicts: list[tuple[IdentityClaim, int]] = []
    new: list[dict[str, object]] = []
    seen: list[int] = []
    for claim in claims:
        identity = existing.get((claim.kind, claim.value))
        if identity is None:
            new.append(
                {
                    "account_id": account_id,
                    "contact_id": contact_id,
                    "kind": claim.kind,
                    "value": claim.value,
                    "verification": claim.verification,
                    "opted_out_at": None,
                    "meta": {},
                    "created_at": now,
                    "last_seen_at": now,
                }
            )
        elif identity.contact_id != contact_id:
            conflicts.append((claim, identity.contact_id))
        elif _STRENGTH[claim.verification] > _STRENGTH[Verification(identity.verification)]:
            await _SEEN_AND_VERIFIED.all(
                session, {"identity_id": identity.id, "now": now, "stronger": claim.verification}
            )
            _synced_identity(session, identity.id, now, claim.verification)
        else:
            seen.append(identity.id)
    if seen:
        if len(seen) == 1:
            await _SEEN_ONE.all(session, {"identity_id": seen[0], "now": now})
        else:
            await session.execute(_SEEN, {"ids": seen, "now": now})
        for identity_id in seen:
            _synced_identity(session, identity_id, now)
    if new:
        await insert_rows(session, _IDENTITIES_TABLE, new)
    return conflicts


def _synced_identity(
    session: AsyncSession, identity_id: int, now: datetime, verification: str | None = None
) -> None:
    values: dict[str, object] = {"last_seen_at": now}
    if verification is not None:
        values["verification"] = verification
    sync_loaded(session, Identity, identity_id, values)


async def update_contact(
    session: AsyncSession, *, contact: Contact, name: str | None = None, company: str | None = None
) -> Contact:
    """Edit the profile fields an agent may change."""
    if contact.merged_into_id is not None:
        raise Conflict("This contact was merged into another one; edit that one instead.")
    changed: list[str] = []
    if name is not None and name.strip() != contact.name:
        contact.name = name.strip()[:200]
        changed.append("name")
    if company is not None and company.strip() != contact.company:
        contact.company = company.strip()[:200]
        changed.append("company")
    if changed:
        contact.updated_at = utcnow()
        events.record(
            session,
            account_id=contact.account_id,
            event=events.ContactUpdated(contact_id=contact.id, fields=changed),
        )
        await suggestions.suggest_similar(session, contact=contact)
    return contact


async def record_consent(
    session: AsyncSession,
    *,
    account: Account,
    claim: IdentityClaim,
    consent: Consent,
    channel: str,
    keyword: str,
) -> Identity | None:
    """Record STOP / START on the identity it came from; every later send on the channel obeys.

    Repeating the same keyword changes nothing and records nothing. None when the identity is
    unknown (it is created by the message that carried the keyword, so this runs after it).
    """
    normalised = normalise_claim(claim, default_region=account.default_region)
    identity = await session.scalar(
        select(Identity).where(
            Identity.account_id == account.id,
            Identity.kind == normalised.kind,
            Identity.value == normalised.value,
        )
    )
    if identity is None:
        return None
    opted_out = consent == Consent.opt_out
    if (identity.opted_out_at is not None) == opted_out:
        return identity
    identity.opted_out_at = utcnow() if opted_out else None
    events.record(
        session,
        account_id=account.id,
        event=events.ConsentChanged(
            contact_id=identity.contact_id,
            identity_id=identity.id,
            channel=channel,
            opted_out=opted_out,
            keyword=keyword[:40],
        ),
    )
    return identity


# --- the JSON API's contact management ---------------------------------------------------------


async def _taken(session: AsyncSession, account_id: int, claim: IdentityClaim) -> Identity | None:
    found: Identity | None = await session.scalar(
        select(Identity).where(
            Identity.account_id == account_id,
            Identity.kind == claim.kind,
            Identity.value == claim.value,
        )
    )
    return found


async def create_contact(
    session: AsyncSession,
    *,
    account: Account,
    actor: User,
    name: str = "",
    company: str = "",
    claims: Sequence[IdentityClaim] = (),
) -> Contact:
    """A new contact with its identities; an identity another contact holds is a conflict."""
    normalised = _dedupe(
        [normalise_claim(c, default_region=account.default_region) for c in claims]
    )
    for claim in normalised:
        holder = await _taken(session, account.id, claim)
        if holder is not None:
            raise Conflict(
                f"the {claim.kind} {claim.value} already belongs to contact {holder.contact_id}"
            )
    contact = Contact(account_id=account.id, name=name.strip()[:200], company=company.strip()[:200])
    session.add(contact)
    await session.flush()
    events.record(
        session,
        account_id=account.id,
        event=events.ContactCreated(contact_id=contact.id),
        actor_user_id=actor.id,
    )
    for claim in normalised:
        await _add_identity(session, contact=contact, claim=claim, actor=actor)
    return contact


async def _add_identity(
    session: AsyncSession, *, contact: Contact, claim: IdentityClaim, actor: User
) -> Identity:
    identity = Identity(
        account_id=contact.account_id,
        contact_id=contact.id,
        kind=claim.kind,
        value=claim.value,
        verification=claim.verification,
        last_seen_at=None,
    )
    session.add(identity)
    await session.flush()
    events.record(
        session,
        account_id=contact.account_id,
        event=events.IdentityAdded(
            contact_id=contact.id,
            identity_id=identity.id,
            kind=identity.kind,
            verification=identity.verification,
        ),
        actor_user_id=actor.id,
    )
    return identity


async def add_identity(
    session: AsyncSession, *, account: Account, contact: Contact, claim: IdentityClaim, actor: User
) -> Identity:
    """Give a contact one more address. Adding one it already has is a no-op (a safe retry);
    one another contact holds is a conflict: merge the two contacts instead."""
    if contact.account_id != account.id:
        raise NotFound("contact")
    if contact.merged_into_id is not None:
        raise Conflict(f"this contact was merged into contact {contact.merged_into_id}")
    normalised = normalise_claim(claim, default_region=account.default_region)
    holder = await _taken(session, account.id, normalised)
    if holder is not None and holder.contact_id == contact.id:
        return holder
    if holder is not None:
        raise Conflict(
            f"the {normalised.kind} {normalised.value} already belongs to contact "
            f"{holder.contact_id}; merge the contacts instead"
        )
    return await _add_identity(session, contact=contact, claim=normalised, actor=actor)


async def remove_identity(
    session: AsyncSession, *, contact: Contact, identity_id: int, actor: User
) -> None:
    """Take an address off a contact (messages from it will start a new contact)."""
    identity = await session.get(Identity, identity_id)
    if identity is None or identity.contact_id != contact.id:
        raise NotFound("identity")
    events.record(
        session,
        account_id=contact.account_id,
        event=events.IdentityRemoved(
            contact_id=contact.id, identity_id=identity.id, kind=identity.kind
        ),
        actor_user_id=actor.id,
    )
    await session.delete(identity)
    await session.flush()


async def delete_contact(session: AsyncSession, *, contact: Contact, actor: User) -> None:
    """Erase a contact: the profile, its identities, conversations and messages (a customer's
    right to erasure), and the contacts merged into it, which would otherwise come back.
    The event log keeps only ids: `contact.deleted` and the rows' references become empty.

    The attachments' stored files go too, by `files.delete` jobs written in this transaction:
    they run only once the erasure has committed (a rolled-back erasure keeps its files), and
    still run if the process dies right after the commit."""
    doomed = [contact.id]
    frontier = [contact.id]
    while frontier:
        frontier = list(
            await session.scalars(select(Contact.id).where(Contact.merged_into_id.in_(frontier)))
        )
        doomed += frontier
    keys = await _stored_files(session, doomed)
    await session.execute(delete(Contact).where(Contact.id.in_(doomed)))
    session.expunge(contact)
    for start in range(0, len(keys), FILES_PER_JOB):
        outbox.enqueue(
            session,
            kind=DELETE_FILES_JOB,
            payload={"keys": keys[start : start + FILES_PER_JOB]},
            account_id=contact.account_id,
        )
    events.record(
        session,
        account_id=contact.account_id,
        event=events.ContactDeleted(contact_id=contact.id),
        actor_user_id=actor.id,
    )


async def _stored_files(session: AsyncSession, contact_ids: list[int]) -> list[str]:
    """The storage keys of every attachment in these contacts' conversations."""
    keys = await session.scalars(
        select(Attachment.storage_key)
        .join(Message, Message.id == Attachment.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.contact_id.in_(contact_ids))
        .order_by(Attachment.id)
    )
    return list(dict.fromkeys(keys))


# --- custom attributes ------------------------------------------------------------------------


async def define_attribute(
    session: AsyncSession,
    *,
    account_id: int,
    label: str,
    kind: str,
    key: str = "",
    options: Sequence[str] | str = (),
    actor_user_id: int | None = None,
) -> AttributeDefinition:
    """Add a custom attribute to the account's contacts (its type is fixed from then on)."""
    clean_label = " ".join(label.replace("\x00", "").split())[:120]
    if not clean_label:
        raise InvalidInput("an attribute needs a label", field="label")
    try:
        attribute_kind = AttributeKind(kind)
    except ValueError:
        raise InvalidInput("unknown attribute type", field="kind") from None
    clean_key = policies.check_key(key.strip() or policies.key_from_label(clean_label))
    taken = await session.scalar(
        select(AttributeDefinition.id).where(
            AttributeDefinition.account_id == account_id, AttributeDefinition.key == clean_key
        )
    )
    if taken is not None:
        raise Conflict("an attribute with this key already exists")
    position = await session.scalar(
        select(func.count()).where(AttributeDefinition.account_id == account_id)
    )
    definition = AttributeDefinition(
        account_id=account_id,
        key=clean_key,
        label=clean_label,
        kind=attribute_kind,
        options=policies.parse_options(attribute_kind, options),
        position=int(position or 0),
    )
    session.add(definition)
    await session.flush()
    _definition_changed(session, definition, events.Change.created, actor_user_id)
    return definition


async def update_attribute(
    session: AsyncSession,
    *,
    definition: AttributeDefinition,
    label: str,
    options: Sequence[str] | str = (),
    actor_user_id: int | None = None,
) -> AttributeDefinition:
    """Rename an attribute or change its options; values already stored are kept."""
    clean_label = " ".join(label.replace("\x00", "").split())[:120]
    if not clean_label:
        raise InvalidInput("an attribute needs a label", field="label")
    definition.label = clean_label
    definition.options = policies.parse_options(AttributeKind(definition.kind), options)
    await session.flush()
    _definition_changed(session, definition, events.Change.updated, actor_user_id)
    return definition


async def delete_attribute(
    session: AsyncSession, *, definition: AttributeDefinition, actor_user_id: int | None = None
) -> None:
    """Remove the definition; contacts' stored values stay in their JSON but are no longer shown."""
    _definition_changed(session, definition, events.Change.deleted, actor_user_id)
    await session.delete(definition)
    await session.flush()


def _definition_changed(
    session: AsyncSession,
    definition: AttributeDefinition,
    change: events.Change,
    actor_user_id: int | None,
) -> None:
    events.record(
        session,
        account_id=definition.account_id,
        event=events.AttributeDefinitionChanged(
            definition_id=definition.id, key=definition.key, change=change
        ),
        actor_user_id=actor_user_id,
    )


async def set_attributes(
    session: AsyncSession,
    *,
    contact: Contact,
    definitions: Sequence[AttributeDefinition],
    values: Mapping[str, object],
    actor_user_id: int | None = None,
) -> list[str]:
    """Set the given attributes (an empty value unsets one); every value is checked first.

    All-or-nothing: the first invalid value raises InvalidInput naming its key, and nothing
    changes. Returns the keys whose value changed.
    """
    by_key = {d.key: d for d in definitions}
    parsed: dict[str, policies.AttributeValue | None] = {}
    for key, raw in values.items():
        definition = by_key.get(key)
        if definition is None:
            raise InvalidInput("unknown attribute", field=key)
        try:
            parsed[key] = policies.parse_value(
                AttributeKind(definition.kind), definition.options, raw
            )
        except InvalidInput as exc:
            raise InvalidInput(str(exc), field=key) from None
    current = dict(contact.attributes or {})
    changed = [key for key, value in parsed.items() if current.get(key) != value]
    if not changed:
        return []
    for key in changed:
        if parsed[key] is None:
            current.pop(key, None)
        else:
            current[key] = parsed[key]
    contact.attributes = current  # a new dict, so the JSON column is seen as changed
    contact.updated_at = utcnow()
    events.record(
        session,
        account_id=contact.account_id,
        event=events.ContactUpdated(contact_id=contact.id, fields=["attributes"]),
        actor_user_id=actor_user_id,
    )
    return changed


# --- labels -----------------------------------------------------------------------------------


async def create_label(
    session: AsyncSession,
    *,
    account_id: int,
    name: str,
    color: str | None = None,
    actor_user_id: int | None = None,
) -> Label:
    clean, colour = policies.check_label(name, color)
    taken = await session.scalar(
        select(Label.id).where(Label.account_id == account_id, Label.name == clean)
    )
    if taken is not None:
        raise Conflict("a label with this name already exists")
    label = Label(account_id=account_id, name=clean, color=colour)
    session.add(label)
    await session.flush()
    _label_changed(session, label, events.Change.created, actor_user_id)
    return label


async def label_named(
    session: AsyncSession, *, account_id: int, name: str, actor_user_id: int | None = None
) -> Label:
    """The account's label with this name, created when there is none (typed in the box)."""
    clean, _ = policies.check_label(name, None)
    found = await session.scalar(
        select(Label).where(Label.account_id == account_id, Label.name == clean)
    )
    if found is not None:
        return found
    return await create_label(
        session, account_id=account_id, name=clean, actor_user_id=actor_user_id
    )


async def update_label(
    session: AsyncSession,
    *,
    label: Label,
    name: str,
    color: str | None,
    actor_user_id: int | None = None,
) -> Label:
    clean, colour = policies.check_label(name, color)
    if clean != label.name:
        taken = await session.scalar(
            select(Label.id).where(Label.account_id == label.account_id, Label.name == clean)
        )
        if taken is not None:
            raise Conflict("a label with this name already exists")
    label.name, label.color = clean, colour
    await session.flush()
    _label_changed(session, label, events.Change.updated, actor_user_id)
    return label


async def delete_label(
    session: AsyncSession, *, label: Label, actor_user_id: int | None = None
) -> None:
    """Delete the label; it comes off every contact that carried it."""
    _label_changed(session, label, events.Change.deleted, actor_user_id)
    await session.execute(delete(ContactLabel).where(ContactLabel.label_id == label.id))
    await session.delete(label)
    await session.flush()


async def add_label(
    session: AsyncSession, *, contact: Contact, label: Label, actor_user_id: int | None = None
) -> bool:
    """Put a label on a contact; False when it already carries it."""
    if label.account_id != contact.account_id:
        raise NotFound("label")
    if await session.get(ContactLabel, (contact.id, label.id)) is not None:
        return False
    session.add(ContactLabel(contact_id=contact.id, label_id=label.id, account_id=label.account_id))
    await session.flush()
    _labels_changed(session, contact, actor_user_id)
    return True


async def remove_label(
    session: AsyncSession, *, contact: Contact, label: Label, actor_user_id: int | None = None
) -> bool:
    """Take a label off a contact; False when it did not carry it."""
    link = await session.get(ContactLabel, (contact.id, label.id))
    if link is None or label.account_id != contact.account_id:
        return False
    await session.delete(link)
    await session.flush()
    _labels_changed(session, contact, actor_user_id)
    return True


def _label_changed(
    session: AsyncSession, label: Label, change: events.Change, actor_user_id: int | None
) -> None:
    events.record(
        session,
        account_id=label.account_id,
        event=events.LabelChanged(label_id=label.id, name=label.name, change=change),
        actor_user_id=actor_user_id,
    )


def _labels_changed(session: AsyncSession, contact: Contact, actor_user_id: int | None) -> None:
    contact.updated_at = utcnow()
    events.record(
        session,
        account_id=contact.account_id,
        event=events.ContactUpdated(contact_id=contact.id, fields=["labels"]),
        actor_user_id=actor_user_id,
    )


# --- custom events ----------------------------------------------------------------------------

# How far ahead of our clock a reported time may be (the caller's clock may run a little fast).
FUTURE_TOLERANCE = timedelta(days=1)


async def record_custom_event(
    session: AsyncSession,
    *,
    account_id: int,
    contact_id: int,
    name: str,
    properties: dict[str, Any],
    occurred_at: datetime | None = None,
    actor_user_id: int | None = None,
) -> events.ContactCustomEvent:
    """Append something the customer did elsewhere (an order placed) to their timeline.

    A contact that was merged away records on the contact it was merged into, so integrations
    holding an old id keep working.
    """
    clean_name, clean_properties = policies.check_custom_event(name, properties)
    try:
        when = ensure_utc(occurred_at) if occurred_at is not None else utcnow()
    except (OverflowError, ValueError):  # e.g. year 1 with a positive offset
        raise InvalidInput("occurred_at is not a usable time", field="occurred_at") from None
    if when > utcnow() + FUTURE_TOLERANCE:
        raise InvalidInput("occurred_at is in the future", field="occurred_at")
    contact = await _live_contact(session, account_id=account_id, contact_id=contact_id)
    event = events.ContactCustomEvent(
        contact_id=contact.id, name=clean_name, properties=clean_properties, occurred_at=when
    )
    events.record(session, account_id=account_id, event=event, actor_user_id=actor_user_id)
    contact.last_activity_at = max(contact.last_activity_at, when)
    return event


async def _live_contact(session: AsyncSession, *, account_id: int, contact_id: int) -> Contact:
    contact = await session.get(Contact, contact_id)
    for _ in range(10):  # merges chain at most a few times; the bound guards a broken cycle
        if contact is None or contact.account_id != account_id:
            raise NotFound("contact")
        if contact.merged_into_id is None:
            return contact
        contact = await session.get(Contact, contact.merged_into_id)
    raise NotFound("contact")
