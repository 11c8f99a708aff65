"""Visitor sessions: binding a conversation, typed claims, and identify linking or switching."""

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.domain.visitors import actions
from rapport.domain.visitors.queries import visit_by_token, visitor_contact
from tests.support.webchat import widget_inbox


def verified(kind, value):
    return IdentityClaim(kind, value, Verification.verified)


async def _visit(services, inbox: Inbox):
    async with services.session() as session:
        _visit_row, token = await actions.start_visit(session, inbox=inbox)
        await events.commit(session)
    return token


async def _identities(services, contact_id):
    async with services.read_session() as session:
        rows = await session.scalars(select(Identity).where(Identity.contact_id == contact_id))
        return {(r.kind, r.value): r.verification for r in rows}


async def test_first_message_binds_a_new_conversation_and_contact(services, factory):
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    token = await _visit(services, inbox)
    async with services.session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        account = await session.get(Account, account.id)
        conversation = await actions.bind_conversation(
            session, account=account, inbox=await session.get(Inbox, inbox.id), visit=visit
        )
        again = await actions.bind_conversation(session, account=account, inbox=inbox, visit=visit)
        await events.commit(session)
    assert again.id == conversation.id
    async with services.read_session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        contact = await visitor_contact(session, visit=visit)
    assert visit.conversation_id == conversation.id
    assert contact is not None and contact.id == conversation.contact_id


async def test_identify_links_to_the_existing_contact_and_keeps_the_email_a_claim(
    services, factory
):
    account = await factory.account()
    api = await factory.api_inbox(account)
    existing = await factory.receive(account, api, external_id="u-42", name="Ana Ruiz")
    inbox = await widget_inbox(services, account)
    token = await _visit(services, inbox)
    async with services.session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        result = await actions.identify_visitor(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.get(Inbox, inbox.id),
            visit=visit,
            proven=[
                verified(IdentityKind.external, "u-42"),
                IdentityClaim(IdentityKind.email, "Ana@Example.com", Verification.unverified),
            ],
        )
        await events.commit(session)
    assert result.contact.id == existing.conversation.contact_id
    assert not result.switched
    identities = await _identities(services, result.contact.id)
    assert identities[("email", "ana@example.com")] == Verification.unverified
    assert any(kind == "webchat" for kind, _ in identities)
    async with services.read_session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
    # The contact's open conversation is the one the visitor now reads.
    assert visit.conversation_id == existing.conversation.id


async def test_anonymous_chat_then_identify_as_a_new_user_keeps_the_conversation(services, factory):
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    token = await _visit(services, inbox)
    async with services.session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        account = await session.get(Account, account.id)
        inbox = await session.get(Inbox, inbox.id)
        conversation = await actions.bind_conversation(
            session, account=account, inbox=inbox, visit=visit
        )
        result = await actions.identify_visitor(
            session,
            account=account,
            inbox=inbox,
            visit=visit,
            proven=[verified(IdentityKind.external, "new-user")],
        )
        await events.commit(session)
    assert not result.switched
    assert result.contact.id == conversation.contact_id
    assert visit.conversation_id == conversation.id


async def test_another_person_on_the_same_browser_starts_over(services, factory):
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    token = await _visit(services, inbox)
    async with services.session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        account = await session.get(Account, account.id)
        inbox = await session.get(Inbox, inbox.id)
        await actions.bind_conversation(session, account=account, inbox=inbox, visit=visit)
        first = await actions.identify_visitor(
            session,
            account=account,
            inbox=inbox,
            visit=visit,
            proven=[verified(IdentityKind.external, "alice")],
        )
        old_visitor = visit.visitor_id
        second = await actions.identify_visitor(
            session,
            account=account,
            inbox=inbox,
            visit=visit,
            proven=[verified(IdentityKind.external, "bob")],
        )
        await events.commit(session)
    assert second.switched and second.contact.id != first.contact.id
    assert visit.visitor_id != old_visitor and visit.conversation_id is None
    alice = await _identities(services, first.contact.id)
    assert ("external", "bob") not in alice


async def test_typed_email_never_joins_a_contact_that_proved_it(services, factory):
    account = await factory.account()
    api = await factory.api_inbox(account)
    owner = await factory.receive(
        account, api, claims=(verified(IdentityKind.email, "boss@example.com"),)
    )
    inbox = await widget_inbox(services, account)
    token = await _visit(services, inbox)
    async with services.session() as session:
        visit = await visit_by_token(session, inbox_id=inbox.id, token=token)
        contact = await actions.add_visitor_details(
            session,
            account=await session.get(Account, account.id),
            visit=visit,
            details=actions.Details(name="Mallory", email="boss@example.com"),
        )
        await events.commit(session)
    assert contact.id != owner.conversation.contact_id
    assert ("email", "boss@example.com") not in await _identities(services, contact.id)
    assert visit.details["email"] == "boss@example.com"
