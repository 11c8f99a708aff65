"""Fan-out: every socket gets its events in order, written at once while it is idle, queued
while it is busy, closed (never silently skipped) when it falls too far behind."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.policies import Viewer
from rapport.domain.events import ContactCreated, MessageCreated, PublishedEvent
from rapport.realtime.ephemeral import EPHEMERAL_SEQ
from rapport.realtime.feed import SocketFeed, run_until_suspended
from rapport.realtime.hub import AgentSubscriber, Hub, VisitorSubscriber


class FakeSocket:
    """A socket whose sends complete at once, unless `gate` is cleared (the transport is full)."""

    def __init__(self, feed: SocketFeed, *, after: int = 0) -> None:
        self.sent: list[str] = []
        self.closed = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self.feed = feed
        self.task = asyncio.create_task(
            feed.pump(self.send, after=after, close=self.close, ping_every=3600)
        )

    async def send(self, text: str) -> None:
        if self.fail:
            raise RuntimeError("the client went away")
        await self.gate.wait()
        self.sent.append(text)

    async def close(self) -> None:
        self.closed.set()

    def seqs(self) -> list[int]:
        return [json.loads(text)["seq"] for text in self.sent]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def message(seq: int, *, account_id: int = 1, private: bool = False, assignee_id=None):
    event = MessageCreated(
        conversation_id=10,
        contact_id=5,
        assignee_id=assignee_id,
        team_id=None,
        inbox_id=3,
        message_id=100 + seq,
        direction="outgoing",
        private=private,
        channel="webchat",
        sender_type="user",
    )
    return PublishedEvent(account_id, seq, event, None, datetime(2026, 1, 1, tzinfo=UTC))


def contact_created(seq: int) -> PublishedEvent:
    return PublishedEvent(
        1, seq, ContactCreated(contact_id=5), None, datetime(2026, 1, 1, tzinfo=UTC)
    )


def agent(user_id: int, *, visibility=Visibility.all, role=Role.agent) -> AgentSubscriber:
    return AgentSubscriber(Viewer(user_id, 1, role, frozenset(), visibility))


class Log:
    """The event log the hub fills gaps from."""

    def __init__(self) -> None:
        self.events: list[PublishedEvent] = []

    async def replay(self, account_id: int, after: int) -> list[PublishedEvent]:
        return [e for e in self.events if e.account_id == account_id and e.seq > after]

    async def latest(self, accounts) -> dict[int, int]:
        return {
            a: max((e.seq for e in self.events if e.account_id == a), default=0) for a in accounts
        }


def wire(event: PublishedEvent) -> dict:
    return event.to_wire()


# --- running a send at once ---------------------------------------------------------------------


async def test_a_send_that_does_not_wait_is_done_before_the_call_returns():
    done = []

    async def send() -> None:
        done.append(1)

    assert run_until_suspended(send()) is None
    assert done == [1]


async def test_a_send_that_waits_is_finished_by_whoever_awaits_the_rest():
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done = []

    async def send() -> str:
        done.append(await gate)
        return "ignored"

    rest = run_until_suspended(send())
    assert rest is not None and done == []
    finisher = asyncio.ensure_future(rest)
    await settle()
    assert not finisher.done()
    gate.set_result("sent")
    await finisher
    assert done == ["sent"]


async def test_a_send_that_only_yields_once_is_finished_too():
    done = []

    async def send() -> None:
        await asyncio.sleep(0)  # a bare yield to the loop, no future
        done.append(1)

    rest = run_until_suspended(send())
    assert rest is not None and done == []
    await rest
    assert done == [1]


async def test_cancelling_the_finisher_cancels_the_send_it_took_over():
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned = []

    async def send() -> None:
        try:
            await gate
        finally:
            cleaned.append(True)

    rest = run_until_suspended(send())
    assert rest is not None
    finisher = asyncio.ensure_future(rest)
    await settle()
    finisher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finisher
    assert cleaned == [True] and gate.cancelled()


async def test_an_error_in_the_first_step_reaches_the_caller():
    async def send() -> None:
        raise ValueError("closed")

    with pytest.raises(ValueError):
        run_until_suspended(send())


# --- one socket's feed ----------------------------------------------------------------------------


async def test_an_idle_live_socket_is_written_at_once_without_waking_its_task():
    feed = SocketFeed()
    socket = FakeSocket(feed)
    await settle()  # the pump is waiting: the socket is live and idle
    assert feed.put(1, '{"seq":1}')
    assert socket.sent == ['{"seq":1}']  # written inside put(), no task switch needed
    assert feed.pending() == []
    await socket.stop()


async def test_frames_queued_before_the_socket_is_live_go_first_and_in_order():
    feed = SocketFeed()
    for seq in (3, 4, 5):  # arriving while the socket replays the log up to 4
        feed.put(seq, json.dumps({"seq": seq}))
    feed.put(EPHEMERAL_SEQ, json.dumps({"seq": "typing"}))
    socket = FakeSocket(feed, after=4)
    feed.put(6, json.dumps({"seq": 6}))  # the pump has not run yet: queued behind the others
    await settle()
    assert socket.seqs() == [5, "typing", 6]  # 3 and 4 were replayed already
    await socket.stop()


async def test_a_live_socket_is_not_sent_again_what_its_replay_sent():
    socket = FakeSocket(feed := SocketFeed(), after=4)
    await settle()  # live: frames go straight out from now on
    for seq in (4, 5):  # the bus brings 4 late, after the replay read it from the log
        feed.put(seq, json.dumps({"seq": seq}))
    feed.put(EPHEMERAL_SEQ, json.dumps({"seq": "typing"}))
    assert socket.seqs() == [5, "typing"]
    await socket.stop()


async def test_a_busy_socket_falls_back_to_its_queue_and_keeps_the_order():
    feed = SocketFeed()
    socket = FakeSocket(feed)
    await settle()
    socket.gate.clear()  # the transport is full: the next send waits
    for seq in range(1, 6):
        assert feed.put(seq, json.dumps({"seq": seq}))
    assert socket.sent == []
    assert [seq for seq, _ in feed.pending()] == [2, 3, 4, 5]  # 1 is in flight
    socket.gate.set()
    await settle()
    assert socket.seqs() == [1, 2, 3, 4, 5]
    feed.put(6, json.dumps({"seq": 6}))  # idle again: written at once
    assert socket.seqs() == [1, 2, 3, 4, 5, 6]
    await socket.stop()


async def test_a_socket_too_far_behind_refuses_more_and_a_closed_one_is_closed():
    feed = SocketFeed(limit=2)
    socket = FakeSocket(feed)
    await settle()
    socket.gate.clear()
    assert feed.put(1, "{}")  # in flight
    assert feed.put(2, "{}") and feed.put(3, "{}")  # queued
    assert not feed.put(4, "{}")  # over the limit
    feed.close()
    socket.gate.set()
    await asyncio.wait_for(socket.closed.wait(), 3)
    assert feed.pending() == []
    await socket.stop()


async def test_a_send_that_fails_on_the_direct_path_closes_the_socket():
    feed = SocketFeed()
    socket = FakeSocket(feed)
    await settle()
    socket.fail = True
    assert feed.put(1, "{}")  # the error stays with this socket
    assert feed.closing
    await asyncio.wait_for(socket.closed.wait(), 3)
    await socket.stop()


async def test_a_quiet_socket_is_pinged():
    feed = SocketFeed()
    sent: asyncio.Queue[str] = asyncio.Queue()

    async def send(text: str) -> None:
        sent.put_nowait(text)
        await asyncio.sleep(0)

    async def close() -> None:
        pass

    task = asyncio.create_task(feed.pump(send, after=0, close=close, ping_every=0.01))
    assert await asyncio.wait_for(sent.get(), 3) == '{"kind":"ping"}'
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- the hub ------------------------------------------------------------------------------------


async def test_fan_out_reaches_every_socket_in_order_and_fills_gaps_from_the_log():
    log = Log()
    hub = Hub(replay=log.replay, latest=log.latest, poll_interval=3600)
    tabs = [agent(n) for n in range(1, 4)]
    sockets = []
    for tab in tabs:
        after = await hub.subscribe(tab)
        sockets.append(FakeSocket(tab.feed, after=after))
    await settle()
    sockets[1].gate.clear()  # one tab is slow for a while
    log.events = [message(1), message(2), message(3)]
    await hub.on_wire(wire(log.events[0]))
    await hub.on_wire(wire(log.events[2]))  # 2 never came over the bus: read from the log
    await hub.on_wire(wire(log.events[1]))  # ... and its late copy is dropped
    sockets[1].gate.set()
    await settle()
    for socket in sockets:
        assert socket.seqs() == [1, 2, 3]
    for socket in sockets:
        await socket.stop()


async def test_fan_out_keeps_the_visibility_rule_and_gives_visitors_their_own_frame():
    log = Log()
    hub = Hub(replay=log.replay, latest=log.latest, poll_interval=3600)
    admin = agent(1, role=Role.admin)
    assigned_only = agent(2, visibility=Visibility.assigned)
    visitor, other_visitor = VisitorSubscriber(1, 10), VisitorSubscriber(1, 11)
    sockets = {}
    for subscriber in (admin, assigned_only, visitor, other_visitor):
        sockets[id(subscriber)] = FakeSocket(subscriber.feed, after=await hub.subscribe(subscriber))
    await settle()
    log.events = [
        message(1),
        message(2, private=True),
        contact_created(3),
        message(4, assignee_id=2),
    ]
    for event in log.events:
        await hub.on_wire(wire(event))
    await settle()
    assert sockets[id(admin)].seqs() == [1, 2, 3, 4]
    assert sockets[id(assigned_only)].seqs() == [3, 4]
    assert sockets[id(visitor)].seqs() == [1, 4]  # never the private note
    assert sockets[id(other_visitor)].seqs() == []
    first = json.loads(sockets[id(visitor)].sent[0])
    assert first == {
        "kind": "event",
        "seq": 1,
        "type": "message.created",
        "data": {"message_id": 101, "direction": "outgoing", "sender_type": "user"},
    }
    assert json.loads(sockets[id(admin)].sent[0])["data"]["inbox_id"] == 3
    for socket in sockets.values():
        await socket.stop()


async def test_a_socket_that_cannot_keep_up_is_closed_and_the_others_still_get_everything():
    log = Log()
    hub = Hub(replay=log.replay, latest=log.latest, poll_interval=3600)
    fast, slow = agent(1), agent(2)
    slow.feed = SocketFeed(limit=2)
    sockets = [FakeSocket(s.feed, after=await hub.subscribe(s)) for s in (fast, slow)]
    await settle()
    sockets[1].gate.clear()
    log.events = [message(seq) for seq in range(1, 6)]
    for event in log.events:
        await hub.on_wire(wire(event))
    assert hub.connected_count(1) == 1  # the slow tab was let go
    sockets[1].gate.set()
    await asyncio.wait_for(sockets[1].closed.wait(), 3)  # its browser resumes from the log
    assert sockets[0].seqs() == [1, 2, 3, 4, 5]
    for socket in sockets:
        await socket.stop()


async def test_stopping_the_hub_closes_every_socket():
    log = Log()
    hub = Hub(replay=log.replay, latest=log.latest, poll_interval=3600)
    tab = agent(1)
    socket = FakeSocket(tab.feed, after=await hub.subscribe(tab))
    await hub.start()
    await hub.stop()
    await asyncio.wait_for(socket.closed.wait(), 3)
    await socket.stop()
