"""S1, S3 (acknowledgement), S2 and S10 (webhook to an agent's screen)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import websockets

from bench import env
from bench.loadgen import Pool, Request, RunStats, Step, held, highest_rate_held, open_loop
from bench.results import Result, failed


@dataclass(frozen=True)
class Sizes:
    step_seconds: float
    fixed_seconds: float
    ceiling: float
    refine: int

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(step_seconds=1.0, fixed_seconds=2.0, ceiling=4000, refine=2)
        return cls(step_seconds=1.5, fixed_seconds=2.5, ceiling=8000, refine=2)


# A step is "held" only if acknowledgements stay this fast.
ACK_P99_LIMIT_MS = 250.0
S3_NAME = "S1 load with every webhook delivered 3 times, shuffled"


def _run_tag() -> str:
    return uuid.uuid4().hex[:6]


def _steps(steps: list[Step]) -> list[dict[str, Any]]:
    return [
        {
            "rate": round(s.rate),
            "held": s.held,
            "achieved": round(s.achieved),
            "p50_ms": round(s.p50_ms, 1),
            "p99_ms": round(s.p99_ms, 1),
            "errors": s.errors,
        }
        for s in steps
    ]


async def _ack_search(
    port: int, path: str, sizes: Sizes, *, customers: int, start: float, acked: set[str]
) -> tuple[float, list[Step]]:
    """Highest acknowledged rate; adds the id of every acknowledged webhook to `acked`."""
    pool = Pool("127.0.0.1", port)
    try:
        warm = env.signed_sms_requests(port, path, 200, customers=customers, run=_run_tag())
        acked.update((await open_loop(pool, warm, 200)).done_at)

        async def run_at(rate: float) -> tuple[bool, RunStats]:
            count = max(50, int(rate * sizes.step_seconds))
            requests = env.signed_sms_requests(
                port, path, count, customers=customers, run=_run_tag()
            )
            stats = await open_loop(pool, requests, rate)
            acked.update(stats.done_at)
            return held(stats, p99_ms=ACK_P99_LIMIT_MS), stats

        return await highest_rate_held(
            run_at, start=start, ceiling=sizes.ceiling, refine=sizes.refine
        )
    finally:
        pool.close()


async def _fixed(port: int, path: str, rate: float, seconds: float) -> RunStats:
    pool = Pool("127.0.0.1", port)
    try:
        requests = env.signed_sms_requests(
            port, path, int(rate * seconds), customers=5000, run=_run_tag()
        )
        return await open_loop(pool, requests, rate)
    finally:
        pool.close()


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def ack_scenarios(wanted: set[str], quick: bool) -> list[Result]:
    """S1 on PostgreSQL: Rapport against the raw script; then S3 on the same server."""
    sizes = Sizes.of(quick)
    results: list[Result] = []
    with env.workdir("s1") as work:
        async with env.pg_database("s1") as url:
            seeded = await env.seed(url, work)
            path = f"/hooks/sms/{seeded.inbox_id}"
            async with env.python_server("bench.raw_server", work, "--db", url, name="raw") as (
                _raw,
                raw_port,
            ):
                raw_rate, raw_steps = await _ack_search(
                    raw_port, path, sizes, customers=5000, start=250, acked=set()
                )
                raw_fixed = await _fixed(raw_port, path, 1000, sizes.fixed_seconds)
            async with env.rapport(env.rapport_env(url, work), work) as (_web, base):
                port = int(base.rsplit(":", 1)[1])
                acked: set[str] = set()
                rate, steps = await _ack_search(
                    port, path, sizes, customers=5000, start=250, acked=acked
                )
                fixed = await _fixed(port, path, 1000, sizes.fixed_seconds)
                acked.update(fixed.done_at)
                stored = await _stored(url, acked)
                if "S1" in wanted:
                    ratio = rate / raw_rate if raw_rate else 0
                    results.append(
                        Result(
                            "S1",
                            "signed SMS webhooks acknowledged durably (PostgreSQL)",
                            rate,
                            "webhooks/s",
                            raw_rate,
                            "≥ 0.5 x raw, ≥ 2,000/s, p99 ≤ 50 ms at 1,000/s",
                            ratio >= 0.5
                            and rate >= 2000
                            and fixed.p(99) <= 50
                            and stored == len(acked),
                            details={
                                "ack_p50_ms_at_1000": round(fixed.p(50), 1),
                                "ack_p99_ms_at_1000": round(fixed.p(99), 1),
                                "raw_ack_p99_ms_at_1000": round(raw_fixed.p(99), 1),
                                "errors_at_1000": fixed.errors,
                                "stored_rows": stored,
                                "acknowledged_total": len(acked),
                                "held_criterion": f"no error, p99 ≤ {ACK_P99_LIMIT_MS:.0f} ms",
                                "steps": _steps(steps),
                                "raw_steps": _steps(raw_steps),
                            },
                        )
                    )
    if "S3" in wanted:
        try:
            results.append(await _s3(sizes, rate))
        except Exception as exc:  # S1's result stands on its own
            results.append(failed("S3", S3_NAME, f"{type(exc).__name__}: {exc}"))
    return results


async def _s3(sizes: Sizes, rate: float) -> Result:
    """S3 on a database of its own: its worker must see only S3's webhooks."""
    with env.workdir("s3") as work:
        async with env.pg_database("s3") as url:
            seeded = await env.seed(url, work)
            path = f"/hooks/sms/{seeded.inbox_id}"
            async with env.rapport(env.rapport_env(url, work), work) as (web, base):
                port = int(base.rsplit(":", 1)[1])
                return await _triplicated(port, path, url, work, sizes, rate, web)


