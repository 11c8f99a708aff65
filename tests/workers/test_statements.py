"""How many statements the worker spends per inbound message: a budget, not a speed test.

Every statement is a round trip (a thread hop on SQLite) and a pass through SQLAlchemy's
execution path; these counts are what the S2 and S10 benchmarks pay per message.
"""

import pytest
from sqlalchemy import select

from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import Conversation, Message
from tests.support.factory import api_message, deliver_api_calls
from tests.support.statements import sql_sent


def _starting(sent: list[str], prefix: str) -> list[str]:
    return [s for s in sent if s.startswith(prefix)]


@pytest.fixture
async def inbox(factory):
    account = await factory.account()
    return await factory.api_inbox(account)


async def test_a_poll_that_finds_nothing_is_one_statement(services, worker, backend):
    with sql_sent(services) as sent:
        assert await worker.run_once() == 0
    assert [s.split(" WHERE")[0] for s in sent] == [
        "UPDATE outbox SET available_at=?, attempts=(outbox.attempts + ?), locked_by=?"
        if backend == "sqlite"
        else "UPDATE outbox SET available_at=$1::TIMESTAMP WITH TIME ZONE, attempts=(outbox."
        "attempts + $2::INTEGER), locked_by=$3::VARCHAR",
    ]


async def test_a_new_customer_is_created_with_the_message_time_and_not_updated(
    client, services, worker, inbox, backend
):
    await deliver_api_calls(client, inbox, [api_message(1, "ana")])
    with sql_sent(services) as sent:
        assert await worker.run_once() == 1
    # The contact and conversation are written once, with the message's time.
    assert _starting(sent, "UPDATE contacts") == []
    assert _starting(sent, "UPDATE conversations") == []
    assert _starting(sent, "UPDATE identities") == []
    # SQLite serialises writers: nothing can insert the identity first, no savepoint needed.
    assert len(_starting(sent, "SAVEPOINT")) == (0 if backend == "sqlite" else 1)
    async with services.read_session() as session:
        message = await session.scalar(select(Message))
        contact = await session.scalar(select(Contact))
        conversation = await session.scalar(select(Conversation))
        identity = await session.scalar(select(Identity))
    assert message is not None and contact and conversation and identity
    assert contact.last_activity_at == message.created_at
    assert conversation.last_activity_at == conversation.last_incoming_at == message.created_at
    assert identity.last_seen_at is not None
    # A contact created for this message has no conversation to look for.
    assert _starting(sent, "SELECT conversations") == []
    # A budget: claim, load, dedupe, identities, contact, identity, conversation, message, mark
    # processed, end the job, number and write the events, and read the subscriptions (the
    # account's first events in this process). PostgreSQL takes a savepoint around the new
    # identities, and marks and ends in one statement, numbers and writes in another.
    budget = {"sqlite": 13, "postgres": 13}[backend]
    assert len(sent) <= budget, "\n".join(sent)


async def test_a_returning_customer_is_locked_and_marked_active_in_one_statement(
    client, services, worker, inbox, backend
):
    await deliver_api_calls(client, inbox, [api_message(1, "ana")])
    await worker.run_once()
    await deliver_api_calls(client, inbox, [api_message(2, "ana")])
    with sql_sent(services) as sent:
        assert await worker.run_once() == 1
    # The UPDATE that marks the contact active locks it; no SELECT ... FOR UPDATE before it.
    # On PostgreSQL the statement that reads the sender's identity also locks and marks the
    # contact and marks the identity seen, the contact first.
    if backend == "sqlite":
        (marked,) = _starting(sent, "UPDATE contacts SET")
        assert len(_starting(sent, "UPDATE identities SET last_seen_at")) == 1
    else:
        (marked,) = _starting(sent, "WITH known AS (SELECT identities.")
        assert "locked AS (UPDATE contacts SET" in marked
        assert "seen AS (UPDATE identities SET" in marked
        assert _starting(sent, "UPDATE contacts") == _starting(sent, "UPDATE identities") == []
        assert _starting(sent, "SELECT identities") == []
    assert "last_activity_at=" in marked
    assert _starting(sent, "SELECT contacts") == []
    # Subscriptions are not read again: this process committed the account's last events.
    assert _starting(sent, "SELECT webhook_subscriptions") == []
    async with services.read_session() as session:
        messages = list(await session.scalars(select(Message).order_by(Message.id)))
        contact = await session.scalar(select(Contact))
        conversation = await session.scalar(select(Conversation))
        identity = await session.scalar(select(Identity))
    assert len(messages) == 2 and contact and conversation and identity
    latest = messages[-1].created_at
    assert contact.last_activity_at == conversation.last_activity_at == latest
    assert conversation.last_incoming_at == latest
    assert identity.last_seen_at is not None and identity.last_seen_at > messages[0].created_at
    # Claim, load, dedupe, identities, contact, identity, conversation, message, its
    # conversation's UPDATE, mark processed and end the job, number and write the event. On
    # PostgreSQL the identity, the contact and the identity's mark are one statement, the
    # message and its conversation one, marking and ending one, numbering and writing one.
    assert len(sent) <= {"sqlite": 13, "postgres": 8}[backend], "\n".join(sent)
    if backend == "postgres":
        (stored,) = _starting(sent, "WITH touched AS (UPDATE conversations SET")
        assert "INSERT INTO messages" in stored
        assert _starting(sent, "UPDATE conversations") == []


async def test_a_batch_reads_its_payloads_and_their_inbox_once(
    client, services, worker, inbox, backend
):
    await deliver_api_calls(client, inbox, [api_message(1, "ana"), api_message(2, "ben")])
    await worker.run_once()
    calls = [api_message(n, "ana" if n % 2 else "ben") for n in range(3, 7)]
    await deliver_api_calls(client, inbox, calls)
    with sql_sent(services) as sent:
        assert await worker.run_once() == 4
    (payloads,) = _starting(sent, "SELECT inbound_events.")
    assert "JOIN" not in payloads
    assert len(_starting(sent, "SELECT inboxes.")) == 1
    # The unique index refuses a redelivered message: no lookup by provider id first.
    assert [s for s in sent if "messages.provider_id =" in s] == []
    # Four returning customers: per message the identities, the contact, the identity, the
    # conversation, the message and its conversation's UPDATE (three on PostgreSQL: the
    # identity with its contact and its mark, the conversation, the message with its
    # conversation's UPDATE); then claim, payloads, inbox, mark processed, end the jobs,
    # number and write the events (the last four are two on PostgreSQL).
    budget = {"sqlite": 4 * 6 + 7, "postgres": 4 * 3 + 5}[backend]
    assert len(sent) <= budget, "\n".join(sent)
