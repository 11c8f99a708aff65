"""Receiving writes its rows with Core statements: what it returns and what the session holds
must be exactly what an ORM flush would have left."""

from datetime import datetime

import pytest
from sqlalchemy import inspect, select

from rapport.db.helpers import insert_object
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Message, Status
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim, InboundMessage


def _inbound(provider_id: str, *, name: str = "", verification=Verification.unverified):
    return InboundMessage(
        sender=(IdentityClaim(IdentityKind.external, "cust-1", verification),),
        sender_name=name,
        content=f"text of {provider_id}",
        provider_id=provider_id,
    )


def _columns(obj) -> dict[str, object]:
    return {c.key: getattr(obj, c.key) for c in inspect(type(obj)).column_attrs}


async def _receive(services, account, inbox, inbound):
    async with services.session() as session:
        received = await actions.receive_message(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.get(Inbox, inbox.id),
            inbound=inbound,
        )
        await events.commit(session)
    assert received is not None
    return received


async def test_the_returned_message_and_conversation_are_the_stored_rows(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    for provider_id in ("first", "second"):
        received = await _receive(services, account, inbox, _inbound(provider_id))
        async with services.read_session() as session:
            message = await session.get(Message, received.message.id)
            conversation = await session.get(Conversation, received.conversation.id)
        assert message is not None and conversation is not None
        assert _columns(received.message) == _columns(message)
        assert _columns(received.conversation) == _columns(conversation)
        assert received.conversation.last_incoming_at == message.created_at


async def test_objects_the_session_holds_see_what_receiving_wrote(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await _receive(services, account, inbox, _inbound("first"))
    async with services.session() as session:
        contact = await session.get(Contact, first.conversation.contact_id)
        identity = await session.scalar(select(Identity))
        conversation = await session.get(Conversation, first.conversation.id)
        assert contact is not None and identity is not None and conversation is not None
        received = await actions.receive_message(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.get(Inbox, inbox.id),
            inbound=_inbound("second", name="Ana", verification=Verification.verified),
        )
        assert received is not None
        at = received.message.created_at
        # The very objects the session held, brought up to date without reading them again.
        assert received.conversation is conversation
        assert conversation.last_activity_at == conversation.last_incoming_at == at
        assert contact.last_activity_at == at and contact.name == "Ana"
        assert identity.verification == Verification.verified
        assert identity.last_seen_at is not None and identity.last_seen_at >= at
        # The message is in the session as a stored row: nothing left to write or to load.
        assert await session.get(Message, received.message.id) is received.message
        assert not session.dirty and not session.new
        # Seen again, with nothing to upgrade.
        again = await actions.receive_message(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.get(Inbox, inbox.id),
            inbound=_inbound("third", verification=Verification.verified),
        )
        assert again is not None
        assert identity.last_seen_at >= again.message.created_at
        assert contact.last_activity_at == again.message.created_at
        await events.commit(session)
    async with services.read_session() as session:
        stored_contact = await session.get(Contact, contact.id)
        stored_identity = await session.get(Identity, identity.id)
    assert stored_contact is not None and stored_identity is not None
    assert _columns(stored_contact) == _columns(contact)
    assert _columns(stored_identity) == _columns(identity)


async def test_a_nameless_contact_takes_the_senders_name_and_keeps_it(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await _receive(services, account, inbox, _inbound("first"))
    contact_id = first.conversation.contact_id
    names = []
    for provider_id, name in (("second", ""), ("third", "Ana"), ("fourth", "Someone else")):
        await _receive(services, account, inbox, _inbound(provider_id, name=name))
        async with services.read_session() as session:
            contact = await session.get(Contact, contact_id)
            assert contact is not None
            names.append(contact.name)
    assert names == ["", "Ana", "Ana"]


async def test_a_redelivery_returns_the_stored_message(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await _receive(services, account, inbox, _inbound("once"))
    again = await _receive(services, account, inbox, _inbound("once"))
    assert again.duplicate
    assert _columns(again.message) == _columns(first.message)
    assert again.conversation.id == first.conversation.id


async def test_a_core_insert_must_name_every_column(services, factory):
    account = await factory.account()
    async with services.session() as session:
        with pytest.raises(ValueError, match="give exactly"):
            await insert_object(session, Contact, {"account_id": account.id, "name": "Ana"})
        now = datetime.now().astimezone()
        contact = await insert_object(
            session,
            Contact,
            {
                "account_id": account.id,
                "name": "Ana",
                "company": "",
                "avatar_url": None,
                "attributes": {},
                "merged_into_id": None,
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
            },
        )
        assert await session.get(Contact, contact.id) is contact
        await session.commit()
    async with services.read_session() as session:
        stored = await session.get(Contact, contact.id)
    assert stored is not None and _columns(stored) == _columns(contact)


async def test_a_conversation_changed_in_the_session_is_judged_as_changed(services, factory):
    """A batch applies several payloads in one session: a conversation resolved (or reopened)
    by an earlier one, not yet written, must count as such when the next message looks for
    the contact's open conversation."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await _receive(services, account, inbox, _inbound("first"))
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        assert conversation is not None
        account_row = await session.get(Account, account.id)
        inbox_row = await session.get(Inbox, inbox.id)
        conversation.status = Status.resolved  # in the session only
        with session.no_autoflush:  # no ORM query's autoflush does it by chance
            received = await actions.receive_message(
                session, account=account_row, inbox=inbox_row, inbound=_inbound("second")
            )
        await events.commit(session)
    assert received is not None
    assert received.conversation.id != first.conversation.id
    async with services.read_session() as session:
        rows = await session.execute(select(Conversation.id, Conversation.status))
        statuses = {conversation_id: status for conversation_id, status in rows}
    assert statuses == {
        first.conversation.id: Status.resolved,
        received.conversation.id: Status.open,
    }


async def test_a_typed_claim_does_not_join_the_contact_holding_the_identity_with_proof(
    services, factory
):
    """The takeover guard holds on the one-statement path too: nothing of the holder moves."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await _receive(services, account, inbox, _inbound("first", verification="verified"))
    holder_id = first.conversation.contact_id
    async with services.read_session() as session:
        holder = await session.get(Contact, holder_id)
        identity = await session.scalar(select(Identity))
    second = await _receive(services, account, inbox, _inbound("second", name="Someone"))
    assert second.conversation.contact_id != holder_id
    async with services.read_session() as session:
        holder_now = await session.get(Contact, holder_id)
        identity_now = await session.get(Identity, identity.id)
    assert holder_now.last_activity_at == holder.last_activity_at and holder_now.name == ""
    assert identity_now.contact_id == holder_id
    assert identity_now.last_seen_at == identity.last_seen_at
    assert identity_now.verification == Verification.verified
