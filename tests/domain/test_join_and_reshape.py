"""Conversations across channels: the join policy (always, within N hours, never) for messages
arriving on different channels, channel switches, and merging and splitting conversations."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account, JoinPolicy
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations import reshape
from rapport.domain.conversations.actions import SUBJECT_THREAD_DAYS, receive_message
from rapport.domain.conversations.models import Conversation, Message, Status
from rapport.domain.conversations.timeline import TimelineEvent, conversation_timeline
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim, InboundMessage

PHONE = "+34612345678"
EMAIL = "lucia@example.com"


def by_phone(kind=IdentityKind.phone):
    return (IdentityClaim(kind, PHONE, Verification.provider),)


def by_phone_and_email():
    return (
        IdentityClaim(IdentityKind.phone, PHONE, Verification.provider),
        IdentityClaim(IdentityKind.email, EMAIL, Verification.verified),
    )


def by_email():
    return (IdentityClaim(IdentityKind.email, EMAIL, Verification.provider),)


async def _inbox(services, account, channel, name=None):
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name or channel,
            channel=channel,
            config={},
            box=services.box,
        )
        await events.commit(session)
        return inbox


async def _policy(services, account, policy, hours=24):
    async with services.session() as session:
        row = await session.get(Account, account.id)
        row.join_policy = policy
        row.join_window_hours = hours
        await events.commit(session)


async def _age(services, conversation_id, hours):
    """Time travel: the conversation's last activity was `hours` ago."""
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        conversation.last_activity_at -= timedelta(hours=hours)
        await events.commit(session)


async def _switches(services, conversation_id):
    async with services.read_session() as session:
        rows = await session.scalars(
            select(Event)
            .where(
                Event.conversation_id == conversation_id,
                Event.type == "conversation.channel_switched",
            )
            .order_by(Event.seq)
        )
        return [(e.data["from_channel"], e.data["to_channel"]) for e in rows]


async def test_always_joins_across_channels_and_records_each_switch(services, factory):
    account = await factory.account(default_region="ES")
    whatsapp = await _inbox(services, account, "whatsapp")
    sms = await _inbox(services, account, "sms")
    mail = await _inbox(services, account, "email")
    first = await factory.receive(account, whatsapp, claims=by_phone_and_email(), text="hola")
    await _age(services, first.conversation.id, 24 * 20)  # "always" ignores how long ago
    second = await factory.receive(account, sms, claims=by_phone(), text="por sms")
    third = await factory.receive(account, mail, claims=by_email(), text="por correo")
    assert first.conversation.id == second.conversation.id == third.conversation.id
    assert await _switches(services, first.conversation.id) == [
        ("whatsapp", "sms"),
        ("sms", "email"),
    ]


@pytest.mark.parametrize(("hours_ago", "joins"), [(1, True), (5, False)])
async def test_within_n_hours_joins_only_inside_the_window(services, factory, hours_ago, joins):
    account = await factory.account(default_region="ES")
    await _policy(services, account, JoinPolicy.window, hours=4)
    whatsapp = await _inbox(services, account, "whatsapp")
    sms = await _inbox(services, account, "sms")
    first = await factory.receive(account, whatsapp, claims=by_phone())
    await _age(services, first.conversation.id, hours_ago)
    second = await factory.receive(account, sms, claims=by_phone())
    assert (second.conversation.id == first.conversation.id) is joins
    assert second.conversation.contact_id == first.conversation.contact_id  # one customer
    expected = [("whatsapp", "sms")] if joins else []
    assert await _switches(services, first.conversation.id) == expected


async def test_never_keeps_one_conversation_per_inbox(services, factory):
    account = await factory.account(default_region="ES")
    await _policy(services, account, JoinPolicy.never)
    whatsapp = await _inbox(services, account, "whatsapp")
    sms = await _inbox(services, account, "sms")
    first = await factory.receive(account, whatsapp, claims=by_phone())
    other = await factory.receive(account, sms, claims=by_phone())
    again = await factory.receive(account, whatsapp, claims=by_phone())
    assert other.conversation.id != first.conversation.id
    assert again.conversation.id == first.conversation.id
    assert other.conversation.contact_id == first.conversation.contact_id
    assert await _switches(services, first.conversation.id) == []


async def test_a_resolved_conversation_is_not_joined_by_a_new_channel(services, factory):
    account = await factory.account(default_region="ES")
    whatsapp = await _inbox(services, account, "whatsapp")
    sms = await _inbox(services, account, "sms")
    agent = await factory.user(account)
    first = await factory.receive(account, whatsapp, claims=by_phone())
    async with services.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        conversation.status = Status.resolved
        await events.commit(session)
    later = await factory.receive(account, sms, claims=by_phone())
    assert later.conversation.id != first.conversation.id
    assert agent  # the account has people; nothing else changes the rule


