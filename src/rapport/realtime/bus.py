"""The bus carries committed events between processes: in-process by default, Redis across nodes.

The bus is only the fast path. Events are numbered per account without gaps, so the hub notices
anything the bus lost (a Redis restart, a dropped connection) and reads it from the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as redis
import structlog

from rapport.domain.events import PublishedEvent

log = structlog.get_logger(__name__)

Listener = Callable[[dict[str, Any]], Awaitable[None]]
WakeListener = Callable[[], None]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[PublishedEvent]) -> None: ...

    async def wake_workers(self) -> None: ...

    def on_event(self, listener: Listener) -> None: ...

    async def publish_ephemeral(self, wire: dict[str, Any]) -> None: ...

    def on_ephemeral(self, listener: Listener) -> None: ...

    def on_wake(self, listener: WakeListener) -> None: ...

    def on_reconnect(self, listener: Callable[[], Awaitable[None]]) -> None: ...


class _Listeners:
    def __init__(self) -> None:
        self.events: list[Listener] = []
        self.ephemerals: list[Listener] = []
        self.wakes: list[WakeListener] = []
        self.reconnects: list[Callable[[], Awaitable[None]]] = []

    def on_event(self, listener: Listener) -> None:
        self.events.append(listener)
        self._listeners_changed()

    def on_wake(self, listener: WakeListener) -> None:
        self.wakes.append(listener)
        self._listeners_changed()

    def on_ephemeral(self, listener: Listener) -> None:
        self.ephemerals.append(listener)
        self._listeners_changed()

    def _listeners_changed(self) -> None:
        return None

    def on_reconnect(self, listener: Callable[[], Awaitable[None]]) -> None:
        self.reconnects.append(listener)

    async def deliver(self, wire: dict[str, Any]) -> None:
        await self._call(self.events, wire)

    async def deliver_ephemeral(self, wire: dict[str, Any]) -> None:
        await self._call(self.ephemerals, wire)

    async def _call(self, listeners: list[Listener], wire: dict[str, Any]) -> None:
        for listener in listeners:
            try:
                await listener(wire)
            except Exception:  # one broken listener must not stop the others
                log.exception("realtime.listener_failed")

    def wake(self) -> None:
        for listener in self.wakes:
            listener()


class MemoryBus(_Listeners):
    """Single-process bus: publish calls the listeners directly."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        for event in events:
            await self.deliver(event.to_wire())

    async def wake_workers(self) -> None:
        self.wake()

    async def publish_ephemeral(self, wire: dict[str, Any]) -> None:
        await self.deliver_ephemeral(wire)


class RedisBus(_Listeners):
    """Redis pub/sub across nodes; reconnects by itself and tells listeners to catch up.

    A process subscribes only to the channels it has listeners for: a web process without a
    worker does not receive the wakes it publishes, and a worker does not receive every event
    (each message received costs the client its parsing)."""

    def __init__(self, url: str, *, prefix: str = "rapport") -> None:
        super().__init__()
        self._url = url
        self.events_channel = f"{prefix}:events"
        self.wake_channel = f"{prefix}:outbox"
        self.ephemeral_channel = f"{prefix}:ephemeral"
        # Marks this node's ephemeral publishes, which it already delivered locally.
        self.node_id = uuid.uuid4().hex
        self._client: redis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._waking = False
        self._wake_again = False
        self._subscribed: frozenset[str] = frozenset()

    async def start(self) -> None:
        self._client = redis.from_url(
            self._url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=10
        )
        self._task = asyncio.create_task(self._listen(), name="redis-bus")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client:
            await self._client.aclose()

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        if not events:
            return
        # Local listeners first: a node must not depend on Redis to see its own events.
        for event in events:
            await self.deliver(event.to_wire())
        try:
            assert self._client is not None
            async with self._client.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(self.events_channel, json.dumps(event.to_wire()))
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # Other nodes catch up from the event log; nothing is lost.
            log.warning("realtime.publish_failed", error=str(exc))

    async def publish_ephemeral(self, wire: dict[str, Any]) -> None:
        """Local listeners now, other nodes through Redis; lost if Redis is down (by design)."""
        await self.deliver_ephemeral(wire)
        with contextlib.suppress(redis.RedisError, OSError):
            assert self._client is not None
            await self._client.publish(
                self.ephemeral_channel, json.dumps({**wire, "node": self.node_id})
            )

    async def wake_workers(self) -> None:
        """Wake workers on every node. Commits that come while a wake is on its way share the
        next one (published after their commits, so it covers them): under a burst of webhooks
        this is a few publishes a round trip, not one per call."""
        self.wake()
        if self._waking:
            self._wake_again = True
            return
        self._waking = True
        try:
            while True:
                self._wake_again = False
                with contextlib.suppress(redis.RedisError, OSError):
                    assert self._client is not None
                    await self._client.publish(self.wake_channel, b"1")
                if not self._wake_again:
                    return
        finally:
            self._waking = False

    def _channels(self) -> frozenset[str]:
        wanted = (
            (self.events_channel, self.events),
            (self.wake_channel, self.wakes),
            (self.ephemeral_channel, self.ephemerals),
        )
        return frozenset(channel for channel, listeners in wanted if listeners)

    def _listeners_changed(self) -> None:
        """A listener for a channel not subscribed yet: subscribe again, with it."""
        if self._task is not None and not self._channels() <= self._subscribed:
            self._task.cancel()
            self.connected.clear()
            self._task = asyncio.create_task(self._listen(), name="redis-bus")

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("realtime.redis_disconnected", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _listen_once(self) -> None:
        assert self._client is not None
        channels = self._channels()
        if not channels:  # nothing to receive (yet): connected once Redis answers
            await self._client.ping()
            self._subscribed = channels
            self.connected.set()
            await asyncio.Event().wait()  # until a listener comes (`_listeners_changed`)
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*sorted(channels))
            self._subscribed = channels
            self.connected.set()
            for listener in self.reconnects:
                await listener()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    await pubsub.ping()
                    continue
                await self._handle(message)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _handle(self, message: dict[str, Any]) -> None:
        # `pubsub.ping()` answers arrive here too (type "pong", empty data): not a publish.
        if message.get("type") not in ("message", "pmessage"):
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if channel == self.wake_channel:
            self.wake()
            return
        try:
            wire = json.loads(message["data"])
        except ValueError:
            log.warning("realtime.bad_message", channel=channel)
            return
        if channel == self.ephemeral_channel:
            if wire.pop("node", None) != self.node_id:
                await self.deliver_ephemeral(wire)
            return
        # Our own publishes were delivered locally already; the hub drops repeats by number.
        await self.deliver(wire)


def create_bus(redis_url: str | None, *, prefix: str = "rapport") -> Bus:
    return RedisBus(redis_url, prefix=prefix) if redis_url else MemoryBus()
