"""The hub: pushes committed events to this node's sockets, in order, without loss.

Per account the hub remembers the last event number it delivered. Events arrive from the bus in
any order and possibly twice; numbers are gap-free per account, so a repeat is dropped and a gap
is filled from the event log before the newer event goes out. A slow poll of each account's
latest number catches anything the bus never brought (Redis down, a worker in another process
with no Redis). Fan-out itself never touches the database: each subscriber decides from the
event alone, with the one visibility rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from rapport.domain.conversations.policies import Viewer, can_see
from rapport.domain.events import Audience, ConversationEvent, PublishedEvent
from rapport.realtime.ephemeral import EPHEMERAL_SEQ, Typing
from rapport.realtime.feed import SocketFeed

log = structlog.get_logger(__name__)

# Reads the log: (account_id, after_seq) -> events in order; and account -> latest number.
Replay = Callable[[int, int], Awaitable[Sequence[PublishedEvent]]]
LatestSeqs = Callable[[Sequence[int]], Awaitable[dict[int, int]]]

# What a visitor's widget needs of an event: no agent, team or inbox ids.
VISITOR_FIELDS = ("message_id", "status", "direction", "sender_type")


class Subscriber(Protocol):
    """One socket. `encode` depends on the event and the subscriber's class only, so fan-out
    encodes each event once per kind of subscriber, not once per socket."""

    @property
    def account_id(self) -> int: ...

    @property
    def feed(self) -> SocketFeed: ...

    def accepts(self, event: PublishedEvent) -> bool: ...

    def encode(self, event: PublishedEvent) -> str: ...

    def ephemeral_frame(self, signal: Typing) -> str | None: ...


@dataclass(eq=False)
class AgentSubscriber:
    """An agent's browser tab."""

    viewer: Viewer
    feed: SocketFeed = field(default_factory=SocketFeed)

    @property
    def account_id(self) -> int:
        return self.viewer.account_id

    def accepts(self, event: PublishedEvent) -> bool:
        return agent_may_receive(self.viewer, event)

    def encode(self, event: PublishedEvent) -> str:
        return encode(event)

    def ephemeral_frame(self, signal: Typing) -> str | None:
        return signal.for_agent(self.viewer)


@dataclass(eq=False)
class VisitorSubscriber:
    """A customer's live session (the website widget) following one conversation."""

    account_id: int
    conversation_id: int
    feed: SocketFeed = field(default_factory=SocketFeed)

    def accepts(self, event: PublishedEvent) -> bool:
        return (
            isinstance(event.event, ConversationEvent)
            and event.event.conversation_id == self.conversation_id
            and event.event.reaches_visitor()
        )

    def encode(self, event: PublishedEvent) -> str:
        return encode_for_visitor(event)

    def ephemeral_frame(self, signal: Typing) -> str | None:
        return signal.for_visitor(self.conversation_id)


def agent_may_receive(viewer: Viewer, event: PublishedEvent) -> bool:
    """The visibility rule applied to an event (the same rule lists and views use)."""
    if event.account_id != viewer.account_id:
        return False
    audience = event.event.audience
    if audience == Audience.account:
        return True
    if audience == Audience.admins:
        return viewer.role in ("admin", "supervisor")
    scoped = event.event
    if not isinstance(scoped, ConversationEvent):
        return False
    if can_see(
        viewer, account_id=event.account_id, assignee_id=scoped.assignee_id, team_id=scoped.team_id
    ):
        return True
    # An agent who just lost a conversation still hears that it left their view.
    previous = getattr(scoped, "previous_assignee_id", None)
    return previous == viewer.user_id


def encode(event: PublishedEvent) -> str:
    """An event as an agent's tab receives it."""
    return json.dumps({"kind": "event", **event.to_wire()}, separators=(",", ":"))


def encode_for_visitor(event: PublishedEvent) -> str:
    """An event as a visitor's widget receives it: no agent, team or inbox ids."""
    data = {k: v for k, v in event.event.model_dump(mode="json").items() if k in VISITOR_FIELDS}
    frame = {"kind": "event", "seq": event.seq, "type": event.type, "data": data}
    return json.dumps(frame, separators=(",", ":"))