async def _stored(url: str, sids: set[str]) -> int:
    """How many of these acknowledged webhooks are in the database (each exactly once)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        keys = [f"message:{sid}" for sid in sids]
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM inbound_events WHERE dedupe_key = ANY($1::text[])", keys
            )
        )
    finally:
        await conn.close()


async def _triplicated(
    port: int, path: str, url: str, work: Path, sizes: Sizes, s1_rate: float, web: env.Child
) -> Result:
    """S3: every webhook three times, shuffled, at S1's rate (lower if not held)."""
    if s1_rate <= 0:
        raise RuntimeError("S1 held no rate, so S3 has nothing to compare with")
    pool = Pool("127.0.0.1", port)
    tags: set[str] = set()
    try:

        async def run_at(rate: float) -> tuple[bool, RunStats]:
            unique = max(20, int(rate * sizes.step_seconds / 3))
            requests = env.signed_sms_requests(port, path, unique, customers=500, run=_run_tag())
            tags.update(r.tag for r in requests)
            tripled = [Request(r.data) for r in requests for _ in range(3)]
            random.Random(7).shuffle(tripled)
            stats = await open_loop(pool, tripled, rate)
            return held(stats, p99_ms=ACK_P99_LIMIT_MS), stats

        steps: list[Step] = []
        rate, best = s1_rate, 0.0
        for _ in range(sizes.refine + 1):
            if rate <= 0:
                break
            ok, stats = await run_at(rate)
            steps.append(
                Step(rate, ok, stats.achieved_rate, stats.p(50), stats.p(99), stats.errors)
            )
            if ok:
                best = rate
                break
            rate *= 0.8
    finally:
        pool.close()
    # Process everything with a real worker, then count: one message per distinct webhook.
    wenv = env.rapport_env(url, work, worker_concurrency="8")
    async with env.rapport_worker(wenv, work):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if await _count(url, "SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.5)
    quoted = ",".join(f"'{t}'" for t in tags) or "''"
    inbound = await _count(
        url,
        f"SELECT count(*) FROM inbound_events WHERE dedupe_key IN "
        f"(SELECT 'message:' || unnest(ARRAY[{quoted}]))",
    )
    messages = await _count(url, f"SELECT count(*) FROM messages WHERE provider_id IN ({quoted})")
    doubled = await _count(
        url,
        "SELECT count(*) FROM (SELECT provider_id FROM messages WHERE provider_id IS NOT NULL "
        "GROUP BY inbox_id, provider_id HAVING count(*) > 1) d",
    )
    duplicates = (inbound - len(tags)) + (messages - len(tags)) + doubled
    ratio = best / s1_rate if s1_rate else 0
    return Result(
        "S3",
        S3_NAME,
        best,
        "deliveries/s",
        s1_rate,
        "0 duplicates, ≥ 0.8 x S1",
        duplicates == 0 and inbound == len(tags) and messages == len(tags) and ratio >= 0.8,
        details={
            "distinct_webhooks": len(tags),
            "stored_inbound_events": inbound,
            "messages_after_worker": messages,
            "duplicates": duplicates,
            "steps": _steps(steps),
        },
    )


# --- S2 and S10: from the webhook to an agent's screen ------------------------------------------


class ScreenWatcher:
    """A websocket that records when each awaited item arrives (monotonic clock)."""

    def __init__(self, url: str, key: Callable[[dict[str, Any]], str | None], **kw: Any) -> None:
        self.url = url
        self.key = key
        self.kw = kw
        self.seen: dict[str, float] = {}
        self.closed_by_server = False
        self._socket: Any = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def __aenter__(self) -> ScreenWatcher:
        self._socket = await asyncio.wait_for(
            websockets.connect(self.url, max_size=None, **self.kw), 15
        )
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self._socket:
                item = self.key(json.loads(frame))
                if item is not None:
                    self.seen.setdefault(item, time.monotonic())
                    self.changed.set()
        self.closed_by_server = True  # reported: a closed socket would show as missing events

    async def wait_count(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), 5)


