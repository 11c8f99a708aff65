"""Merge suggestions: pairs of contacts that may be one customer, scored, with their reasons.

Found three ways: a claim the takeover guard refused (someone typed an address another contact
holds with proof), what a website visitor typed before (the widget's pre-chat form, kept on the
visitor session), and a similar name at a similar company (rapidfuzz). An agent reviews them;
nothing is merged automatically.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from rapidfuzz import fuzz
from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.merge_models import MergeSuggestion, SuggestionStatus
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.contacts.policies import normalise_claim
from rapport.domain.errors import InvalidInput
from rapport.domain.ports import IdentityClaim
from rapport.domain.visitors.models import VisitorSession
from rapport.lib.clock import utcnow

# A shared phone or email address is strong evidence; a name and company alone, less so.
SAME_IDENTITY_SCORE = 90
OTHER_IDENTITY_SCORE = 80
NAME_COMPANY_MAX_SCORE = 80
EXTRA_REASON_BONUS = 5
# rapidfuzz token-sort ratios (0-100) both name and company must reach.
NAME_THRESHOLD = 85
COMPANY_THRESHOLD = 85
# How many contacts with a similar-looking name or company are compared per scan.
NAME_CANDIDATES = 200
TYPED_FIELDS = (("email", IdentityKind.email), ("phone", IdentityKind.phone))

Reason = dict[str, Any]


def identity_reason(kind: str, value: str) -> Reason:
    """'Same email address' / 'Same phone number': the claim named what the other holds."""
    code = {IdentityKind.email: "same_email", IdentityKind.phone: "same_phone"}.get(
        IdentityKind(kind), "same_identity"
    )
    return {"code": code, "kind": kind, "value": value}


def _fold(text: str) -> str:
    """Lower case without accents, so 'Ruíz' and 'ruiz' compare as the same word."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def name_company_reason(contact: Contact, other: Contact) -> Reason | None:
    """Similar name at a similar company (both needed: a common name alone proves nothing)."""
    if not (contact.name.strip() and contact.company.strip()):
        return None
    if not (other.name.strip() and other.company.strip()):
        return None
    name = fuzz.token_sort_ratio(_fold(contact.name), _fold(other.name))
    company = fuzz.token_sort_ratio(_fold(contact.company), _fold(other.company))
    if name < NAME_THRESHOLD or company < COMPANY_THRESHOLD:
        return None
    return {"code": "similar_name_company", "name": round(name), "company": round(company)}


def _reason_score(reason: Reason) -> int:
    if reason["code"] in ("same_email", "same_phone"):
        return SAME_IDENTITY_SCORE
    if reason["code"] == "similar_name_company":
        blended = 0.6 * reason["name"] + 0.4 * reason["company"]
        return round(float(blended) * NAME_COMPANY_MAX_SCORE / 100)
    return OTHER_IDENTITY_SCORE


def score_of(reasons: Sequence[Reason]) -> int:
    """The strongest reason's score, a little more for each further reason, at most 100."""
    if not reasons:
        return 0
    best = max(_reason_score(r) for r in reasons)
    return min(100, best + EXTRA_REASON_BONUS * (len(reasons) - 1))


def _key(reason: Reason) -> tuple[str, str]:
    return (str(reason["code"]), str(reason.get("value", "")))


def _combined(old: Sequence[Reason], new: Iterable[Reason]) -> list[Reason]:
    by_key = {_key(r): r for r in old}
    for reason in new:
        by_key[_key(reason)] = reason
    return sorted(by_key.values(), key=lambda r: (-_reason_score(r), _key(r)))


async def suggest_pair(
    session: AsyncSession, *, account_id: int, contact_id: int, other_id: int, reasons: list[Reason]
) -> MergeSuggestion | None:
    """Create or strengthen the suggestion for this pair. A dismissed one stays dismissed."""
    if contact_id == other_id or not reasons:
        return None
    low, high = sorted((contact_id, other_id))
    try:
        async with session.begin_nested():
            return await _upsert(session, account_id, low, high, reasons)
    except IntegrityError:
        # Another transaction suggested the same pair at the same moment: add to theirs.
        return await _upsert(session, account_id, low, high, reasons)


