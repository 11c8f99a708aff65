"""Contact actions: the only place contacts and identities change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.contacts import suggestions
from rapport.domain.contacts.models import (
    TRUSTED_VERIFICATIONS,
    Contact,
    Identity,
    IdentityKind,
    Verification,
)
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.ports import Consent, IdentityClaim
from rapport.lib.clock import utcnow
from rapport.lib.identities import InvalidIdentity, normalise_email, normalise_phone

# Strongest first: a stronger claim upgrades an identity's recorded verification.
_STRENGTH = {
    Verification.provider: 3,
    Verification.verified: 2,
    Verification.agent: 1,
    Verification.unverified: 0,
}


def normalise_claim(claim: IdentityClaim, *, default_region: str) -> IdentityClaim:
    """The claim with its value in canonical form (E.164 phones, case-folded emails)."""
    try:
        if claim.kind == IdentityKind.phone:
            value = normalise_phone(claim.value, default_region)
        elif claim.kind == IdentityKind.email:
            value = normalise_email(claim.value)
        else:
            value = claim.value.strip()
    except InvalidIdentity as exc:
        raise InvalidInput(str(exc), field=claim.kind) from exc
    if not value:
        raise InvalidInput(f"empty {claim.kind} identity", field=claim.kind)
    return IdentityClaim(claim.kind, value, claim.verification)


def _may_join(claim: IdentityClaim, existing: Identity) -> bool:
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


async def resolve_contact(
    session: AsyncSession,
    *,
    account: Account,
    claims: Sequence[IdentityClaim],
    name: str = "",
) -> ResolvedContact:
    """Find the contact these identities belong to, creating or linking as needed."""
    normalised = _dedupe(
        [normalise_claim(c, default_region=account.default_region) for c in claims]
    )
    if not normalised:
        raise InvalidInput("a message needs at least one sender identity")
    try:
        async with session.begin_nested():
            resolved = await _resolve(session, account=account, claims=normalised, name=name)
    except IntegrityError:
        # A concurrent transaction created one of these identities first: resolve again.
        resolved = await _resolve(session, account=account, claims=normalised, name=name)
    await _suggest(session, resolved)
    return resolved


async def _suggest(session: AsyncSession, resolved: ResolvedContact) -> None:
    """Every caller of `resolve_contact` gets this: a refused claim becomes a merge suggestion
    for an agent to review (the takeover guard), and a new contact is compared by name."""
    contact = resolved.contact
    if resolved.conflicts:
        await suggestions.suggest_from_conflicts(
            session,
            account_id=contact.account_id,
            contact_id=contact.id,
            conflicts=resolved.conflicts,
        )
    if resolved.created:
        await suggestions.suggest_similar(session, contact=contact)


def _dedupe(claims: list[IdentityClaim]) -> list[IdentityClaim]:
    best: dict[tuple[str, str], IdentityClaim] = {}
    for claim in claims:
        key = (claim.kind, claim.value)
        if key not in best or _STRENGTH[claim.verification] > _STRENGTH[best[key].verification]:
            best[key] = claim
    return sorted(best.values(), key=lambda c: -_STRENGTH[c.verification])


async def _resolve(
    session: AsyncSession, *, account: Account, claims: list[IdentityClaim], name: str
) -> ResolvedContact:
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
    if contact_id is None:
        contact = Contact(account_id=account.id, name=name.strip()[:200])
        session.add(contact)
        await session.flush()
    else:
        found = await session.get(Contact, contact_id)
        if found is None:
            raise NotFound("contact")
        contact = found
        if name and not contact.name:
            contact.name = name.strip()[:200]
    conflicts = await _attach(session, contact=contact, claims=claims, existing=existing)
    if created:
        events.record(
            session, account_id=account.id, event=events.ContactCreated(contact_id=contact.id)
        )
    return ResolvedContact(contact, created, tuple(conflicts))


async def _identities_for(
    session: AsyncSession, account_id: int, claims: list[IdentityClaim]
) -> dict[tuple[str, str], Identity]:
    keys = [(c.kind.value, c.value) for c in claims]
    rows = await session.scalars(
        select(Identity).where(
            Identity.account_id == account_id, tuple_(Identity.kind, Identity.value).in_(keys)
        )
    )
    return {(row.kind, row.value): row for row in rows}


async def _attach(
    session: AsyncSession,
    *,
    contact: Contact,
    claims: list[IdentityClaim],
    existing: dict[tuple[str, str], Identity],
) -> list[tuple[IdentityClaim, int]]:
    now = utcnow()
    conflicts: list[tuple[IdentityClaim, int]] = []
    for claim in claims:
        identity = existing.get((claim.kind, claim.value))
        if identity is None:
            session.add(
                Identity(
                    account_id=contact.account_id,
                    contact_id=contact.id,
                    kind=claim.kind,
                    value=claim.value,
                    verification=claim.verification,
                    last_seen_at=now,
                )
            )
        elif identity.contact_id != contact.id:
            conflicts.append((claim, identity.contact_id))
        else:
            identity.last_seen_at = now
            if _STRENGTH[claim.verification] > _STRENGTH[Verification(identity.verification)]:
                identity.verification = claim.verification
    await session.flush()
    return conflicts


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
    The event log keeps only ids: `contact.deleted` and the rows' references become empty."""
    doomed = [contact.id]
    frontier = [contact.id]
    while frontier:
        frontier = list(
            await session.scalars(select(Contact.id).where(Contact.merged_into_id.in_(frontier)))
        )
        doomed += frontier
    await session.execute(delete(Contact).where(Contact.id.in_(doomed)))
    session.expunge(contact)
    events.record(
        session,
        account_id=contact.account_id,
        event=events.ContactDeleted(contact_id=contact.id),
        actor_user_id=actor.id,
    )
