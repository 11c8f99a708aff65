"""The event log: typed events, numbered per account in commit order without gaps."""

import asyncio

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.events import EVENT_TYPES, Event, PublishedEvent


async def _seqs(services, account_id):
    async with services.read_session() as session:
        rows = await session.scalars(
            select(Event.seq).where(Event.account_id == account_id).order_by(Event.seq)
        )
        return list(rows)


async def test_events_are_numbered_per_account_without_gaps(services, factory):
    acme, globex = await factory.account("Acme"), await factory.account("Globex")
    inbox_a, inbox_g = await factory.api_inbox(acme), await factory.api_inbox(globex)
    await factory.receive(acme, inbox_a, external_id="a1")
    await factory.receive(globex, inbox_g, external_id="g1")
    await factory.receive(acme, inbox_a, external_id="a2")
    for account in (acme, globex):
        seqs = await _seqs(services, account.id)
        assert seqs == list(range(1, len(seqs) + 1))


async def test_concurrent_writers_still_get_gap_free_numbers(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    await asyncio.gather(
        *(factory.receive(account, inbox, external_id=f"c{i}", text=f"m{i}") for i in range(12))
    )
    seqs = await _seqs(services, account.id)
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= 12 * 3  # contact, conversation and message events each


async def test_nothing_is_published_before_commit_and_rollback_drops_events(services, factory):
    account = await factory.account()
    published = []

    async def hook(batch, _outbox):
        published.extend(batch)

    async with services.session() as session:
        events.add_after_commit_hook(session, hook)
        events.record(session, account_id=account.id, event=events.ContactCreated(contact_id=1))
        assert published == []
        await events.rollback(session)
        await events.commit(session)
    assert published == []
    assert await _seqs(services, account.id) == []


async def test_every_stored_event_validates_and_round_trips(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    await factory.receive(account, inbox)
    async with services.read_session() as session:
        rows = list(await session.scalars(select(Event)))
    assert rows
    for row in rows:
        assert row.type in EVENT_TYPES
        published = PublishedEvent.from_row(row)
        assert PublishedEvent.from_wire(published.to_wire()) == published
