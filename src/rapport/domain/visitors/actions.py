"""Visitor actions: starting a widget session, what the visitor tells us, proving who they are.

The visitor's own address is a `webchat` identity whose value is the session's `visitor_id`,
asserted by the channel (the browser holds the token). What a visitor types (pre-chat form,
offline email) is only a claim (`Verification.unverified`); what the customer's site proves
(HMAC or JWT) is `verified` and may link the session to an existing contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.actions import resolve_contact
from rapport.domain.contacts.models import Contact, IdentityKind, Verification
from rapport.domain.contacts.policies import normalise_claim
from rapport.domain.conversations.actions import conversation_for_contact, find_open_conversation
from rapport.domain.conversations.models import Conversation
from rapport.domain.errors import InvalidInput
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.domain.visitors.models import VisitorSession
from rapport.domain.visitors.queries import contact_ids_holding, visitor_contact
from rapport.lib.clock import utcnow
from rapport.lib.crypto import random_token, sha256_hex

TOKEN_PREFIX = "rv_"
TOUCH_EVERY = timedelta(minutes=5)
DETAIL_FIELDS = ("name", "email", "phone")


def visitor_claim(visit: VisitorSession) -> IdentityClaim:
    """The visitor's own address on the `webchat` kind, vouched for by the session token."""
    return IdentityClaim(IdentityKind.webchat, visit.visitor_id, Verification.provider)


def _new_visitor_id() -> str:
    return "v_" + random_token(15)


async def start_visit(
    session: AsyncSession, *, inbox: Inbox, locale: str | None = None
) -> tuple[VisitorSession, str]:
    """A new widget session; returns it and the token the browser keeps (shown only now)."""
    token = TOKEN_PREFIX + random_token(30)
    visit = VisitorSession(
        account_id=inbox.account_id,
        inbox_id=inbox.id,
        token_hash=sha256_hex(token),
        visitor_id=_new_visitor_id(),
        details={"locale": locale} if locale else {},
        created_at=utcnow(),
        last_seen_at=utcnow(),
    )
    session.add(visit)
    await session.flush()
    return visit, token


async def touch_visit(session: AsyncSession, *, visit: VisitorSession) -> None:
    """Record that the visitor came back, at most every few minutes so reads stay reads."""
    now = utcnow()
    if now - visit.last_seen_at > TOUCH_EVERY:
        visit.last_seen_at = now


async def bind_conversation(
    session: AsyncSession, *, account: Account, inbox: Inbox, visit: VisitorSession
) -> Conversation:
    """The conversation the visitor's next message goes to: bound already, or found/started now."""
    if visit.conversation_id is not None:
        bound = await session.get(Conversation, visit.conversation_id)
        if bound is not None:
            return bound
    contact = await _visitor_contact_or_new(session, account=account, visit=visit)
    conversation = await conversation_for_contact(
        session, account=account, inbox=inbox, contact=contact
    )
    visit.conversation_id = conversation.id
    return conversation


async def _visitor_contact_or_new(
    session: AsyncSession, *, account: Account, visit: VisitorSession
) -> Contact:
    found = await visitor_contact(session, visit=visit)
    if found is not None:
        return found
    name = str(visit.details.get("name") or "")
    resolved = await resolve_contact(
        session, account=account, claims=[visitor_claim(visit)], name=name
    )
    return resolved.contact


@dataclass(frozen=True)
class Details:
    """What a visitor typed into the pre-chat form or the offline email box."""

    name: str = ""
    email: str = ""
    phone: str = ""


async def add_visitor_details(
    session: AsyncSession, *, account: Account, visit: VisitorSession, details: Details
) -> Contact:
    """Keep what the visitor typed and add it to their contact as unverified claims.

    A typed address never joins a contact that holds it with proof (the takeover guard in
    `resolve_contact`); it is still kept on the session.
    """
    claims = [visitor_claim(visit)]
    if details.email.strip():
        claims.append(IdentityClaim(IdentityKind.email, details.email, Verification.unverified))
    if details.phone.strip():
        claims.append(IdentityClaim(IdentityKind.phone, details.phone, Verification.unverified))
    normalised = [normalise_claim(c, default_region=account.default_region) for c in claims]
    resolved = await resolve_contact(
        session, account=account, claims=normalised, name=details.name.strip()
    )
    kept = {k: getattr(details, k).strip()[:320] for k in DETAIL_FIELDS if getattr(details, k)}
    visit.details = {**visit.details, **kept}
    _record_identities_changed(session, resolved.contact)
    return resolved.contact


@dataclass(frozen=True)
class Identified:
    contact: Contact
    switched: bool  # the session now belongs to another person: the browser reloads its view


async def identify_visitor(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    visit: VisitorSession,
    proven: Sequence[IdentityClaim],
    name: str = "",
) -> Identified:
    """Link the session to the person the customer's site proved (HMAC or JWT).

    `proven` holds the verified claims first (the one the proof names leads), then any unverified
    extras. A session proven as someone else before, or whose proof names a contact other than
    the visitor's, starts over as that person: a new visitor id, no conversation yet.
    """
    verified = [
        normalise_claim(c, default_region=account.default_region)
        for c in proven
        if c.verification == Verification.verified
    ]
    if not verified:
        raise InvalidInput("identify needs a verified identity")
    key = f"{verified[0].kind}:{verified[0].value}"
    current = await visitor_contact(session, visit=visit)
    if current is not None and visit.verified_as == key:
        return Identified(current, switched=False)  # every page load of a signed-in user
    owners = await contact_ids_holding(session, account_id=account.id, claims=verified)
    other_person = visit.verified_as not in (None, key) or bool(
        current is not None and owners - {current.id}
    )
    if other_person:
        visit.visitor_id = _new_visitor_id()
        visit.conversation_id = None
    claims = [*proven, visitor_claim(visit)] if other_person else [visitor_claim(visit), *proven]
    resolved = await resolve_contact(session, account=account, claims=claims, name=name)
    visit.verified_as = key
    if visit.conversation_id is None:
        open_one = await find_open_conversation(
            session, account=account, inbox=inbox, contact=resolved.contact
        )
        visit.conversation_id = open_one.id if open_one else None
    _record_identities_changed(session, resolved.contact)
    return Identified(resolved.contact, switched=other_person)


def _record_identities_changed(session: AsyncSession, contact: Contact) -> None:
    events.record(
        session,
        account_id=contact.account_id,
        event=events.ContactUpdated(contact_id=contact.id, fields=["identities"]),
    )
