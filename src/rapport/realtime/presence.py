"""Presence: which agents have an inbox tab open right now, on this node or any other.

Each node knows its own sockets (the hub). With Redis, each node also writes its agents into a
per-account sorted set (`user:node` scored by time) every few seconds and removes the ones that
left, so every node sees the others within one beat; entries of a node that died fall out after
the time-to-live. Without Redis there is one node and the hub is the whole truth. Redis being
down degrades to this node's view, never to an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import redis.asyncio as redis
import structlog

from rapport.realtime.hub import Hub

log = structlog.get_logger(__name__)


class Presence:
    def __init__(
        self,
        hub: Hub,
        redis_url: str | None,
        *,
        prefix: str = "rapport",
        beat_seconds: float = 5.0,
        ttl_seconds: float = 20.0,
    ) -> None:
        self._hub = hub
        self._url = redis_url
        self._prefix = prefix
        self._beat = beat_seconds
        self._ttl = ttl_seconds
        self._node = uuid.uuid4().hex[:12]
        self._client: redis.Redis | None = None
        self._written: dict[int, set[str]] = {}
        self._task: asyncio.Task[None] | None = None

    def _key(self, account_id: int) -> str:
        return f"{self._prefix}:presence:{account_id}"

    async def start(self) -> None:
        if self._url:
            self._client = redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=2)
            self._task = asyncio.create_task(self._beat_forever(), name="presence")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client:
            with contextlib.suppress(redis.RedisError, OSError):
                await self._forget_all()
            await self._client.aclose()

    async def agents_online(self, account_id: int) -> set[int]:
        """Agents of the account with an open tab on any node (this node's view if Redis fails)."""
        online = set(self._hub.connected_agent_ids(account_id))
        if self._client is None:
            return online
        try:
            members = await self._client.zrangebyscore(
                self._key(account_id), time.time() - self._ttl, "+inf"
            )
        except (redis.RedisError, OSError) as exc:
            log.warning("presence.read_failed", error=str(exc))
            return online
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            user = text.partition(":")[0]
            if user.isdigit():
                online.add(int(user))
        return online

    async def beat(self) -> None:
        """Write this node's agents and remove those who left since the last beat."""
        assert self._client is not None
        now = time.time()
        current = {
            account_id: {f"{u}:{self._node}" for u in self._hub.connected_agent_ids(account_id)}
            for account_id in self._hub.followed_accounts()
        }
        async with self._client.pipeline(transaction=False) as pipe:
            for account_id in set(current) | set(self._written):
                members = current.get(account_id, set())
                gone = self._written.get(account_id, set()) - members
                if gone:
                    pipe.zrem(self._key(account_id), *gone)
                if members:
                    pipe.zadd(self._key(account_id), dict.fromkeys(members, now))
                    pipe.expire(self._key(account_id), int(self._ttl * 3))
            await pipe.execute()
        self._written = {a: m for a, m in current.items() if m}

    async def _forget_all(self) -> None:
        assert self._client is not None
        for account_id, members in self._written.items():
            if members:
                await self._client.zrem(self._key(account_id), *members)
        self._written = {}

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self.beat()
            except (redis.RedisError, OSError) as exc:
                log.warning("presence.beat_failed", error=str(exc))
            await asyncio.sleep(self._beat)