async def _upsert(
    session: AsyncSession, account_id: int, low: int, high: int, reasons: list[Reason]
) -> MergeSuggestion:
    found = await session.scalar(
        select(MergeSuggestion).where(
            MergeSuggestion.account_id == account_id,
            MergeSuggestion.contact_id == low,
            MergeSuggestion.other_contact_id == high,
        )
    )
    if found is None:
        found = MergeSuggestion(
            account_id=account_id,
            contact_id=low,
            other_contact_id=high,
            reasons=_combined([], reasons),
            status=SuggestionStatus.pending,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        found.score = score_of(found.reasons)
        session.add(found)
        await session.flush()
        _record(session, found)
        return found
    combined = _combined(found.reasons, reasons)
    if combined != found.reasons:
        found.reasons = combined
        found.score = score_of(combined)
        found.updated_at = utcnow()
        await session.flush()
    return found


def _record(session: AsyncSession, suggestion: MergeSuggestion) -> None:
    events.record(
        session,
        account_id=suggestion.account_id,
        event=events.MergeSuggested(
            contact_id=suggestion.contact_id,
            other_contact_id=suggestion.other_contact_id,
            suggestion_id=suggestion.id,
            score=suggestion.score,
        ),
    )


async def suggest_from_conflicts(
    session: AsyncSession,
    *,
    account_id: int,
    contact_id: int,
    conflicts: Sequence[tuple[IdentityClaim, int]],
) -> list[MergeSuggestion]:
    """The takeover guard refused these claims: let an agent decide instead of the customer."""
    by_other: dict[int, list[Reason]] = defaultdict(list)
    for claim, other_id in conflicts:
        by_other[other_id].append(identity_reason(claim.kind, claim.value))
    found = []
    for other_id, reasons in sorted(by_other.items()):
        suggestion = await suggest_pair(
            session,
            account_id=account_id,
            contact_id=contact_id,
            other_id=other_id,
            reasons=reasons,
        )
        if suggestion is not None:
            found.append(suggestion)
    return found


class Holder(Protocol):
    """What `earlier_claimant` reads of an identity that refused a claim."""

    @property
    def contact_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...


async def earlier_claimant(
    session: AsyncSession, *, account_id: int, holders: Sequence[Holder]
) -> int | None:
    """The contact an earlier message with exactly these refused claims made, if still alone.

    An email whose sender could not be authenticated, from an address another contact holds
    with proof, gets a contact of its own with no identity; without this every such email would
    start yet another contact. A claimant is reused only while it holds no identity at all
    (so never a widget visitor, who has their own) and was not merged.
    """
    wanted = {(h.kind, h.value) for h in holders}
    owners = {h.contact_id for h in holders}
    # Two such mails processed at once must find the same claimant: the first to lock the
    # holder makes it, the second sees it once the first commits. FOR NO KEY UPDATE, so that
    # other transactions' foreign-key checks on the holder (their events) are not blocked.
    await session.execute(
        select(Contact.id)
        .where(Contact.id.in_(sorted(owners)))
        .order_by(Contact.id)
        .with_for_update(key_share=True)
    )
    rows = await session.scalars(
        select(MergeSuggestion)
        .where(
            MergeSuggestion.account_id == account_id,
            MergeSuggestion.status != SuggestionStatus.accepted,
            or_(
                MergeSuggestion.contact_id.in_(owners),
                MergeSuggestion.other_contact_id.in_(owners),
            ),
        )
        .order_by(MergeSuggestion.id.desc())
        .limit(20)
    )
    for suggestion in rows:
        claimant = (
            suggestion.contact_id
            if suggestion.other_contact_id in owners
            else suggestion.other_contact_id
        )
        named = {(r.get("kind"), r.get("value")) for r in suggestion.reasons}
        if claimant not in owners and wanted <= named and await _alone(session, claimant):
            return claimant
    return None


async def _alone(session: AsyncSession, contact_id: int) -> bool:
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.merged_into_id is not None:
        return False
    held = await session.scalar(
        select(Identity.id).where(Identity.contact_id == contact_id).limit(1)
    )
    return held is None


async def suggest_similar(session: AsyncSession, *, contact: Contact) -> None:
    """On creation and on a name or company change: compare names (free without a company)."""
    await _suggest_found(session, contact, await _name_matches(session, contact))


async def scan_contact(session: AsyncSession, *, contact: Contact) -> list[MergeSuggestion]:
    """Look for this contact's likely duplicates now; returns its pending suggestions."""
    if contact.merged_into_id is not None:
        return []
    found = await _typed_matches(session, contact) + await _name_matches(session, contact)
    await _suggest_found(session, contact, found)
    return await pending_for(session, account_id=contact.account_id, contact_id=contact.id)


async def _suggest_found(
    session: AsyncSession, contact: Contact, found: list[tuple[int, Reason]]
) -> None:
    by_other: dict[int, list[Reason]] = defaultdict(list)
    for other_id, reason in found:
        by_other[other_id].append(reason)
    for other_id, reasons in sorted(by_other.items()):
        await suggest_pair(
            session,
            account_id=contact.account_id,
            contact_id=contact.id,
            other_id=other_id,
            reasons=reasons,
        )


async def pending_for(
    session: AsyncSession, *, account_id: int, contact_id: int
) -> list[MergeSuggestion]:
    rows = await session.scalars(
        select(MergeSuggestion)
        .where(
            MergeSuggestion.account_id == account_id,
            MergeSuggestion.status == SuggestionStatus.pending,
            or_(
                MergeSuggestion.contact_id == contact_id,
                MergeSuggestion.other_contact_id == contact_id,
            ),
        )
        .order_by(MergeSuggestion.score.desc(), MergeSuggestion.id)
    )
    return list(rows)


def _typed_claims(visits: Iterable[VisitorSession], region: str | None) -> set[tuple[str, str]]:
    """What visitors typed into the widget (kept on their sessions), normalised."""
    found: set[tuple[str, str]] = set()
    for visit in visits:
        for field, kind in TYPED_FIELDS:
            raw = str(visit.details.get(field) or "").strip()
            if not raw:
                continue
            typed = IdentityClaim(kind, raw, Verification.unverified)
            try:
                claim = normalise_claim(typed, default_region=region)
            except InvalidInput:
                continue  # kept on the session as typed; it names nobody
            found.add((kind.value, claim.value))
    return found


async def _typed_matches(session: AsyncSession, contact: Contact) -> list[tuple[int, Reason]]:
    visitor_ids = select(Identity.value).where(
        Identity.contact_id == contact.id, Identity.kind == IdentityKind.webchat
    )
    visits = await session.scalars(
        select(VisitorSession).where(
            VisitorSession.account_id == contact.account_id,
            VisitorSession.visitor_id.in_(visitor_ids),
        )
    )
    region = await _region(session, contact.account_id)
    typed = _typed_claims(visits, region)
    if not typed:
        return []
    rows = await session.execute(
        select(Identity.contact_id, Identity.kind, Identity.value)
        .join(Contact, Contact.id == Identity.contact_id)
        .where(
            Identity.account_id == contact.account_id,
            tuple_(Identity.kind, Identity.value).in_(sorted(typed)),
            Identity.contact_id != contact.id,
            Contact.merged_into_id.is_(None),
        )
    )
    return [(owner, identity_reason(kind, value)) for owner, kind, value in rows.all()]


async def _region(session: AsyncSession, account_id: int) -> str | None:
    account = await session.get(Account, account_id)
    return account.default_region if account is not None else None


def _prefix(text: str) -> str:
    return text.strip().lower()[:3]


async def _name_matches(session: AsyncSession, contact: Contact) -> list[tuple[int, Reason]]:
    if not (contact.name.strip() and contact.company.strip()):
        return []
    name_prefix, company_prefix = _prefix(contact.name), _prefix(contact.company)
    candidates = await session.scalars(
        select(Contact)
        .where(
            Contact.account_id == contact.account_id,
            Contact.id != contact.id,
            Contact.merged_into_id.is_(None),
            Contact.company != "",
            or_(
                func.lower(Contact.company).startswith(company_prefix, autoescape=True),
                func.lower(Contact.name).startswith(name_prefix, autoescape=True),
            ),
        )
        .order_by(Contact.last_activity_at.desc())
        .limit(NAME_CANDIDATES)
    )
    found = []
    for other in candidates:
        reason = name_company_reason(contact, other)
        if reason is not None:
            found.append((other.id, reason))
    return found