@dataclass
class ScreenRun:
    stats: RunStats
    latencies_ms: list[float]
    missing: int


async def _screen_run(
    port: int,
    path: str,
    watcher: ScreenWatcher,
    rate: float,
    seconds: float,
    resolve: Callable[[], Any],
) -> ScreenRun:
    """Send at `rate`; latency = when the agent's socket showed it - intended send time."""
    pool = Pool("127.0.0.1", port)
    try:
        count = max(20, int(rate * seconds))
        requests = env.signed_sms_requests(port, path, count, customers=500, run=_run_tag())
        before = len(watcher.seen)
        stats = await open_loop(pool, requests, rate)
        # Wait for stragglers, so the next step starts from an idle system.
        await watcher.wait_count(before + stats.ok, timeout=DRAIN_SECONDS)
    finally:
        pool.close()
    arrival = await resolve()  # sid -> monotonic time shown
    latencies, missing = [], 0
    for request in requests:
        shown = arrival.get(request.tag)
        if shown is None:
            missing += 1
        else:
            latencies.append((shown - stats.intended_at[request.tag]) * 1000)
    return ScreenRun(stats, latencies, missing)


async def _screen_search(
    port: int,
    path: str,
    watcher: ScreenWatcher,
    resolve: Any,
    sizes: Sizes,
    fixed_rate: float,
    url: str,
) -> tuple[float, list[Step], ScreenRun, bool]:
    """The rate search, then the fixed run; the last value says whether the bench vacuumed
    between steps (`env.stand_in_for_autovacuum`)."""
    from bench.loadgen import percentile

    warm = await _screen_run(port, path, watcher, 50, 1.0, resolve)
    del warm
    vacuumed = False

    async def run_at(rate: float) -> tuple[bool, RunStats]:
        nonlocal vacuumed
        vacuumed = await env.stand_in_for_autovacuum(url) or vacuumed
        run = await _screen_run(port, path, watcher, rate, sizes.step_seconds, resolve)
        stats = run.stats
        stats.latencies_ms = run.latencies_ms
        ok = (
            run.missing == 0
            and stats.errors == 0
            and percentile(run.latencies_ms, 99) <= SCREEN_P99_LIMIT_MS
        )
        return ok, stats

    rate, steps = await highest_rate_held(
        run_at, start=50, ceiling=sizes.ceiling, refine=sizes.refine
    )
    # Last, because a rate the system cannot hold leaves a backlog behind it.
    vacuumed = await env.stand_in_for_autovacuum(url) or vacuumed
    fixed = await _screen_run(port, path, watcher, fixed_rate, sizes.fixed_seconds, resolve)
    return rate, steps, fixed, vacuumed


SCREEN_P99_LIMIT_MS = 250.0
DRAIN_SECONDS = 15.0


@contextlib.asynccontextmanager
async def _rapport_screen(
    url: str, work: Path, seeded: env.Seeded, *, sqlite: bool
) -> AsyncIterator[tuple[int, ScreenWatcher, Any, env.Child]]:
    """Rapport with its worker and an admin's agent socket; yields what the runs need."""
    async with contextlib.AsyncExitStack() as stack:
        if sqlite:  # the embedded default: one process, worker inside, in-process bus
            web, base = await stack.enter_async_context(
                env.rapport(env.rapport_env(url, work), work, with_worker=True)
            )
        else:  # production shape: web + worker processes, Redis between them
            redis_url = stack.enter_context(env.redis_server(work))
            renv = env.rapport_env(url, work, redis_url=redis_url)
            web, base = await stack.enter_async_context(env.rapport(renv, work))
            await stack.enter_async_context(env.rapport_worker(renv, work))
        cookie = await env.login_cookie(base, seeded.admin_email)
        port = int(base.rsplit(":", 1)[1])

        def key(frame: dict[str, Any]) -> str | None:
            if frame.get("kind") == "event" and frame.get("type") == "message.created":
                return str(frame["data"]["message_id"])
            return None

        watcher = await stack.enter_async_context(
            ScreenWatcher(
                base.replace("http", "ws", 1) + "/ws",
                key,
                additional_headers={"Cookie": cookie},
                origin=base,
            )
        )
        sync_url = url

        async def resolve() -> dict[str, float]:
            ids = await _provider_ids(sync_url, [int(k) for k in watcher.seen])
            return {ids[int(k)]: t for k, t in watcher.seen.items() if int(k) in ids}

        yield port, watcher, resolve, web


