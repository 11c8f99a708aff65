"""SQLite's driver: quick statements on the event loop, the rest (and COMMIT) one hop to the
connection's thread, BEGIN sent with the first statement, the loop free while SQLite works
for longer or waits for another process's lock, errors as SQLAlchemy's."""

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
        if function is sqlite_driver._waiting:  # named by what it waits to do
            seen.append(args[2].__name__)
        else:
            seen.append(getattr(function, "__name__", type(function).__name__))
        return await original(self, function, *args)

    monkeypatch.setattr(sqlite_driver.ThreadedConnection, "run", run)
    return seen


@pytest.fixture(autouse=True)
def _nothing_known_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_driver, "_SLOW", {})


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'driver.db'}"


async def _table(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))


async def test_a_transaction_crosses_to_the_thread_once_to_commit(url, hops):
    engine = create_engine(url)
    await _table(engine)
    async with engine.connect() as conn:  # the pool's connection is open and ready
        await conn.execute(text("SELECT 1"))
    hops.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        rows = (await conn.execute(text("SELECT v FROM t"))).all()
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
    assert rows == [("a",)]
    # BEGIN IMMEDIATE travels with the INSERT; quick statements run on the loop, and the
    # COMMIT crosses (it may checkpoint the write-ahead log).
    assert hops == ["commit"]
    await engine.dispose()


async def test_a_read_session_runs_without_a_transaction(url, hops):
    database = open_database(url)
    await _table(database.engine)
    async with database.read_session() as session:
        await session.execute(text("SELECT 1"))
    hops.clear()
    async with database.read_session() as session:
        await session.execute(text("SELECT count(*) FROM t"))
    # One quick statement, no BEGIN and nothing to roll back: nothing crosses.
    assert hops == []
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


class _Heartbeat:
    """Counts the event loop's turns every 10 ms while a statement runs."""

    def __init__(self) -> None:
        self.ticks = 0

    async def __aenter__(self) -> "_Heartbeat":
        self._task = asyncio.create_task(self._beat())
        return self

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    async def __aexit__(self, *_exc: object) -> None:
        self._task.cancel()


# A read that takes SQLite a while: counting a few million rows.
LONG_READ = (
    "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    "SELECT count(*) FROM c)"
)


async def test_a_long_read_leaves_the_loop_within_the_budget(url, hops):
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        hops.clear()
        async with _Heartbeat() as heart:
            started = time.monotonic()
            assert await conn.scalar(text(LONG_READ), {"n": 3_000_000}) == 3_000_000
            took = time.monotonic() - started
        # Interrupted on the loop at the budget, then run whole on the connection's thread
        # while the loop kept turning.
        assert hops == ["_execute"]
        assert took > 0.15 and heart.ticks >= took / 0.01 / 2
        # Once slow, always on the thread: no second try on the loop.
        assert LONG_READ.replace(":n", "?") in sqlite_driver._SLOW
        hops.clear()
        assert await conn.scalar(text(LONG_READ), {"n": 10}) == 10
        assert hops == ["_execute"]
    await engine.dispose()


async def test_a_long_read_moved_off_the_loop_keeps_its_transaction(url, hops):
    engine = create_engine(url)
    await _table(engine)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('written first')"))
        hops.clear()
        assert await conn.scalar(text(LONG_READ), {"n": 3_000_000}) == 3_000_000
        # Interrupted on the loop and run again on the thread, inside the same transaction.
        assert hops == ["_execute"]
        await conn.execute(text("INSERT INTO t (v) VALUES ('written after')"))
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert rows == ["written first", "written after"]
    await engine.dispose()


async def test_another_processs_write_lock_is_waited_for_off_the_loop(url, hops):
    database = open_database(url)
    await _table(database.engine)
    other = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as another process writing would

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        other.commit()

    releasing = asyncio.create_task(release_later())
    async with _Heartbeat() as heart, database.session() as session:
        hops.clear()
        await session.execute(text("INSERT INTO t (v) VALUES ('after the other')"))
        await session.commit()
    await releasing
    other.close()
    # Refused on the loop at once (busy timeout zero there), then waited for on the thread.
    assert hops == ["_execute", "commit"]
    assert heart.ticks >= 15  # the loop ran while the statement waited
    async with database.read_session() as session:
        assert (await session.execute(text("SELECT v FROM t"))).scalar() == "after the other"
    await database.dispose()


async def test_a_write_seen_slow_runs_on_the_thread_from_then_on(url, hops, monkeypatch):
    monkeypatch.setattr(sqlite_driver, "LOOP_BUDGET_SECONDS", 0.0)  # every write "took long"
    engine = create_engine(url)
    await _table(engine)
    statement = "INSERT INTO t (v) VALUES (:v)"
    async with engine.begin() as conn:
        hops.clear()
        await conn.execute(text(statement), {"v": "first"})  # on the loop, found slow
        await conn.execute(text(statement), {"v": "second"})  # on the thread
    assert hops == ["_execute", "commit"]
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