class Hub:
    def __init__(self, *, replay: Replay, latest: LatestSeqs, poll_interval: float = 2.0) -> None:
        self._replay = replay
        self._latest = latest
        self._poll_interval = poll_interval
        self._subscribers: dict[int, set[Subscriber]] = defaultdict(set)
        self._last_seq: dict[int, int] = {}
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._poller: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever(), name="hub-poll")

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.feed.close()

    # --- subscriptions -----------------------------------------------------------------------

    async def subscribe(self, subscriber: Subscriber) -> int:
        """Register a socket; returns the account's latest number at that moment."""
        account_id = subscriber.account_id
        async with self._locks[account_id]:
            if account_id not in self._last_seq:
                latest = await self._latest([account_id])
                self._last_seq[account_id] = latest.get(account_id, 0)
            self._subscribers[account_id].add(subscriber)
            return self._last_seq[account_id]

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.account_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.account_id]
                self._last_seq.pop(subscriber.account_id, None)

    def connected_count(self, account_id: int | None = None) -> int:
        if account_id is not None:
            return len(self._subscribers.get(account_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def followed_accounts(self) -> list[int]:
        return list(self._subscribers)

    def connected_agent_ids(self, account_id: int) -> set[int]:
        return {
            s.viewer.user_id
            for s in self._subscribers.get(account_id, ())
            if isinstance(s, AgentSubscriber)
        }

    # --- delivery ----------------------------------------------------------------------------

    async def on_wire(self, wire: dict[str, Any]) -> None:
        """A bus message: deliver it in order, filling any gap from the event log first."""
        account_id = int(wire["account_id"])
        if account_id not in self._subscribers:
            return
        seq = int(wire["seq"])
        async with self._locks[account_id]:
            last = self._last_seq.get(account_id, 0)
            if seq <= last:
                return
            if seq > last + 1:
                await self._catch_up_locked(account_id, upto=seq - 1)
            if seq == self._last_seq.get(account_id, 0) + 1:
                self._fan_out(PublishedEvent.from_wire(wire))

    async def on_ephemeral(self, wire: dict[str, Any]) -> None:
        """A typing signal from the bus: straight to the sockets it concerns, never logged."""
        if wire.get("kind") != "typing":
            return
        signal = Typing.from_wire(wire)
        for subscriber in tuple(self._subscribers.get(signal.account_id, ())):
            frame = subscriber.ephemeral_frame(signal)
            if frame is not None:
                # A socket too far behind for one more frame loses a typing hint, nothing more.
                subscriber.feed.put(EPHEMERAL_SEQ, frame)

    async def catch_up_all(self) -> None:
        """Compare every followed account with the log and deliver what is missing."""
        accounts = list(self._subscribers)
        if not accounts:
            return
        latest = await self._latest(accounts)
        for account_id in accounts:
            if latest.get(account_id, 0) > self._last_seq.get(account_id, 0):
                async with self._locks[account_id]:
                    await self._catch_up_locked(account_id, upto=latest[account_id])

    async def _catch_up_locked(self, account_id: int, *, upto: int) -> None:
        while self._last_seq.get(account_id, 0) < upto:
            batch = await self._replay(account_id, self._last_seq.get(account_id, 0))
            before = self._last_seq.get(account_id, 0)
            for event in batch:
                if event.seq == self._last_seq.get(account_id, 0) + 1:
                    self._fan_out(event)
            if self._last_seq.get(account_id, 0) == before:
                return  # nothing more in the log yet (or a hole that cannot be filled)

    def _fan_out(self, event: PublishedEvent) -> None:
        self._last_seq[event.account_id] = event.seq
        frames: dict[type, str] = {}  # encoded once per kind of subscriber
        for subscriber in tuple(self._subscribers.get(event.account_id, ())):
            if not subscriber.accepts(event):
                continue
            kind = type(subscriber)
            text = frames.get(kind)
            if text is None:
                text = frames[kind] = subscriber.encode(event)
            if not subscriber.feed.put(event.seq, text):
                # A socket that cannot keep up is closed; its browser reconnects and replays.
                self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        self.unsubscribe(subscriber)
        subscriber.feed.close()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.catch_up_all()
            except Exception as exc:  # the database may be restarting; try again next round
                log.warning("realtime.poll_failed", error=str(exc))
