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


@pytest.mark.redis
async def test_a_process_subscribes_only_to_the_channels_it_listens_for(redis_url):
    """A web process without a worker gets no wakes; a worker does not get every event."""
    import redis.asyncio as redis

    prefix = f"rapport-test-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(redis_url, prefix=prefix)
    probe = redis.from_url(redis_url)

    async def subscribers() -> dict[str, int]:
        for _ in range(200):
            if bus.connected.is_set():
                break
            await asyncio.sleep(0.01)
        counts = await probe.pubsub_numsub(
            bus.events_channel, bus.wake_channel, bus.ephemeral_channel
        )
        return {name.decode().rsplit(":", 1)[1]: count for name, count in counts}

    await bus.start()
    try:
        await asyncio.wait_for(bus.connected.wait(), 5)
        assert await subscribers() == {"events": 0, "outbox": 0, "ephemeral": 0}
        woken = asyncio.Event()
        bus.on_wake(woken.set)  # a worker, registered after the bus started
        assert await subscribers() == {"events": 0, "outbox": 1, "ephemeral": 0}
        await probe.publish(bus.wake_channel, b"1")
        await asyncio.wait_for(woken.wait(), 5)
        received: list[dict] = []

        async def on_event(wire: dict) -> None:
            received.append(wire)

        bus.on_event(on_event)
        assert await subscribers() == {"events": 1, "outbox": 1, "ephemeral": 0}
        await probe.publish(bus.events_channel, b'{"seq": 1}')
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [{"seq": 1}]
    finally:
        await bus.stop()
        await probe.aclose()