# --- merge ---------------------------------------------------------------------------------


async def _two_conversations(services, factory):
    account = await factory.account(default_region="ES")
    await _policy(services, account, JoinPolicy.never)
    whatsapp = await _inbox(services, account, "whatsapp")
    sms = await _inbox(services, account, "sms")
    agent = await factory.user(account, name="Ana")
    a1 = await factory.receive(account, whatsapp, claims=by_phone(), text="wa one")
    b1 = await factory.receive(account, sms, claims=by_phone(), text="sms one")
    a2 = await factory.receive(account, whatsapp, claims=by_phone(), text="wa two")
    return account, agent, a1.conversation.id, b1.conversation.id, a2


async def test_merge_moves_messages_and_events_and_closes_the_source(services, factory):
    _, agent, target_id, source_id, _ = await _two_conversations(services, factory)
    async with services.session() as session:
        target = await session.get(Conversation, target_id)
        source = await session.get(Conversation, source_id)
        await reshape.merge_conversations(session, source=source, target=target, actor=agent)
        await events.commit(session)
    async with services.read_session() as session:
        target = await session.get(Conversation, target_id)
        source = await session.get(Conversation, source_id)
        moved = list(
            await session.scalars(
                select(Message.content)
                .where(Message.conversation_id == target_id)
                .order_by(Message.id)
            )
        )
        left = await session.scalar(select(Message.id).where(Message.conversation_id == source_id))
        merged = list(
            await session.scalars(select(Event).where(Event.type == "conversation.merged"))
        )
        source_created = await session.scalar(
            select(Event.conversation_id).where(
                Event.type == "conversation.created",
                Event.data["conversation_id"].as_integer() == source_id,
            )
        )
        items, _ = await conversation_timeline(session, conversation=target)
    assert moved == ["wa one", "sms one", "wa two"]
    assert left is None
    assert source.status == Status.resolved and source.merged_into_id == target_id
    assert {e.conversation_id for e in merged} == {target_id, source_id}
    assert all(e.actor_user_id == agent.id for e in merged)
    assert merged[0].data["moved_messages"] == 1
    assert source_created == target_id  # the source's history moved with it
    shown = [i.event.type for i in items if isinstance(i, TimelineEvent)]
    assert "conversation.merged" in shown


async def test_a_message_naming_a_merged_conversation_lands_in_the_target(services, factory):
    account, agent, target_id, source_id, _ = await _two_conversations(services, factory)
    async with services.session() as session:
        await reshape.merge_conversations(
            session,
            source=await session.get(Conversation, source_id),
            target=await session.get(Conversation, target_id),
            actor=agent,
        )
        await events.commit(session)
    sms = await _inbox(services, account, "webchat", name="Chat")
    inbound = InboundMessage(sender=by_phone(), content="via token", conversation_id=source_id)
    async with services.session() as session:
        received = await receive_message(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.merge(sms),
            inbound=inbound,
        )
        await events.commit(session)
    assert received.conversation.id == target_id


async def test_merge_refuses_other_contacts_itself_and_twice(services, factory):
    account, agent, target_id, source_id, _ = await _two_conversations(services, factory)
    other_inbox = await _inbox(services, account, "api")
    stranger = await factory.receive(account, other_inbox, external_id="someone-else")
    async with services.session() as session:
        target = await session.get(Conversation, target_id)
        source = await session.get(Conversation, source_id)
        foreign = await session.get(Conversation, stranger.conversation.id)
        with pytest.raises(InvalidInput, match="same contact"):
            await reshape.merge_conversations(session, source=foreign, target=target, actor=agent)
        with pytest.raises(InvalidInput, match="itself"):
            await reshape.merge_conversations(session, source=target, target=target, actor=agent)
        await reshape.merge_conversations(session, source=source, target=target, actor=agent)
        await events.commit(session)
    async with services.session() as session:
        target = await session.get(Conversation, target_id)
        source = await session.get(Conversation, source_id)
        with pytest.raises(Conflict):
            await reshape.merge_conversations(session, source=source, target=target, actor=agent)


# --- split ---------------------------------------------------------------------------------


