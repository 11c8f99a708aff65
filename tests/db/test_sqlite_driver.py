"""SQLite's driver: one hop to the connection's thread per statement, BEGIN sent with the
first statement, the event loop free while SQLite works, errors as SQLAlchemy's."""

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from rapport.db import sqlite_driver
from rapport.db.engine import create_engine, open_database


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call the event loop hands to a connection's thread, by name."""
    seen: list[str] = []
    original = sqlite_driver.ThreadedConnection.run

    async def run(self, function, *args):  # type: ignore[no-untyped-def]
        seen.append(getattr(function, "__name__", type(function).__name__))
        return await original(self, function, *args)

    monkeypatch.setattr(sqlite_driver.ThreadedConnection, "run", run)
    return seen


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'driver.db'}"


async def _table(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))


async def test_a_transaction_crosses_once_per_statement_and_once_to_commit(url, hops):
    engine = create_engine(url)
    await _table(engine)
    async with engine.connect() as conn:  # the pool's connection is open and ready
        await conn.execute(text("SELECT 1"))
    hops.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        rows = (await conn.execute(text("SELECT v FROM t"))).all()
    assert rows == [("a",)]
    # BEGIN IMMEDIATE travels with the INSERT; the SELECT's rows come back with it.
    assert hops == ["_execute", "_execute", "commit"]
    await engine.dispose()


async def test_a_read_session_runs_without_a_transaction(url, hops):
    database = open_database(url)
    await _table(database.engine)
    async with database.read_session() as session:
        await session.execute(text("SELECT 1"))
    hops.clear()
    async with database.read_session() as session:
        await session.execute(text("SELECT count(*) FROM t"))
    # One statement, no BEGIN and nothing to roll back.
    assert hops == ["_execute"]
    await database.dispose()


async def test_writing_sessions_begin_immediate(url):
    database = open_database(url)
    await _table(database.engine)
    async with database.session() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('held')"))
        # The write lock is taken: another connection cannot begin writing meanwhile.
        other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        await session.rollback()
    await database.dispose()


async def test_the_event_loop_runs_while_sqlite_works(url):
    engine = create_engine(url)

    def slow(value: int) -> int:
        time.sleep(0.3)  # a long report, or a wait on another process's write lock
        return value

    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.create_function("slow", 1, slow)
        beating = asyncio.create_task(heartbeat())
        assert await conn.scalar(text("SELECT slow(7)")) == 7
        beating.cancel()
    assert ticks >= 10  # the loop kept serving while the statement ran on its thread
    await engine.dispose()


async def test_errors_arrive_as_sqlalchemys_and_the_connection_recovers(url):
    engine = create_engine(url)
    await _table(engine)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('y')"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
    with pytest.raises(OperationalError, match="no such table"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM missing"))
    async with engine.connect() as conn:  # the failed transaction was rolled back whole
        assert (await conn.execute(text("SELECT v FROM t ORDER BY v"))).all() == [("x",)]
    await engine.dispose()


async def test_many_rows_and_executemany(url):
    engine = create_engine(url)
    await _table(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"row {n}"} for n in range(500)]
        )
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT v FROM t ORDER BY id"))
        assert result.fetchone() == ("row 0",)
        assert len(result.fetchmany(10)) == 10
        assert len(result.all()) == 489
    await engine.dispose()


async def test_an_unopenable_database_fails_cleanly(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    with pytest.raises(OperationalError, match="unable to open"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()


async def test_writers_in_one_process_queue_without_sqlites_busy_handler(url):
    """A second writer starts when the first commits: it never meets SQLite's lock, so it
    works even with SQLite's own busy timeout at zero (which would refuse it at once)."""
    database = open_database(url)
    await _table(database.engine)

    @event.listens_for(database.engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    await database.engine.dispose()  # connect again, with the listener
    first_holds = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('first')"))
            first_holds.set()
            await asyncio.sleep(0.2)  # hold the write lock a while
            order.append("first commits")
            await session.commit()

    async def second() -> None:
        await first_holds.wait()
        async with database.session() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('second')"))
            order.append("second wrote")
            await session.commit()

    await asyncio.gather(first(), second())
    assert order == ["first commits", "second wrote"]
    async with database.read_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    await database.dispose()


async def test_a_writer_that_waits_past_the_busy_timeout_fails_as_sqlite_would(tmp_path):
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    database = open_database(url)
    await _table(database.engine)
    connection = await sqlite_driver.ThreadedConnection().open(
        str(tmp_path / "slow.db"), timeout=0.2
    )
    held = asyncio.Event()

    async def hold() -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('held')"))
            held.set()
            await asyncio.sleep(0.6)
            await session.commit()

    holder = asyncio.create_task(hold())
    await held.wait()
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await connection.queue_to_write("BEGIN IMMEDIATE")
    assert time.monotonic() - started < 0.5  # gave up at its own timeout
    await holder
    await connection.queue_to_write("BEGIN IMMEDIATE")  # free again once the holder committed
    await connection.rollback()
    await connection.close()
    await database.dispose()
