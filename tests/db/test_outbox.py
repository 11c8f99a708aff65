"""The outbox: leases, retries with backoff, dead letters, and no double claims."""

import asyncio
import json
from datetime import timedelta

from sqlalchemy import select

from rapport.db import outbox
from rapport.db.outbox import OutboxJob
from rapport.domain import events


async def _enqueue(services, account_id, n=1, kind="test.job"):
    async with services.session() as session:
        for i in range(n):
            outbox.enqueue(session, kind=kind, payload={"n": i}, account_id=account_id)
        await events.commit(session)


async def _claim(services, worker_id="w", limit=10, lease=60):
    async with services.session() as session:
        return await outbox.claim(session, worker_id=worker_id, limit=limit, lease_seconds=lease)


async def test_nothing_is_visible_before_commit(services, factory):
    account = await factory.account()
    async with services.session() as session:
        outbox.enqueue(session, kind="test.job", payload={}, account_id=account.id)
        await session.flush()
        async with services.read_session() as other:  # another transaction sees nothing yet
            assert (await other.scalars(select(OutboxJob.id))).all() == []
        await events.rollback(session)
    assert await _claim(services) == []


async def test_a_claimed_job_is_leased_and_comes_back_if_never_finished(services, factory):
    account = await factory.account()
    await _enqueue(services, account.id)
    first = await _claim(services, "w1", lease=0)  # the worker dies right after claiming
    assert [j.attempts for j in first] == [1]
    again = await _claim(services, "w2")
    assert [j.id for j in again] == [first[0].id]
    assert again[0].attempts == 2
    assert await _claim(services, "w3") == []  # leased to w2 now


async def test_retry_backs_off_and_dies_after_max_attempts(services, factory):
    account = await factory.account()
    await _enqueue(services, account.id)
    job = (await _claim(services))[0]
    async with services.session() as session:
        dead = await outbox.retry_later(
            session, job_id=job.id, attempts=job.attempts, error="boom", max_attempts=2
        )
        await events.commit(session)
    assert not dead
    assert await _claim(services) == []  # backing off
    async with services.session() as session:
        row = await session.get(OutboxJob, job.id)
        row.available_at = row.created_at  # time passes
        await events.commit(session)
    job = (await _claim(services))[0]
    async with services.session() as session:
        assert await outbox.retry_later(
            session, job_id=job.id, attempts=job.attempts, error="boom", max_attempts=2
        )
        await events.commit(session)
        row = await session.get(OutboxJob, job.id)
        assert row.dead_at is not None and row.last_error == "boom"


async def test_concurrent_claims_never_take_the_same_job(services, factory):
    account = await factory.account()
    await _enqueue(services, account.id, n=40)
    batches = await asyncio.gather(*(_claim(services, f"w{i}", limit=7) for i in range(6)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_payloads_round_trip_through_json(services, factory):
    account = await factory.account()
    payload = {"message_id": 12, "nested": {"list": [1, "two", None]}}
    async with services.session() as session:
        outbox.enqueue(session, kind="test.job", payload=payload, account_id=account.id)
        await events.commit(session)
    job = (await _claim(services))[0]
    assert job.payload == json.loads(json.dumps(payload))
    async with services.session() as session:
        assert (await session.scalars(select(OutboxJob.kind))).all() == ["test.job"]


async def test_the_longest_due_jobs_are_claimed_first_and_returned_in_id_order(services, factory):
    account = await factory.account()
    await _enqueue(services, account.id, n=4)
    async with services.session() as session:
        rows = list(await session.scalars(select(OutboxJob).order_by(OutboxJob.id)))
        for row, earlier in zip(rows, (0, 1, 2, 3), strict=True):  # the newest came due first
            row.available_at = row.created_at - timedelta(seconds=earlier)
        ids = [row.id for row in rows]
        await events.commit(session)
    first = await _claim(services, limit=2)
    assert [j.id for j in first] == [ids[2], ids[3]]
    assert [j.id for j in await _claim(services, limit=2)] == [ids[0], ids[1]]


async def test_a_dead_job_is_never_claimed(services, factory):
    account = await factory.account()
    await _enqueue(services, account.id)
    job = (await _claim(services, lease=0))[0]
    async with services.session() as session:
        assert await outbox.retry_later(
            session, job_id=job.id, attempts=job.attempts, error="boom", max_attempts=1
        )
        row = await session.get(OutboxJob, job.id)
        row.available_at = row.created_at  # due, but dead
        await events.commit(session)
    assert await _claim(services) == []
