"""Inbound payloads claimed together are applied in one transaction, or each on its own."""

from sqlalchemy import event, func, select

from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.conversations.models import Message
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import store_inbound
from rapport.domain.inboxes.models import InboundEvent
from rapport.workers import inbound
from tests.support.factory import api_message, deliver_api_calls, signed_api_call


async def _count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


def _count_commits(services) -> list[int]:
    commits = [0]

    def on_commit(_conn):
        commits[0] += 1

    event.listen(services.db.engine.sync_engine, "commit", on_commit)
    return commits


async def test_payloads_claimed_together_commit_together_in_order(
    client, services, factory, worker
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    # Four messages from two customers, one of them new to Rapport mid-batch.
    calls = [api_message(n, "ana" if n % 2 else "ben") for n in range(4)]
    await deliver_api_calls(client, inbox, calls)
    commits = _count_commits(services)
    assert await worker.run_once() == 4
    # One commit for the claim, one for all four payloads.
    assert commits[0] == 2
    async with services.read_session() as session:
        messages = (await session.scalars(select(Message).order_by(Message.id))).all()
        numbers = (
            await session.scalars(
                select(Event.seq).where(Event.account_id == account.id).order_by(Event.seq)
            )
        ).all()
    assert [m.content for m in messages] == ["#0", "#1", "#2", "#3"]
    assert len({m.conversation_id for m in messages}) == 2
    assert list(numbers) == list(range(numbers[0], numbers[0] + len(numbers)))
    assert await _count(services, InboundEvent, InboundEvent.status == "processed") == 4
    assert await _count(services, OutboxJob) == 0


async def test_one_bad_payload_sends_each_job_its_own_way(client, services, factory, worker):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    await deliver_api_calls(client, inbox, [api_message(1, "ana"), api_message(2, "ben")])
    async with services.session() as session:  # verified and stored, but not parseable
        await store_inbound(
            session, inbox=inbox, dedupe_key="bad", body=b"{not json", content_type="x"
        )
        await events.commit(session)
    await deliver_api_calls(client, inbox, [api_message(3, "ana")])
    assert await worker.run_once() == 4
    # The batch rolled back as a whole; then each job ran alone: three messages, one flag.
    assert await _count(services, Message) == 3
    assert await _count(services, InboundEvent, InboundEvent.status == "processed") == 3
    async with services.read_session() as session:
        [bad] = (
            await session.scalars(select(InboundEvent).where(InboundEvent.status == "failed"))
        ).all()
    assert bad.dedupe_key == "bad" and bad.error
    assert await _count(services, OutboxJob) == 0


async def test_a_redelivered_payload_in_a_batch_is_one_message(client, services, factory, worker):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    await deliver_api_calls(client, inbox, [api_message(1, "ana"), api_message(2, "ana")])
    await worker.run_once()
    # The provider redelivers under another key: the message's own id still dedupes it.
    async with services.session() as session:
        body, _ = signed_api_call(api_message(1, "ana"))
        await store_inbound(
            session, inbox=inbox, dedupe_key="again", body=body, content_type="application/json"
        )
        await events.commit(session)
    await deliver_api_calls(client, inbox, [api_message(3, "ana")])
    assert await worker.run_once() == 2
    assert await _count(services, Message) == 3
    assert await _count(services, InboundEvent, InboundEvent.status == "processed") == 4
    assert await _count(services, OutboxJob) == 0


async def test_one_message_twice_in_a_batch_is_one_message(
    client, services, factory, worker, monkeypatch
):
    """A batch does not look messages up by provider id; the unique index refuses the second
    copy and the batch rolls back. Alone, the two payloads run side by side: the one that
    meets the other's row is tried again and records the redelivery."""
    monkeypatch.setattr(inbound, "CONCURRENT_COPY_DELAY", 0.0)
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    async with services.session() as session:
        for key in ("first", "second"):
            body, _ = signed_api_call(api_message(1, "ana"))
            await store_inbound(
                session, inbox=inbox, dedupe_key=key, body=body, content_type="application/json"
            )
        await events.commit(session)
    assert await worker.drain() >= 2
    assert await _count(services, Message) == 1
    assert await _count(services, InboundEvent, InboundEvent.status == "processed") == 2
    assert await _count(services, OutboxJob) == 0
