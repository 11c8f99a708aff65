"""Open-loop load: requests leave at a fixed arrival rate whatever the server does.

Latency is measured from each request's *intended* send time, so a server that falls behind
is charged for the queueing it causes (no coordinated omission). Requests travel over a pool of
HTTP/1.1 keep-alive connections, opened on demand up to a limit, as a provider's sender does.

The client is a small asyncio protocol with httptools (uvicorn's own parser) rather than a
general-purpose client: on a 2-core machine the load generator shares the CPU with the server,
and a heavier client would measure itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httptools


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Request:
    """One pre-built HTTP/1.1 request (bytes on the wire) and a tag to match it later."""

    data: bytes
    tag: str = ""


def build_request(
    method: str, host: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[int] | None = None
        self._status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed"))

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    # httptools callbacks
    def on_message_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self._status)

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class RunStats:
    """What one open-loop run measured."""

    offered_rate: float
    sent: int
    ok: int
    errors: int
    duration: float  # first intended send to last completion
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)  # tag -> completion time
    intended_at: dict[str, float] = field(default_factory=dict)  # tag -> intended send time

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.duration if self.duration > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


class Pool:
    """Keep-alive connections to one host, opened on demand up to `limit`."""

    def __init__(self, host: str, port: int, limit: int = 256) -> None:
        self.host = host
        self.port = port
        self.limit = limit
        self._idle: list[_Connection] = []
        self._all: list[_Connection] = []
        self._freed = asyncio.Condition()

    async def _acquire(self) -> _Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
            if len(self._all) < self.limit:
                loop = asyncio.get_running_loop()
                _transport, conn = await loop.create_connection(_Connection, self.host, self.port)
                self._all.append(conn)
                return conn
            async with self._freed:
                await self._freed.wait()

    async def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed:
            self._idle.append(conn)
        else:
            conn.close()
            with contextlib.suppress(ValueError):
                self._all.remove(conn)
        async with self._freed:
            self._freed.notify()

    async def request(self, data: bytes, timeout: float) -> int:
        conn = await self._acquire()
        try:
            status = await asyncio.wait_for(conn.send(data), timeout)
        except BaseException:
            await self._release(conn, reusable=False)
            raise
        await self._release(conn, reusable=True)
        return status

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()


async def open_loop(
    pool: Pool,
    requests: Sequence[Request],
    rate: float,
    *,
    timeout: float = 10.0,
    on_sent: Callable[[Request, float], None] | None = None,
) -> RunStats:
    """Send `requests` at `rate` per second; latency from each intended send time."""
    stats = RunStats(offered_rate=rate, sent=0, ok=0, errors=0, duration=0.0)
    start = time.monotonic() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(request: Request, intended: float) -> None:
        try:
            status = await pool.request(request.data, timeout)
        except Exception:  # refused, reset, timed out, unparsable: all count as errors
            return
        finished = time.monotonic()
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            stats.ok += 1
            stats.latencies_ms.append((finished - intended) * 1000)
            if request.tag:
                stats.done_at[request.tag] = finished

    for index, request in enumerate(requests):
        intended = start + index / rate
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if request.tag:
            stats.intended_at[request.tag] = intended
        if on_sent is not None:
            on_sent(request, intended)
        tasks.append(asyncio.create_task(one(request, intended)))
        stats.sent += 1
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    for task in tasks:
        task.cancel()
    stats.errors = stats.sent - stats.ok  # anything not answered 2xx in time
    stats.duration = max(time.monotonic() - start, 1e-9)
    return stats


@dataclass
class Step:
    rate: float
    held: bool
    achieved: float
    p50_ms: float
    p99_ms: float
    errors: int


async def highest_rate_held(
    run_at: Callable[[float], Awaitable[tuple[bool, RunStats]]],
    *,
    start: float,
    ceiling: float,
    refine: int = 3,
    tries: int = 2,
) -> tuple[float, list[Step]]:
    """Double the rate until a step is not held (or halve it until one is), then bisect
    `refine` times between the last rate held and the first one not held.

    A rate not held is tried again, up to `tries` times in all, before the search moves on:
    on a shared machine one slow second in a step would otherwise decide the whole search.
    Every try is recorded as a step."""
    steps: list[Step] = []

    async def attempt(rate: float) -> bool:
        for _ in range(tries):
            held, stats = await run_at(rate)
            steps.append(
                Step(rate, held, stats.achieved_rate, stats.p(50), stats.p(99), stats.errors)
            )
            if held:
                return True
        return False

    low, high = 0.0, None
    rate = start
    while rate <= ceiling:
        if await attempt(rate):
            low = rate
            rate *= 2
        else:
            high = rate
            break
    if high is None:
        return low, steps
    # Not even the first rate held: halve until one does (or give up at start / 64).
    while low == 0.0 and high > start / 64:
        rate = high / 2
        if await attempt(rate):
            low = rate
        else:
            high = rate
    if low == 0.0:
        return 0.0, steps
    for _ in range(refine):
        middle = (low + high) / 2
        if await attempt(middle):
            low = middle
        else:
            high = middle
    return low, steps


def held(stats: RunStats, *, p99_ms: float) -> bool:
    """A rate is held when every request succeeds and the p99, counted from the intended send
    time (so falling behind shows), stays within `p99_ms`."""
    return stats.sent > 0 and stats.errors == 0 and stats.ok == stats.sent and stats.p(99) <= p99_ms
