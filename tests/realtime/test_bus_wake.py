"""Worker wake-ups through Redis: every commit is followed by a wake, a burst shares them."""

import asyncio
import uuid

import pytest

from rapport.realtime.bus import RedisBus


@pytest.mark.redis
async def test_a_burst_of_commits_shares_wakes_and_the_last_one_still_wakes(redis_url):
    prefix = f"rapport-test-{uuid.uuid4().hex[:8]}"
    web, worker = RedisBus(redis_url, prefix=prefix), RedisBus(redis_url, prefix=prefix)
    woken = asyncio.Event()
    wakes: list[int] = []

    def on_wake() -> None:
        wakes.append(1)
        woken.set()

    worker.on_wake(on_wake)
    for bus in (web, worker):
        await bus.start()
    try:
        for bus in (web, worker):
            await asyncio.wait_for(bus.connected.wait(), 5)
        await asyncio.gather(*(web.wake_workers() for _ in range(50)))
        await asyncio.wait_for(woken.wait(), 5)
        await asyncio.sleep(0.2)
        assert 1 <= len(wakes) < 50  # shared, not one publish per commit
        # A commit after the burst gets a wake of its own.
        woken.clear()
        await web.wake_workers()
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        for bus in (web, worker):
            await bus.stop()
