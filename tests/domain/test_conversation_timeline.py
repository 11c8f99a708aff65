"""A conversation's timeline: messages with their sender and files, the events between them,
paging backwards, and the single message and event the live path inserts."""

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation
from rapport.domain.conversations.timeline import (
    TimelineEvent,
    TimelineMessage,
    conversation_timeline,
    message_in_conversation,
    timeline_event,
)
from rapport.domain.errors import NotFound
from rapport.domain.events import Event
from tests.support.statements import sql_sent


def _file(name, content_id=None):
    return actions.StoredFile(
        filename=name,
        content_type="image/png" if name.endswith(".png") else "application/pdf",
        size=2048,
        storage_key=f"k/{name}",
        content_id=content_id,
    )


async def _note(services, conversation_id, author, content, files=()):
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        note = await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(content=content, private=True, files=files),
        )
        await events.commit(session)
        return note.id


async def _history(services, factory):
    """Two customer messages, an assignment, then two notes with files: oldest first."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    agent = await factory.user(account, name="Ana")
    first = await factory.receive(account, inbox, text="Hello", name="Carla")
    await factory.receive(account, inbox, text="Anyone there?")
    conversation_id = first.conversation.id
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        await actions.assign_conversation(
            session, conversation=conversation, actor=agent, assignee_id=agent.id, team_id=None
        )
        await events.commit(session)
    await _note(
        services,
        conversation_id,
        agent,
        "Invoice and photo",
        [_file("invoice.pdf"), _file("photo.png", content_id="img1")],
    )
    await _note(services, conversation_id, agent, "Receipt", [_file("receipt.pdf")])
    return account, agent, conversation_id


def _shown(items):
    return [i.message.content if isinstance(i, TimelineMessage) else i.event.type for i in items]


def _contents(items):
    return [i.message.content for i in items if isinstance(i, TimelineMessage)]


async def test_the_timeline_shows_messages_senders_files_and_events_in_order(services, factory):
    _, agent, conversation_id = await _history(services, factory)
    async with services.read_session() as session:
        conversation = await session.get(Conversation, conversation_id)
        items, has_more = await conversation_timeline(session, conversation=conversation)
    assert _shown(items) == [
        "Hello",
        "Anyone there?",
        "conversation.assigned",
        "Invoice and photo",
        "Receipt",
    ]
    assert has_more is False
    messages = [i for i in items if isinstance(i, TimelineMessage)]
    assert [m.sender_name for m in messages] == [None, None, "Ana", "Ana"]
    assert [m.message.direction for m in messages] == ["incoming"] * 2 + ["outgoing"] * 2
    assert [[a.filename for a in m.attachments] for m in messages] == [
        [],
        [],
        ["invoice.pdf", "photo.png"],
        ["receipt.pdf"],
    ]
    photo = messages[2].attachments[1]
    assert (photo.content_type, photo.size, photo.content_id) == ("image/png", 2048, "img1")
    assert messages[2].message.private and messages[0].message.created_at.tzinfo is not None
    (assigned,) = [i for i in items if isinstance(i, TimelineEvent)]
    assert assigned.actor_name == "Ana" and assigned.event.data["assignee_id"] == agent.id


async def test_the_timeline_pages_backwards_and_files_never_count_as_messages(services, factory):
    _, _, conversation_id = await _history(services, factory)
    async with services.read_session() as session:
        conversation = await session.get(Conversation, conversation_id)
        newest, more = await conversation_timeline(session, conversation=conversation, limit=2)
        oldest_shown = newest[0].message.id
        older, more_again = await conversation_timeline(
            session, conversation=conversation, before_id=oldest_shown, limit=2
        )
        nothing, none_left = await conversation_timeline(
            session, conversation=conversation, before_id=older[0].message.id, limit=2
        )
    # Three files on the two newest messages: still a page of two messages, and more to come.
    assert _shown(newest) == ["Invoice and photo", "Receipt"] and more is True
    # The assignment came between the two pages: it shows on the older one, and only there.
    assert _shown(older) == ["Hello", "Anyone there?", "conversation.assigned"]
    assert more_again is False
    assert (nothing, none_left) == ([], False)


async def test_a_page_and_its_events_are_one_statement(services, factory):
    _, _, conversation_id = await _history(services, factory)
    async with services.read_session() as session:
        conversation = await session.get(Conversation, conversation_id)
        with sql_sent(services) as sent:
            newest, _ = await conversation_timeline(session, conversation=conversation, limit=2)
            older, _ = await conversation_timeline(
                session, conversation=conversation, before_id=newest[0].message.id, limit=2
            )
    # Messages, files, senders, the newer page's start and the events: one round trip a page.
    assert len(sent) == 2
    assert _shown(older) == ["Hello", "Anyone there?", "conversation.assigned"]


async def test_one_message_and_one_event_of_the_live_path(services, factory):
    account, _, conversation_id = await _history(services, factory)
    other = await factory.receive(
        account, await factory.api_inbox(account, name="Other"), external_id="someone-else"
    )
    async with services.read_session() as session:
        conversation = await session.get(Conversation, conversation_id)
        items, _ = await conversation_timeline(session, conversation=conversation)
        with_files = items[3]
        item = await message_in_conversation(
            session, conversation=conversation, message_id=with_files.message.id
        )
        assert item == with_files
        with pytest.raises(NotFound):
            await message_in_conversation(
                session, conversation=conversation, message_id=other.message.id
            )
        assigned = await session.get(Event, items[2].event.id)
        event = await timeline_event(session, conversation=conversation, seq=assigned.seq)
        assert event == items[2]
        created = await session.scalar(
            select(Event).where(
                Event.conversation_id == conversation_id, Event.type == "message.created"
            )
        )
        with pytest.raises(NotFound):  # not a timeline event type
            await timeline_event(session, conversation=conversation, seq=created.seq)
