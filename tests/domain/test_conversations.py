"""Receiving, replying, assigning and resolving: the actions and the events they emit."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rapport.channels.api import ApiChannel
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.accounts.models import JoinPolicy
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, DeliveryStatus, Message, Status
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.domain.ports import IdentityClaim, StatusUpdate

POLICY = ApiChannel.policy


async def _event_types(services, conversation_id):
    async with services.read_session() as session:
        rows = await session.scalars(
            select(Event.type).where(Event.conversation_id == conversation_id).order_by(Event.seq)
        )
        return list(rows)


async def _count(services, model):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_first_message_creates_contact_conversation_and_message(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    received = await factory.receive(account, inbox, text="Where is my order?", name="María")
    assert received.conversation.status == Status.open
    assert received.message.content == "Where is my order?"
    assert await _event_types(services, received.conversation.id) == [
        "conversation.created",
        "message.created",
    ]
    async with services.read_session() as session:
        contact = await session.get(Contact, received.conversation.contact_id)
        assert contact.name == "María"


async def test_a_redelivered_message_is_stored_once(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await factory.receive(account, inbox, provider_id="p-1")
    again = await factory.receive(account, inbox, provider_id="p-1")
    assert again.duplicate and again.message.id == first.message.id
    assert await _count(services, Message) == 1


async def test_a_later_message_joins_the_open_conversation(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await factory.receive(account, inbox, text="one")
    second = await factory.receive(account, inbox, text="two")
    assert second.conversation.id == first.conversation.id


async def test_another_inbox_joins_and_records_a_channel_switch(services, factory):
    account = await factory.account()
    chat, other = (
        await factory.api_inbox(account, name="A"),
        await factory.api_inbox(account, name="B"),
    )
    first = await factory.receive(account, chat, text="hi")
    # Same customer on another inbox of the same kind: no channel switch, same conversation.
    second = await factory.receive(account, other, text="again")
    assert second.conversation.id == first.conversation.id
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        conversation.channel = "webchat"  # as if the last message had come by chat
        await events.commit(session)
    await factory.receive(account, other, text="now via API")
    assert (await _event_types(services, first.conversation.id))[-2:] == [
        "conversation.channel_switched",
        "message.created",
    ]


@pytest.mark.parametrize(
    ("policy", "joins"), [(JoinPolicy.always, True), (JoinPolicy.never, False)]
)
async def test_join_policy(services, factory, policy, joins):
    account = await factory.account()
    async with services.session() as session:
        account = await session.merge(account)
        account.join_policy = policy
        await events.commit(session)
    a, b = await factory.api_inbox(account, name="A"), await factory.api_inbox(account, name="B")
    first = await factory.receive(account, a)
    second = await factory.receive(account, b)
    assert (second.conversation.id == first.conversation.id) is joins


async def test_the_window_policy_starts_a_new_conversation_after_quiet_hours(services, factory):
    account = await factory.account()
    async with services.session() as session:
        account = await session.merge(account)
        account.join_policy = JoinPolicy.window
        account.join_window_hours = 2
        await events.commit(session)
    inbox = await factory.api_inbox(account)
    first = await factory.receive(account, inbox)
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        conversation.last_activity_at -= timedelta(hours=3)
        await events.commit(session)
    later = await factory.receive(account, inbox)
    assert later.conversation.id != first.conversation.id


async def test_a_message_to_a_resolved_conversation_by_thread_reopens_it(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    first = await factory.receive(account, inbox, provider_id="root")
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        await actions.change_status(
            session, conversation=conversation, actor=agent, status=Status.resolved
        )
        await events.commit(session)
    from rapport.domain.ports import InboundMessage

    async with services.session() as session:
        received = await actions.receive_message(
            session,
            account=await session.merge(account),
            inbox=await session.merge(inbox),
            inbound=InboundMessage(
                sender=(IdentityClaim(IdentityKind.external, "cust-1", Verification.verified),),
                content="re",
                provider_id="reply",
                thread_refs=("root",),
            ),
        )
        await events.commit(session)
    assert received.conversation.id == first.conversation.id
    assert received.conversation.status == Status.open


async def test_a_reply_is_queued_with_an_outbox_job_and_is_idempotent(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    received = await factory.receive(account, inbox)
    reply = actions.Reply(content="On its way", inbox=inbox, policy=POLICY, client_id="c-1")
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        message = await actions.send_reply(
            session, conversation=conversation, author=agent, reply=reply
        )
        again = await actions.send_reply(
            session, conversation=conversation, author=agent, reply=reply
        )
        await events.commit(session)
    assert again.id == message.id
    assert message.status == DeliveryStatus.queued
    assert await _count(services, OutboxJob) == 1
    assert conversation.first_reply_at is not None


async def test_a_private_note_never_goes_to_the_outbox(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    received = await factory.receive(account, inbox)
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        note = await actions.send_reply(
            session,
            conversation=conversation,
            author=agent,
            reply=actions.Reply(content="VIP customer", private=True),
        )
        await events.commit(session)
    assert note.private and note.inbox_id is None
    assert await _count(services, OutboxJob) == 0


async def test_a_reply_needs_words_and_an_address(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    received = await factory.receive(account, inbox)
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        with pytest.raises(InvalidInput):
            await actions.send_reply(
                session,
                conversation=conversation,
                author=agent,
                reply=actions.Reply(content="   ", inbox=inbox, policy=POLICY),
            )
        await session.execute(Identity.__table__.delete())
        with pytest.raises(Conflict, match="no address"):
            await actions.send_reply(
                session,
                conversation=conversation,
                author=agent,
                reply=actions.Reply(content="hello", inbox=inbox, policy=POLICY),
            )


async def test_assignment_checks_the_account_and_records_an_event(services, factory):
    account, other = await factory.account("A"), await factory.account("B")
    inbox = await factory.api_inbox(account)
    agent, stranger = await factory.user(account), await factory.user(other)
    received = await factory.receive(account, inbox)
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        with pytest.raises(NotFound):
            await actions.assign_conversation(
                session,
                conversation=conversation,
                actor=agent,
                assignee_id=stranger.id,
                team_id=None,
            )
        await actions.assign_conversation(
            session, conversation=conversation, actor=agent, assignee_id=agent.id, team_id=None
        )
        await events.commit(session)
    assert (await _event_types(services, conversation.id))[-1] == "conversation.assigned"


async def test_delivery_statuses_only_move_forward(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    received = await factory.receive(account, inbox)
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=agent,
            reply=actions.Reply(content="hi", inbox=inbox, policy=POLICY),
        )
        await actions.record_sent(
            session, message=message, provider_id="ext-9", status=DeliveryStatus.sent
        )
        await events.commit(session)
    updates = [
        DeliveryStatus.read,
        DeliveryStatus.delivered,
        DeliveryStatus.sent,
        DeliveryStatus.failed,
    ]
    async with services.session() as session:
        for status in updates:
            await actions.apply_status_update(
                session, inbox=await session.merge(inbox), update=StatusUpdate("ext-9", status)
            )
        await events.commit(session)
        final = await session.get(Message, message.id)
        assert final.status == DeliveryStatus.read


async def test_messages_arriving_together_never_split_a_conversation(services, factory):
    """An album of photos arrives as several webhooks at once: one contact, one conversation."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account)
    earlier = await factory.receive(account, inbox, external_id="album", text="last week")
    async with services.session() as session:  # a known customer with no open conversation
        conversation = await session.get(Conversation, earlier.conversation.id)
        await actions.change_status(
            session, conversation=conversation, actor=agent, status=Status.resolved
        )
        await events.commit(session)
    received = await asyncio.gather(
        *(factory.receive(account, inbox, external_id="album", text=f"photo {n}") for n in range(6))
    )
    assert len({r.conversation.id for r in received}) == 1
    assert len({r.conversation.contact_id for r in received}) == 1
    assert await _count(services, Conversation) == 2