async def test_split_moves_the_chosen_messages_into_a_new_conversation(services, factory):
    account, agent, conversation_id, _, _ = await _two_conversations(services, factory)
    whatsapp_inbox_conv = conversation_id
    extra = await factory.receive(
        account,
        await _inbox(services, account, "telegram"),
        claims=(IdentityClaim(IdentityKind.telegram, "777", Verification.provider),),
    )
    assert extra  # another contact, untouched
    async with services.read_session() as session:
        ids = list(
            await session.scalars(
                select(Message.id)
                .where(Message.conversation_id == whatsapp_inbox_conv)
                .order_by(Message.id)
            )
        )
    async with services.session() as session:
        source = await session.get(Conversation, whatsapp_inbox_conv)
        new = await reshape.split_conversation(
            session, source=source, message_ids=[ids[-1]], actor=agent
        )
        await events.commit(session)
        new_id = new.id
    async with services.read_session() as session:
        kept = list(
            await session.scalars(
                select(Message.content).where(Message.conversation_id == whatsapp_inbox_conv)
            )
        )
        moved = list(
            await session.scalars(select(Message.content).where(Message.conversation_id == new_id))
        )
        new = await session.get(Conversation, new_id)
        split_events = list(
            await session.scalars(select(Event).where(Event.type == "conversation.split"))
        )
    assert kept == ["wa one"] and moved == ["wa two"]
    assert new.contact_id == source.contact_id and new.status == Status.open
    assert new.channel == "whatsapp" and new.last_incoming_at is not None
    assert {e.conversation_id for e in split_events} == {whatsapp_inbox_conv, new_id}
    assert all(e.actor_user_id == agent.id for e in split_events)
    assert split_events[0].data["message_ids"] == [ids[-1]]


async def test_split_refuses_nothing_everything_and_foreign_messages(services, factory):
    _, agent, conversation_id, other_id, _ = await _two_conversations(services, factory)
    async with services.read_session() as session:
        mine = list(
            await session.scalars(
                select(Message.id).where(Message.conversation_id == conversation_id)
            )
        )
        foreign = await session.scalar(
            select(Message.id).where(Message.conversation_id == other_id)
        )
    async with services.session() as session:
        source = await session.get(Conversation, conversation_id)
        with pytest.raises(InvalidInput, match="choose"):
            await reshape.split_conversation(session, source=source, message_ids=[], actor=agent)
        with pytest.raises(InvalidInput, match="at least one"):
            await reshape.split_conversation(session, source=source, message_ids=mine, actor=agent)
        with pytest.raises(NotFound):
            await reshape.split_conversation(
                session, source=source, message_ids=[foreign], actor=agent
            )


# Email threading, last resort: a mail client that dropped In-Reply-To and References keeps the
# subject. The sender's own recent conversation with that subject takes the mail; nobody else's.


async def _mail(services, account, inbox, sender, subject, text="Any news?"):
    inbound = InboundMessage(
        sender=(IdentityClaim(IdentityKind.email, sender, Verification.provider),),
        content=text,
        subject=subject,
    )
    async with services.session() as session:
        received = await receive_message(
            session,
            account=await session.get(Account, account.id),
            inbox=await session.get(Inbox, inbox.id),
            inbound=inbound,
        )
        await events.commit(session)
        return received


async def _resolve(services, conversation_id):
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        conversation.status = Status.resolved
        await events.commit(session)


async def test_a_mail_without_references_joins_the_senders_conversation_of_that_subject(
    services, factory
):
    account = await factory.account()
    mail = await _inbox(services, account, "email")
    first = await _mail(services, account, mail, EMAIL, "Order A-1042")
    # Resolved, so only the subject can bring the answer back to it (not the open-one rule).
    await _resolve(services, first.conversation.id)
    again = await _mail(services, account, mail, EMAIL, "Order A-1042", text="It came broken")
    assert again.conversation.id == first.conversation.id


async def test_the_same_subject_from_another_sender_starts_their_own_conversation(
    services, factory
):
    account = await factory.account()
    mail = await _inbox(services, account, "email")
    first = await _mail(services, account, mail, EMAIL, "Order A-1042")
    other = await _mail(services, account, mail, "someone@example.net", "Order A-1042")
    assert other.conversation.id != first.conversation.id
    assert other.conversation.contact_id != first.conversation.contact_id


async def test_the_subject_no_longer_threads_after_the_window(services, factory):
    account = await factory.account()
    mail = await _inbox(services, account, "email")
    first = await _mail(services, account, mail, EMAIL, "Order A-1042")
    await _resolve(services, first.conversation.id)
    await _age(services, first.conversation.id, 24 * (SUBJECT_THREAD_DAYS + 1))
    later = await _mail(services, account, mail, EMAIL, "Order A-1042")
    assert later.conversation.id != first.conversation.id
    assert later.conversation.contact_id == first.conversation.contact_id
