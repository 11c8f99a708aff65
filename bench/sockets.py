"""S4 (idle websockets: memory per socket) and S5 (one event fanned out to N agents)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import websockets

from bench import env
from bench.loadgen import Pool, open_loop
from bench.results import Result
from rapport.domain.events import MessageCreated, PublishedEvent
from rapport.realtime.hub import encode

CONNECT_CONCURRENCY = 128


class Crowd:
    """Many client sockets; records when each keyed frame reached each socket."""

    def __init__(self, url: str, key: Callable[[Any], str | None], **kw: Any) -> None:
        self.url = url
        self.key = key
        self.kw = kw
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.changed = asyncio.Event()

    async def grow(self, count: int, *, ready: Callable[[Any], Any] | None = None) -> None:
        """Open `count` more sockets, `CONNECT_CONCURRENCY` handshakes at a time."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with gate:
                socket = await asyncio.wait_for(
                    websockets.connect(self.url, max_size=None, open_timeout=30, **self.kw), 60
                )
                if ready is not None:
                    await asyncio.wait_for(ready(socket), 30)
                self.sockets.append(socket)
                self.readers.append(asyncio.create_task(self._read(socket)))

        await asyncio.gather(*(one() for _ in range(count)))

    async def _read(self, socket: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in socket:
                item = self.key(frame)
                if item is not None:
                    self.arrivals[item].append(time.monotonic())
                    self.changed.set()

    async def wait_all(self, item: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.arrivals[item]) < len(self.sockets):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for socket in self.sockets:
            with contextlib.suppress(Exception):
                socket.transport.abort()
        self.sockets.clear()


async def _until_live(socket: Any) -> None:
    """Rapport's socket replays, then says it is live."""
    while True:
        frame = json.loads(await socket.recv())
        if frame.get("kind") in ("live", "reset"):
            return


def _event_frame(message_id: int) -> str:
    """The frame Rapport pushes to an agent for an incoming SMS, made by the same encoder."""
    event = MessageCreated(
        conversation_id=1,
        contact_id=1,
        assignee_id=None,
        team_id=None,
        inbox_id=1,
        message_id=message_id,
        direction="incoming",
        private=False,
        channel="sms",
        sender_type="contact",
    )
    return encode(PublishedEvent(1, message_id, event, None, datetime.now(UTC)))


def _message_key(frame: Any) -> str | None:
    data = json.loads(frame)
    if data.get("kind") == "event" and data.get("type") == "message.created":
        return str(data["data"]["message_id"])
    return None


async def idle_sockets(quick: bool) -> Result:
    """S4: N idle agent sockets on one Rapport process vs the `websockets` library alone."""
    count = 1000 if quick else 10_000
    with env.workdir("s4") as work:
        async with env.python_server("bench.plain_ws", work, name="plain") as (plain, port):
            crowd = Crowd(f"ws://127.0.0.1:{port}", lambda frame: None)
            try:
                await crowd.grow(1)
                await asyncio.sleep(0.5)
                before = env.rss_kib(plain.pid)
                await crowd.grow(count - 1)
                await asyncio.sleep(1)
                after = env.rss_kib(plain.pid)
            finally:
                await crowd.close()
        plain_per_socket = (after - before) / (count - 1)
        async with env.sqlite_database(work) as url:
            seeded = await env.seed(url, work)
            async with env.rapport(env.rapport_env(url, work), work) as (web, base):
                cookie = await env.login_cookie(base, seeded.admin_email)
                crowd = Crowd(
                    base.replace("http", "ws", 1) + "/ws",
                    lambda frame: None,
                    additional_headers={"Cookie": cookie},
                    origin=base,
                )
                try:
                    await crowd.grow(1, ready=_until_live)
                    await asyncio.sleep(0.5)
                    rapport_before = env.rss_kib(web.pid)
                    started = time.monotonic()
                    await crowd.grow(count - 1, ready=_until_live)
                    connect_seconds = time.monotonic() - started
                    await asyncio.sleep(1)
                    rapport_after = env.rss_kib(web.pid)
                finally:
                    await crowd.close()
    per_socket = (rapport_after - rapport_before) / (count - 1)
    return Result(
        "S4",
        f"{count:,} idle agent websockets on one process",
        per_socket,
        "KiB/socket",
        plain_per_socket,
        "≤ 2 x raw memory per socket",
        per_socket <= 2 * plain_per_socket,
        details={
            "sockets": count,
            "rapport_rss_kib": [rapport_before, rapport_after],
            "raw_rss_kib": [before, after],
            "rapport_connect_seconds": round(connect_seconds, 1),
        },
    )


async def fan_out(quick: bool) -> Result:
    """S5: one event to N connected agents; deliveries/s from first to last socket."""
    count = 200 if quick else 1000
    rounds = 3 if quick else 6
    with env.workdir("s5") as work:
        # Baseline: websockets.broadcast to the same number of sockets, of a frame like the one
        # Rapport sends (same size, so the same compression and parsing work for every client).
        async with env.python_server("bench.plain_ws", work, name="plain") as (_plain, port):
            crowd = Crowd(f"ws://127.0.0.1:{port}", _message_key)
            control = await websockets.connect(f"ws://127.0.0.1:{port}")
            try:
                await crowd.grow(count)
                raw_rates = []
                for n in range(rounds):
                    await control.send(f"broadcast {_event_frame(n + 1)}")
                    if not await crowd.wait_all(str(n + 1), 30):
                        raise RuntimeError("a broadcast did not reach every socket")
                    times = crowd.arrivals[str(n + 1)]
                    raw_rates.append(count / max(max(times) - min(times), 1e-6))
            finally:
                await control.close()
                await crowd.close()
        async with env.sqlite_database(work) as url:
            seeded = await env.seed(url, work)
            async with env.rapport(env.rapport_env(url, work), work, with_worker=True) as (
                _web,
                base,
            ):
                cookie = await env.login_cookie(base, seeded.admin_email)
                crowd = Crowd(
                    base.replace("http", "ws", 1) + "/ws",
                    _message_key,
                    additional_headers={"Cookie": cookie},
                    origin=base,
                )
                http_port = int(base.rsplit(":", 1)[1])
                pool = Pool("127.0.0.1", http_port, limit=1)
                try:
                    await crowd.grow(count, ready=_until_live)
                    rates = []
                    path = f"/hooks/sms/{seeded.inbox_id}"
                    for n in range(rounds + 1):  # the first round creates the contact: warm-up
                        [request] = env.signed_sms_requests(
                            http_port, path, 1, customers=1, run=f"r{n:04d}"
                        )
                        seen = set(crowd.arrivals)
                        stats = await open_loop(pool, [request], 1)
                        if stats.ok != 1:
                            raise RuntimeError(f"the webhook was refused: {stats.statuses}")
                        item = await _new_item(crowd, seen, 30)
                        if not await crowd.wait_all(item, 30):
                            raise RuntimeError("an event did not reach every socket")
                        times = crowd.arrivals[item]
                        if n > 0:
                            rates.append(count / max(max(times) - min(times), 1e-6))
                finally:
                    pool.close()
                    await crowd.close()
    value, baseline = statistics.median(rates), statistics.median(raw_rates)
    return Result(
        "S5",
        f"one event fanned out to {count:,} connected agents",
        value,
        "deliveries/s",
        baseline,
        "≥ 0.5 x websockets.broadcast",
        value >= 0.5 * baseline,
        details={
            "sockets": count,
            "rounds": rounds,
            "rates": [round(r) for r in rates],
            "raw_rates": [round(r) for r in raw_rates],
            "measured": "first to last socket receiving the frame, median of rounds",
            "frame_bytes": len(_event_frame(1)),
        },
    )


async def _new_item(crowd: Crowd, seen: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = set(crowd.arrivals) - seen
        if fresh:
            return fresh.pop()
        crowd.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crowd.changed.wait(), max(0.01, deadline - time.monotonic()))
    raise TimeoutError("no message.created reached the agents")
