"""Typing signals reach the right sockets on every node without the event log; presence too."""

import asyncio
import json
import uuid

import pytest

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.policies import Viewer
from rapport.realtime.bus import MemoryBus, RedisBus
from rapport.realtime.ephemeral import Typing
from rapport.realtime.hub import AgentSubscriber, Hub, VisitorSubscriber
from rapport.realtime.presence import Presence


async def _no_replay(account_id, after):
    return []


async def _latest(accounts):
    return dict.fromkeys(accounts, 0)


def _hub() -> Hub:
    return Hub(replay=_no_replay, latest=_latest, poll_interval=3600)


def agent(user_id: int, *, visibility=Visibility.all) -> AgentSubscriber:
    return AgentSubscriber(Viewer(user_id, 1, Role.agent, frozenset(), visibility))


def typing(**overrides) -> dict:
    values = dict(
        account_id=1, conversation_id=10, assignee_id=None, team_id=None, who="visitor", typing=True
    )
    values.update(overrides)
    return Typing(**values).to_wire()


class Tabs:
    """Live sockets for subscribers; each records what it is sent."""

    def __init__(self) -> None:
        self.received: dict[object, asyncio.Queue[str]] = {}
        self.pumps: list[asyncio.Task[None]] = []

    def open(self, subscriber) -> None:
        received: asyncio.Queue[str] = asyncio.Queue()

        async def send(text: str) -> None:
            received.put_nowait(text)

        async def close() -> None:
            pass

        self.received[subscriber] = received
        pump = subscriber.feed.pump(send, after=0, close=close, ping_every=3600)
        self.pumps.append(asyncio.create_task(pump))

    async def frame_of(self, subscriber) -> dict:
        return json.loads(await asyncio.wait_for(self.received[subscriber].get(), 3.0))

    def got_nothing(self, *subscribers) -> bool:
        return all(self.received[s].empty() for s in subscribers)


@pytest.fixture
async def tabs():
    tabs = Tabs()
    yield tabs
    for pump in tabs.pumps:
        pump.cancel()
    await asyncio.gather(*tabs.pumps, return_exceptions=True)


async def test_visitor_typing_reaches_agents_who_may_see_it_but_not_other_visitors(tabs):
    hub = _hub()
    bus = MemoryBus()
    bus.on_ephemeral(hub.on_ephemeral)
    ana, ben = agent(1), agent(2, visibility=Visibility.assigned)
    same, other = VisitorSubscriber(1, 10), VisitorSubscriber(1, 11)
    for s in (ana, ben, same, other):
        await hub.subscribe(s)
        tabs.open(s)
    await bus.publish_ephemeral(typing())
    assert (await tabs.frame_of(ana))["who"] == "visitor"
    assert tabs.got_nothing(ben, same, other)


async def test_agent_typing_reaches_the_visitor_and_colleagues_not_the_typist(tabs):
    hub = _hub()
    bus = MemoryBus()
    bus.on_ephemeral(hub.on_ephemeral)
    ana, ben, visitor = agent(1), agent(2), VisitorSubscriber(1, 10)
    for s in (ana, ben, visitor):
        await hub.subscribe(s)
        tabs.open(s)
    await bus.publish_ephemeral(typing(who="agent", user_id=1, name="Ana"))
    seen = await tabs.frame_of(visitor)
    assert seen == {"kind": "typing", "who": "agent", "name": "Ana", "typing": True, "ttl": 6}
    assert (await tabs.frame_of(ben))["conversation_id"] == 10
    assert tabs.got_nothing(ana)


@pytest.mark.redis
async def test_typing_crosses_nodes_through_redis_once(redis_url, tabs):
    prefix = f"rapport-test-{uuid.uuid4().hex[:8]}"
    nodes = [(RedisBus(redis_url, prefix=prefix), _hub()) for _ in range(2)]
    for bus, hub in nodes:
        bus.on_ephemeral(hub.on_ephemeral)
        await bus.start()
    try:
        for bus, _ in nodes:
            await asyncio.wait_for(bus.connected.wait(), 5)
        here, there = agent(1), agent(2)
        await nodes[0][1].subscribe(here)
        await nodes[1][1].subscribe(there)
        tabs.open(here)
        tabs.open(there)
        await nodes[0][0].publish_ephemeral(typing())
        assert (await tabs.frame_of(there))["typing"] is True
        assert (await tabs.frame_of(here))["typing"] is True
        await asyncio.sleep(0)  # the node's own copy coming back from Redis is dropped
        await nodes[0][0].publish_ephemeral(typing(typing=False))
        assert (await tabs.frame_of(here))["typing"] is False
        assert tabs.got_nothing(here)
    finally:
        for bus, _ in nodes:
            await bus.stop()


@pytest.mark.redis
async def test_presence_sees_agents_on_other_nodes_and_forgets_them(redis_url):
    prefix = f"rapport-test-{uuid.uuid4().hex[:8]}"
    hub_a, hub_b = _hub(), _hub()
    a = Presence(hub_a, redis_url, prefix=prefix, beat_seconds=3600)
    b = Presence(hub_b, redis_url, prefix=prefix, beat_seconds=3600)
    await a.start()
    await b.start()
    try:
        tab = agent(7)
        await hub_a.subscribe(tab)
        await a.beat()
        assert await b.agents_online(1) == {7}
        hub_a.unsubscribe(tab)
        await a.beat()
        assert await b.agents_online(1) == set()
    finally:
        await a.stop()
        await b.stop()


async def test_presence_without_redis_is_this_nodes_sockets():
    hub = _hub()
    presence = Presence(hub, None)
    await presence.start()
    await hub.subscribe(agent(3))
    await hub.subscribe(VisitorSubscriber(1, 10))
    assert await presence.agents_online(1) == {3}
    await presence.stop()
