"""The worker's loop: a claim that was not full polls again only when woken or idle."""

import asyncio

import pytest

from rapport.db import outbox
from rapport.domain import events
from rapport.workers.jobs import JOBS
from rapport.workers.relay import Worker
from tests.support.live import eventually

IDLE = 30.0  # longer than any test: a job run sooner than this was woken for


async def _enqueue(services, account_id, n):
    async with services.session() as session:
        for i in range(n):
            outbox.enqueue(session, kind="test.job", payload={"n": i}, account_id=account_id)
        await events.commit(session)  # wakes the workers


@pytest.fixture
def ran(monkeypatch):
    done: list[int] = []

    async def handler(services, job):
        async with services.session() as session:
            await outbox.complete(session, job.id)
            await events.commit(session)
        done.append(job.id)

    monkeypatch.setitem(JOBS, "test.job", handler)
    return done


class _Counted(Worker):
    """A worker that records how many jobs each of its claims took."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.claims: list[int] = []
        self.after_claim = None

    async def run_once(self) -> int:
        done = await super().run_once()
        self.claims.append(done)
        if self.after_claim is not None:
            after, self.after_claim = self.after_claim, None
            await after()
        return done


async def _running(worker):
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    return stop, task


async def test_a_full_batch_goes_back_for_more_and_a_partial_one_waits(services, factory, ran):
    account = await factory.account()
    worker = _Counted(services, worker_id="w", concurrency=4, idle_poll_seconds=IDLE)
    stop, task = await _running(worker)
    try:
        await eventually(lambda: _true(worker.claims == [0]))
        await _enqueue(services, account.id, 6)
        await eventually(lambda: _true(len(ran) == 6))
        await _enqueue(services, account.id, 1)
        await eventually(lambda: _true(len(ran) == 7))
        await asyncio.sleep(0.2)
        # 4 of 6 filled the batch: straight back for 2; then nothing until the next wake,
        # and never a poll that finds nothing.
        assert worker.claims == [0, 4, 2, 1]
    finally:
        stop.set()
        await task


async def test_a_wake_during_an_empty_claim_is_not_lost(services, factory, ran):
    account = await factory.account()
    worker = _Counted(services, worker_id="w", concurrency=4, idle_poll_seconds=IDLE)

    async def commit_a_job() -> None:  # after the claim found nothing, before the worker sleeps
        await _enqueue(services, account.id, 1)

    worker.after_claim = commit_a_job
    stop, task = await _running(worker)
    try:
        await eventually(lambda: _true(len(ran) == 1), within=5.0)
        assert worker.claims[:2] == [0, 1]
    finally:
        stop.set()
        await task


async def _true(value: bool) -> bool:
    return value
