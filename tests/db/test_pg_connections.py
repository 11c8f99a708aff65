"""PostgreSQL connections: pinged after sitting idle, not on every checkout; reads without
a transaction."""

import asyncio

import pytest
from sqlalchemy import text

from rapport.db import engine as engine_module
from rapport.db.engine import create_engine, create_nullpool_engine, database_unavailable


async def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def _terminate(db_url: str, pid: int) -> None:
    admin = create_nullpool_engine(db_url)
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await admin.dispose()


@pytest.fixture
def pg_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the pool is PostgreSQL's; SQLite opens its file per connection")


async def test_a_connection_that_died_while_idle_is_replaced_unseen(pg_only, db_url, monkeypatch):
    engine = create_engine(db_url, pool_size=1)
    pid = await _backend_pid(engine)
    await _terminate(db_url, pid)  # a restart, or a firewall dropping an idle connection
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    await asyncio.sleep(0.01)
    # The checkout pings, finds it dead and connects again: the caller sees nothing.
    assert await _backend_pid(engine) != pid
    await engine.dispose()


async def test_a_connection_that_died_in_use_fails_once_as_unavailable(pg_only, db_url):
    engine = create_engine(db_url, pool_size=2)
    pid = await _backend_pid(engine)
    await _terminate(db_url, pid)
    # Back from use a moment ago, so not pinged: the statement fails with an error the web
    # layer answers 503 + Retry-After and the worker retries ...
    with pytest.raises(Exception) as caught:
        await _backend_pid(engine)
    assert database_unavailable(caught.value)
    # ... and the pool was invalidated with it: the next checkout connects afresh.
    assert await _backend_pid(engine) not in (pid, None)
    await engine.dispose()


async def test_a_read_session_on_postgresql_holds_no_transaction(pg_only, db_url):
    from rapport.db.engine import open_database

    database = open_database(db_url)
    async with database.read_session() as session:
        first = await session.scalar(text("SELECT now()"))
        await asyncio.sleep(0.02)
        # In a transaction now() is its start time; here each statement is its own.
        assert await session.scalar(text("SELECT now()")) > first
    async with database.session() as session:  # writers keep their transaction
        first = await session.scalar(text("SELECT now()"))
        await asyncio.sleep(0.02)
        assert await session.scalar(text("SELECT now()")) == first
    await database.dispose()


async def test_connections_opened_for_a_burst_are_kept_for_the_next(pg_only, db_url):
    """No overflow: a burst past the pool's size waits for a connection instead of opening one
    more, and the next burst finds the same connections (no backend start, no handshake)."""
    engine = create_engine(db_url, pool_size=3)

    async def burst() -> set[int]:
        holding: list[int] = []
        release = asyncio.Event()

        async def hold() -> int:
            async with engine.connect() as conn:
                pid = int(await conn.scalar(text("SELECT pg_backend_pid()")))
                holding.append(pid)
                if len(holding) >= 3:
                    release.set()
                await release.wait()
                return pid

        return set(await asyncio.gather(*(hold() for _ in range(5))))

    first = await burst()
    assert len(first) == 3
    assert await burst() == first
    await engine.dispose()
