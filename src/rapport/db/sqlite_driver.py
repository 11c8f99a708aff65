"""SQLite under SQLAlchemy's asyncio engine: short statements on the event loop, the rest on
the connection's thread.

The standard adapter (aiosqlite) runs each SQLite connection on a thread of its own and crosses
to it for every DBAPI call: open a cursor, execute, fetch, close. That is four hand-offs between
the event loop and the thread for a statement SQLite itself answers in microseconds, and the
hand-offs, not SQLite, were most of the embedded default's CPU (docs/performance.md, item 15).
Each connection here still lives on a thread of its own, but a statement crosses to it only
when it could keep the loop waiting (ADR 10):

- A SELECT, INSERT, UPDATE or DELETE first runs on the loop itself, with SQLite's busy timeout
  at zero so it never waits for a lock there. If the file is locked by another process, or a
  SELECT runs past `LOOP_BUDGET_SECONDS` (SQLite's progress handler interrupts it, which leaves
  a transaction as it was), it runs again on the thread, which waits as long as the busy
  timeout allows. A statement that was once slow (by its SQL) always runs on the thread after.
- Anything else (PRAGMA, DDL, a statement starting with WITH, an executemany of more than
  `_FEW_ROWS` rows), COMMIT and ROLLBACK cross to the thread: a COMMIT may checkpoint the
  write-ahead log, which writes and syncs the database file.

So a long report or a wait on another process's write lock never stops the loop for longer
than the budget, once per kind of statement. Rows are always fetched whole, which suits an
application that never streams results.

It plugs into SQLAlchemy's `sqlite+aiosqlite` dialect as its DBAPI module (`create_async_engine(
..., module=dbapi())`): the dialect, its SQL and its types are SQLAlchemy's; only the driver
underneath differs.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from queue import SimpleQueue
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")
# A call for the connection's thread; without a loop and future nobody awaits its outcome.
_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]
_Call = tuple[_Waiter | None, Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _serve(calls: SimpleQueue[_Call | None]) -> None:
    """The connection's thread: run each call, hand its outcome back to the caller's loop."""
    while (call := calls.get()) is not None:
        waiter, function, args = call
        try:
            result, error = function(*args), None
        except BaseException as exc:  # handed to the awaiting coroutine, not lost
            result, error = None, exc
        if waiter is None:
            continue
        loop, future = waiter
        with suppress(RuntimeError):  # the loop has closed; nobody is waiting any more
            loop.call_soon_threadsafe(_settle, future, result, error)


# Writers of one database file in this process queue here, in arrival order, and the next one
# starts the moment the last commits. Left to SQLite, a writer that finds the file locked waits
# in its busy handler, which sleeps and looks again (1, 2, 5, 10 ... 100 ms): in S10 a
# webhook's insert waited about 35 ms on average behind the in-process worker's transaction.
# Writers in other processes still meet SQLite's own lock and busy timeout. One queue per
# event loop, as asyncio's locks belong to one.
_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _writers(database: str) -> asyncio.Lock:
    locks = _WRITERS.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(database)
    if lock is None:
        lock = locks[database] = asyncio.Lock()
    return lock


def _file_key(database: str) -> str | None:
    """What identifies the database across connections; None for a private in-memory one."""
    if database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return database
    return os.path.realpath(database)


# How long a statement may hold the event loop. Statements of the hot paths take tens of
# microseconds; a crossing to the connection's thread costs about 35 µs of CPU each way round.
LOOP_BUDGET_SECONDS = 0.002
# SQLite calls the progress handler every this many virtual-machine instructions.
_PROGRESS_EVERY = 1000
# Statements, by SQL, that ran past the budget once: they run on the thread from then on.
_SLOW: dict[str, None] = {}
_SLOW_REMEMBERED = 512
_ON_LOOP = ("SELECT", "INSERT", "UPDATE", "DELETE")
_FEW_ROWS = 64  # an executemany of more rows is bulk work, for the thread


class _NotHere(Exception):
    """The statement did nothing on the loop (locked, or interrupted over budget): run it on
    the connection's thread instead."""


def _remember_slow(operation: str) -> None:
    if len(_SLOW) >= _SLOW_REMEMBERED:
        del _SLOW[next(iter(_SLOW))]
    _SLOW[operation] = None


