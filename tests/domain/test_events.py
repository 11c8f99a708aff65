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


async def test_one_commit_numbers_each_accounts_events_in_order_whatever_their_number(
    services, factory
):
    """A few events of an account are numbered and written in one statement on PostgreSQL,
    many in two: either way the numbers published are the numbers stored, in record order."""
    acme, globex = await factory.account("Acme"), await factory.account("Globex")
    for count in (1, 3, 8, 9, 20):
        async with services.session() as session:
            for account in (globex, acme):
                for n in range(count):
                    failed = events.InboundFailed(
                        inbound_event_id=1000 * account.id + n, inbox_id=1, error="x"
                    )
                    events.record(session, account_id=account.id, event=failed)
            published = await events.commit(session)
        async with services.read_session() as session:
            stored = {
                (row.account_id, row.seq): row.data["inbound_event_id"]
                for row in await session.scalars(select(Event))
            }
        for account in (acme, globex):
            mine = [p for p in published if p.account_id == account.id]
            sent = [p.event.inbound_event_id for p in mine]
            assert sent == [1000 * account.id + n for n in range(count)]
            assert [stored[(account.id, p.seq)] for p in mine] == sent
    for account in (acme, globex):
        seqs = await _seqs(services, account.id)
        assert seqs == list(range(1, 1 + 1 + 3 + 8 + 9 + 20))  # gap-free across commits


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
