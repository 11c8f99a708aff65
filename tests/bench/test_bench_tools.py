"""The benchmark suite's own parts, so `make bench` does not rot between runs.

Nothing here asserts a time: the scheduler is checked for what it sent and counted, the rate
search for the steps it takes, the writer for the files it writes.
"""

import json
import math

import pytest
from bench.loadgen import (
    Pool,
    RunStats,
    build_request,
    held,
    highest_rate_held,
    open_loop,
    percentile,
)
from bench.loadgen import (
    Request as LoadRequest,
)
from bench.results import Result, failed, write
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.live import serve


def test_percentile_by_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert math.isnan(percentile([], 99))


async def test_open_loop_sends_every_request_over_keep_alive_connections():
    seen: list[bytes] = []

    async def hook(request: Request) -> Response:
        seen.append(await request.body())
        status = 200 if request.url.path == "/ok" else 500
        return Response("done", status_code=status)

    app = Starlette(routes=[Route("/{name}", hook, methods=["POST"])])
    async with serve(app) as base:
        port = int(base.rsplit(":", 1)[1])
        host = f"127.0.0.1:{port}"
        good = [
            LoadRequest(build_request("POST", host, "/ok", b"n%d" % n), tag=f"t{n}")
            for n in range(40)
        ]
        bad = [LoadRequest(build_request("POST", host, "/bad", b"x"))]
        pool = Pool("127.0.0.1", port, limit=4)
        try:
            stats = await open_loop(pool, good + bad, rate=400, timeout=5)
        finally:
            pool.close()
    assert stats.sent == 41
    assert stats.ok == 40 and stats.errors == 1
    assert stats.statuses == {200: 40, 500: 1}
    assert len(stats.latencies_ms) == 40
    assert set(stats.done_at) == {f"t{n}" for n in range(40)}
    assert sorted(seen) == sorted([b"n%d" % n for n in range(40)] + [b"x"])
    assert not held(stats, p99_ms=10_000), "a failed request means the rate was not held"


async def test_a_refused_connection_counts_as_an_error_not_a_hang():
    from bench.env import free_port

    pool = Pool("127.0.0.1", free_port(), limit=2)
    stats = await open_loop(pool, [LoadRequest(b"GET / HTTP/1.1\r\n\r\n")] * 3, rate=100, timeout=2)
    pool.close()
    assert stats.sent == 3 and stats.ok == 0 and stats.errors == 3


async def test_rate_search_doubles_then_bisects():
    capacity = 700.0
    tried: list[float] = []

    async def run_at(rate: float):
        tried.append(rate)
        stats = RunStats(offered_rate=rate, sent=10, ok=10, errors=0, duration=1.0)
        stats.latencies_ms = [1.0] * 10
        return rate <= capacity, stats

    best, steps = await highest_rate_held(run_at, start=100, ceiling=10_000, refine=3)
    assert tried[:5] == [100, 200, 400, 800, 800]  # a rate not held is tried once more
    assert best == pytest.approx(700)
    assert [s.rate for s in steps] == [100, 200, 400, 800, 800, 600, 700, 750, 750]
    assert [s.held for s in steps] == [True, True, True, False, False, True, True, False, False]


async def test_rate_search_tries_a_rate_again_before_giving_it_up():
    """One slow step (a neighbour's burst on a shared machine) does not end the search."""
    slow_once = {400.0}

    async def run_at(rate: float):
        stats = RunStats(offered_rate=rate, sent=10, ok=10, errors=0, duration=1.0)
        if rate in slow_once:
            slow_once.discard(rate)
            return False, stats
        return rate <= 500, stats

    best, steps = await highest_rate_held(run_at, start=100, ceiling=10_000, refine=1)
    assert [(s.rate, s.held) for s in steps] == [
        (100, True),
        (200, True),
        (400, False),
        (400, True),
        (800, False),
        (800, False),
        (600, False),
        (600, False),
    ]
    assert best == 400


async def test_rate_search_halves_when_the_first_rate_is_too_high():
    async def run_at(rate: float):
        stats = RunStats(offered_rate=rate, sent=10, ok=10, errors=0, duration=1.0)
        return rate <= 30, stats

    best, steps = await highest_rate_held(run_at, start=100, ceiling=10_000, refine=1, tries=1)
    assert [s.rate for s in steps] == [100, 50, 25, 37.5]
    assert best == 25


def test_results_are_written_as_json_and_a_table(tmp_path):
    results = [
        Result(
            "S1",
            "webhooks",
            1500.0,
            "webhooks/s",
            2000.0,
            "≥ 0.5 x raw",
            True,
            details={"p99_ms": 12.5},
        ),
        failed("S2", "screen", "RuntimeError: boom"),
    ]
    markdown = write(results, tmp_path, quick=True, seconds=3.0)
    document = json.loads((tmp_path / "latest.json").read_text())
    first, second = document["scenarios"]
    assert {
        k: first[k] for k in ("id", "value", "unit", "baseline", "ratio", "target", "pass")
    } == {
        "id": "S1",
        "value": 1500.0,
        "unit": "webhooks/s",
        "baseline": 2000.0,
        "ratio": 0.75,
        "target": "≥ 0.5 x raw",
        "pass": True,
    }
    assert second["pass"] is False and second["error"] == "RuntimeError: boom"
    assert document["machine"]["cores"] >= 1
    assert "| S1 | webhooks | 1,500 webhooks/s | 2,000 webhooks/s | 0.75 |" in markdown
    assert (tmp_path / "latest.md").read_text() == markdown


async def test_the_bench_vacuums_between_steps_only_where_autovacuum_is_off(db_url, backend):
    import asyncpg
    from bench.env import stand_in_for_autovacuum

    if backend == "sqlite":
        assert await stand_in_for_autovacuum(db_url) is False
        return
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE churn (id int PRIMARY KEY, n int)")
        await conn.execute("INSERT INTO churn SELECT g, 0 FROM generate_series(1, 100) g")
        await conn.execute("UPDATE churn SET n = n + 1")
        autovacuum = await conn.fetchval("SHOW autovacuum")
        vacuumed = await stand_in_for_autovacuum(db_url)
        assert vacuumed is (autovacuum == "off")
        if vacuumed:
            last = await conn.fetchval(
                "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'churn'"
            )
            assert last is not None
    finally:
        await conn.close()