class ThreadedConnection:
    """A sqlite3 connection owned by one daemon thread: quick statements run on the caller's
    event loop (see the module), every other call on it is one hop to the thread."""

    def __init__(self) -> None:
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._connection: sqlite3.Connection | None = None  # None once closed (read by the adapter)
        self._begin: str | None = None  # a BEGIN waiting for the transaction's first statement
        self._file: str | None = None
        self._wait_limit = 5.0  # sqlite3's default busy timeout, in seconds
        self._writing: asyncio.Lock | None = None  # this process's writer queue, while held
        thread = threading.Thread(
            target=_serve, args=(self._calls,), name="rapport-sqlite", daemon=True
        )
        thread.start()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put(((loop, future), function, args))
        return await future

    async def open(self, database: str, **kwargs: Any) -> ThreadedConnection:
        kwargs.setdefault("check_same_thread", False)
        self._file = _file_key(str(database))
        # SQLite's own busy timeout stays at zero, so a statement tried on the loop never waits
        # there; the thread applies this limit to the statements it runs (`_waiting`).
        self._wait_limit = float(kwargs.get("timeout", self._wait_limit))
        kwargs["timeout"] = 0
        try:
            self._connection = await self.run(partial(sqlite3.connect, database, **kwargs))
        except BaseException:
            self._calls.put(None)  # let the thread end
            raise
        return self

    @property
    def sqlite(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    def begin(self, mode: str) -> None:
        """Begin a transaction (DEFERRED or IMMEDIATE) with its first statement, in its hop."""
        self._begin = f"BEGIN {mode}"

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    async def queue_to_write(self, begin: str | None) -> None:
        """Before a BEGIN IMMEDIATE: wait for this process's earlier writers of the same file
        to end, as long as SQLite's busy timeout would have waited, and fail as it would."""
        if begin != "BEGIN IMMEDIATE" or self._file is None or self._writing is not None:
            return
        lock = _writers(self._file)
        try:
            async with asyncio.timeout(self._wait_limit):
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._writing = lock

    def _done_writing(self) -> None:
        lock, self._writing = self._writing, None
        if lock is not None:
            lock.release()

    def _ends_a_transaction(self) -> bool:
        """Whether a commit or rollback has a transaction to end: not when its BEGIN is still
        waiting for a first statement (dropped here) nor when none is open, so an empty
        transaction costs no hop."""
        waiting_begin = self.take_begin()
        return waiting_begin is None and self.sqlite.in_transaction

    def cursor(self) -> sqlite3.Cursor:
        return self.sqlite.cursor()

    async def execute(
        self, cursor: sqlite3.Cursor, begin: str | None, operation: str, parameters: Any
    ) -> list[Any] | None:
        """Run a statement (after its transaction's BEGIN, if due) and fetch its rows."""
        return await self._statement(_execute, cursor, begin, operation, parameters, few=True)

    async def executemany(
        self, cursor: sqlite3.Cursor, begin: str | None, operation: str, seq_of_parameters: Any
    ) -> sqlite3.Cursor:
        few = isinstance(seq_of_parameters, list) and len(seq_of_parameters) <= _FEW_ROWS
        return await self._statement(
            _executemany, cursor, begin, operation, seq_of_parameters, few=few
        )

    async def _statement(
        self,
        function: Callable[[sqlite3.Cursor, str | None, str, Any], T],
        cursor: sqlite3.Cursor,
        begin: str | None,
        operation: str,
        parameters: Any,
        *,
        few: bool,
    ) -> T:
        """On the loop when the statement is quick, else on the thread (module docstring)."""
        verb = operation.lstrip()[:6].upper()
        if few and verb in _ON_LOOP and operation not in _SLOW:
            call = partial(function, cursor, begin, operation, parameters)
            try:
                return self._here(call, operation, reads=verb == "SELECT")
            except _NotHere:
                if self.sqlite.in_transaction:
                    begin = None  # the BEGIN went through; only the statement runs again
        return await self.run(
            _waiting, self.sqlite, self._wait_limit, function, cursor, begin, operation, parameters
        )

    def _here(self, call: Callable[[], T], operation: str, *, reads: bool) -> T:
        connection = self.sqlite
        started = time.perf_counter()
        if reads:  # a read can be stopped half-way and run again; a write cannot
            deadline = started + LOOP_BUDGET_SECONDS
            connection.set_progress_handler(lambda: time.perf_counter() > deadline, _PROGRESS_EVERY)
        try:
            return call()
        except sqlite3.OperationalError as exc:
            code = exc.sqlite_errorcode & 0xFF
            if code == sqlite3.SQLITE_BUSY:  # another process holds the lock: wait on the thread
                raise _NotHere from exc
            if reads and code == sqlite3.SQLITE_INTERRUPT:
                _remember_slow(operation)
                raise _NotHere from exc
            raise
        finally:
            if reads:
                connection.set_progress_handler(None, 0)
            elif time.perf_counter() - started > LOOP_BUDGET_SECONDS:
                _remember_slow(operation)

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    async def set_isolation_level(self, value: str | None) -> None:
        connection = self.sqlite

        def apply() -> None:
            connection.isolation_level = cast(Any, value)

        await self.run(apply)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self.run(partial(self.sqlite.create_function, *args, **kwargs))

    async def commit(self) -> None:
        try:
            if self._ends_a_transaction():
                await self.run(_waiting, self.sqlite, self._wait_limit, self.sqlite.commit)
        finally:
            self._done_writing()

    async def rollback(self) -> None:
        try:
            if self._ends_a_transaction():
                await self.run(self.sqlite.rollback)
        finally:
            self._done_writing()

    async def close(self) -> None:
        self._done_writing()
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            await self.run(connection.close)
        finally:
            self._calls.put(None)

    def stop(self) -> None:
        """Close without waiting (a connection dropped outside any event loop)."""
        self._done_writing()
        connection, self._connection = self._connection, None
        if connection is not None:
            self._calls.put((None, connection.close, ()))
        self._calls.put(None)


def _waiting(
    connection: sqlite3.Connection, seconds: float, function: Callable[..., T], *args: Any
) -> T:
    """On the connection's thread: call `function` with SQLite's busy timeout at `seconds`, so
    a lock held by another process is waited for here and not on the loop."""
    connection.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    try:
        return function(*args)
    finally:
        connection.execute("PRAGMA busy_timeout=0")


def _execute(
    cursor: sqlite3.Cursor, begin: str | None, operation: str, parameters: Any
) -> list[Any] | None:
    """Begin if due, execute and fetch every row, in one call."""
    if begin is not None:
        cursor.execute(begin)
    if parameters is None:
        cursor.execute(operation)
    else:
        cursor.execute(operation, parameters)
    return cursor.fetchall() if cursor.description else None


def _executemany(
    cursor: sqlite3.Cursor, begin: str | None, operation: str, seq_of_parameters: Any
) -> sqlite3.Cursor:
    if begin is not None:
        cursor.execute(begin)
    return cursor.executemany(operation, seq_of_parameters)


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's adapted cursor over a plain sqlite3 cursor, fetching in the execute hop."""

    __slots__ = ()
    _awaitable_cursor_close = False  # closing a sqlite3 cursor is a local call

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        connection: ThreadedConnection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            begin = connection.take_begin()
            await connection.queue_to_write(begin)
            cursor = cast(sqlite3.Cursor, self._cursor)
            rows = await connection.execute(cursor, begin, operation, parameters)
            if rows is not None:
                self._rows = deque(rows)
            return self._cursor

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        connection: ThreadedConnection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            begin = connection.take_begin()
            await connection.queue_to_write(begin)
            cursor = cast(sqlite3.Cursor, self._cursor)
            return await connection.executemany(cursor, begin, operation, seq_of_parameters)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _Cursor
    _ss_cursor_cls = _Cursor  # type: ignore[assignment]  # rows are fetched whole; none stream

    def begin(self, mode: str) -> None:
        """BEGIN `mode`, sent with the transaction's first statement (see `ThreadedConnection`)."""
        self._connection.begin(mode)

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        try:
            await_(self._connection.set_isolation_level(value))
        except Exception as error:
            self._handle_exception(error)


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)  # aiosqlite for the names its errors have (sqlite3's)
        self.has_stop = True

    def connect(self, *args: Any, **kwargs: Any) -> _Connection:
        kwargs.pop("async_creator_fn", None)
        connection = await_(ThreadedConnection().open(*args, **kwargs))
        return _Connection(self, cast(Any, connection))


def dbapi() -> Any:
    """The DBAPI module to give `create_async_engine(module=...)` for a SQLite URL."""
    return _DBAPI()
