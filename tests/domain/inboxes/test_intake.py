"""Provider calls kept before anything else: several in one write, each answered on its own."""

import asyncio

from sqlalchemy import func, select

from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.inboxes import intake as intake_module
from rapport.domain.inboxes.actions import InboundCall, Kept, store_inbound_calls
from rapport.domain.inboxes.models import InboundEvent
from tests.support.factory import api_message, signed_api_call
from tests.support.statements import sql_sent


async def _count(services, model):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model))


def _call(key: str) -> InboundCall:
    return InboundCall(key, f'{{"id": "{key}"}}'.encode(), "application/json")


async def _store(services, inbox, keys):
    async with services.session() as session:
        stored = await store_inbound_calls(session, inbox=inbox, calls=[_call(k) for k in keys])
        await events.commit(session)
    return stored


async def test_several_calls_are_stored_together_each_with_its_own_answer(
    services, factory, backend
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    assert await _store(services, inbox, ["old"]) == [Kept.STORED]
    with sql_sent(services) as sent:
        answers = await _store(services, inbox, ["a", "old", "b", "a"])
    # "old" was stored before, the second "a" is a redelivery within the same write.
    assert answers == [Kept.STORED, Kept.REDELIVERY, Kept.STORED, Kept.REDELIVERY]
    async with services.read_session() as session:
        rows = (await session.execute(select(InboundEvent.dedupe_key, InboundEvent.body))).all()
        jobs = (await session.scalars(select(OutboxJob.payload))).all()
    assert sorted(key for key, _body in rows) == ["a", "b", "old"]
    assert dict(rows)["b"] == b'{"id": "b"}'
    assert len(jobs) == 3 and {job["inbound_event_id"] for job in jobs} == set(
        (await _ids(services)).values()
    )
    if backend == "postgres":  # one statement, whatever the number of calls
        assert len(sent) == 1 and sent[0].startswith("WITH stored AS (INSERT INTO inbound_events")


async def _ids(services):
    async with services.read_session() as session:
        return dict((await session.execute(select(InboundEvent.dedupe_key, InboundEvent.id))).all())


async def test_calls_verified_against_an_outdated_inbox_are_not_stored(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)  # the copy a process remembers
    async with services.session() as session:
        fresh = await session.get(type(inbox), inbox.id)
        fresh.is_active = False
        await session.commit()
    assert await _store(services, inbox, ["a", "b"]) == [Kept.INBOX_CHANGED] * 2
    assert await _count(services, InboundEvent) == 0
    assert await _count(services, OutboxJob) == 0


class HeldWrites:
    """Holds the intake's first write until released, so that calls queue behind it."""

    def __init__(self, monkeypatch, *, fail_on: str | None = None) -> None:
        self.writes: list[list[str]] = []
        self.release = asyncio.Event()
        self.first_started = asyncio.Event()
        self.fail_on = fail_on
        real = intake_module.store_inbound_calls

        async def held(session, *, inbox, calls):
            keys = [call.dedupe_key for call in calls]
            self.writes.append(keys)
            if len(self.writes) == 1:
                self.first_started.set()
                await self.release.wait()
            if self.fail_on is not None and self.fail_on in keys:
                raise RuntimeError("this call cannot be stored")
            return await real(session, inbox=inbox, calls=calls)

        monkeypatch.setattr(intake_module, "store_inbound_calls", held)

    async def post(self, client, services, inbox, first: int, later: list[int]) -> list:
        """Message `first` is posted and its write held; `later` are posted meanwhile and
        queue behind it; then the write goes on. The answers (or errors), in that order."""
        calls = {n: signed_api_call(api_message(n, "ana")) for n in {first, *later}}

        async def post(n):
            body, headers = calls[n]
            return await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)

        held = asyncio.ensure_future(post(first))
        await self.first_started.wait()
        queued = [asyncio.ensure_future(post(n)) for n in later]
        waiting = services.intake._writes._waiting  # the calls queued behind the held write
        for _ in range(10_000):
            if len(waiting) == len(later):
                break
            await asyncio.sleep(0.001)
        assert len(waiting) == len(later) and len(self.writes) == 1
        self.release.set()
        return await asyncio.gather(held, *queued, return_exceptions=True)


async def test_webhooks_arriving_during_a_write_are_acknowledged_after_one_write_together(
    client, services, factory, monkeypatch
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    held = HeldWrites(monkeypatch)
    # Eleven more, and a redelivery of the one being written, while it is held.
    answers = await held.post(client, services, inbox, 0, [*range(1, 12), 0])
    assert [response.status_code for response in answers] == [200] * 13
    assert held.writes[0] == ["message:m-0"] and sorted(held.writes[1]) == sorted(
        [f"message:m-{n}" for n in range(12)]
    )
    assert len(held.writes) == 2
    assert await _count(services, InboundEvent) == 12
    assert await _count(services, OutboxJob) == 12


async def test_a_call_that_fails_its_write_fails_alone(client, services, factory, monkeypatch):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    held = HeldWrites(monkeypatch, fail_on="message:m-2")
    answers = await held.post(client, services, inbox, 0, [1, 2, 3])
    statuses = [getattr(answer, "status_code", "raised") for answer in answers]
    # The provider is told to retry the failed call only; the others are acknowledged.
    assert statuses[0] == statuses[1] == statuses[3] == 200
    assert statuses[2] != 200
    # Together, then one by one.
    assert sorted(held.writes[1]) == ["message:m-1", "message:m-2", "message:m-3"]
    async with services.read_session() as session:
        keys = sorted((await session.scalars(select(InboundEvent.dedupe_key))).all())
    assert keys == ["message:m-0", "message:m-1", "message:m-3"]
    assert await _count(services, OutboxJob) == 3