async def _provider_ids(url: str, message_ids: list[int]) -> dict[int, str]:
    if not message_ids:
        return {}
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split(":///", 1)[1]
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows = conn.execute(
                "SELECT id, provider_id FROM messages WHERE provider_id IS NOT NULL"
            ).fetchall()
        finally:
            conn.close()
        return {int(i): str(p) for i, p in rows}
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id, provider_id FROM messages WHERE id = ANY($1::bigint[])", message_ids
        )
    finally:
        await conn.close()
    return {int(r["id"]): str(r["provider_id"]) for r in rows}


@contextlib.asynccontextmanager
async def _raw_screen(url: str, work: Path) -> AsyncIterator[tuple[int, ScreenWatcher, Any]]:
    async with env.python_server("bench.raw_server", work, "--db", url, "--ws", name="raw") as (
        _raw,
        port,
    ):
        watcher = ScreenWatcher(f"ws://127.0.0.1:{port}/ws", lambda frame: frame.get("sid"))
        async with watcher:

            async def resolve() -> dict[str, float]:
                return dict(watcher.seen)

            yield port, watcher, resolve


async def screen_scenario(quick: bool, *, sqlite: bool) -> Result:
    """S2 (PostgreSQL, web + worker + Redis) or S10 (SQLite, the embedded default)."""
    from bench.loadgen import percentile

    sizes = Sizes.of(quick)
    tag = "s10" if sqlite else "s2"
    with env.workdir(tag) as work:
        database = env.sqlite_database(work) if sqlite else env.pg_database(tag)
        async with database as url:
            seeded = await env.seed(url, work)
            path = f"/hooks/sms/{seeded.inbox_id}"
            async with _raw_screen(url, work) as (raw_port, raw_watcher, raw_resolve):
                raw_rate, raw_steps, raw_fixed, _vacuumed = await _screen_search(
                    raw_port, path, raw_watcher, raw_resolve, sizes, 500, url
                )
            async with _rapport_screen(url, work, seeded, sqlite=sqlite) as (
                port,
                watcher,
                resolve,
                _web,
            ):
                rate, steps, fixed, vacuumed = await _screen_search(
                    port, path, watcher, resolve, sizes, 500, url
                )
                socket_closed = watcher.closed_by_server
            logs = "".join(
                p.read_text(errors="replace") for p in work.glob("*.log") if p.name != "raw.log"
            )
            locked = logs.count("database is locked")
    p50, p99 = percentile(fixed.latencies_ms, 50), percentile(fixed.latencies_ms, 99)
    details = {
        "p50_ms_at_500": round(p50, 1),
        "p99_ms_at_500": round(p99, 1),
        "missing_at_500": fixed.missing,
        "errors_at_500": fixed.stats.errors,
        "raw_p50_ms_at_500": round(percentile(raw_fixed.latencies_ms, 50), 1),
        "raw_p99_ms_at_500": round(percentile(raw_fixed.latencies_ms, 99), 1),
        "held_criterion": f"all shown, no error, p99 ≤ {SCREEN_P99_LIMIT_MS:.0f} ms",
        "agent_socket_closed_by_server": socket_closed,
        "vacuumed_between_steps": vacuumed,
        "steps": _steps(steps),
        "raw_steps": _steps(raw_steps),
    }
    ratio = rate / raw_rate if raw_rate else 0
    if sqlite:
        details["database_is_locked"] = locked
        return Result(
            "S10",
            "S2 on the embedded SQLite default (one process, worker inside)",
            rate,
            "webhooks/s shown",
            raw_rate,
            '≥ 0.5 x raw, 0 "database is locked"',
            ratio >= 0.5 and locked == 0 and fixed.missing == 0,
            details=details,
        )
    return Result(
        "S2",
        "webhook to agent screen (PostgreSQL, web + worker + Redis)",
        rate,
        "webhooks/s shown",
        raw_rate,
        "p50 ≤ 20 ms, p99 ≤ 100 ms at 500/s; highest rate with p99 ≤ 250 ms",
        p50 <= 20 and p99 <= 100 and fixed.missing == 0,
        details=details,
    )
