"""SQLite under SQLAlchemy's asyncio engine with one thread hop per statement.

The standard adapter (aiosqlite) runs each SQLite connection on a thread of its own and crosses
to it for every DBAPI call: open a cursor, execute, fetch, close. That is four hand-offs between
the event loop and the thread for a statement SQLite itself answers in microseconds, and the
hand-offs, not SQLite, were most of the embedded default's CPU (docs/performance.md, item 15).
Here a statement crosses once: the thread executes it and fetches its rows in one call, and
commit, rollback and close cross once each. The connection still lives on its own thread, so a
long report or a wait on another process's write lock never blocks the event loop.

It plugs into SQLAlchemy's `sqlite+aiosqlite` dialect as its DBAPI module (`create_async_engine(
..., module=dbapi())`): the dialect, its SQL and its types are SQLAlchemy's; only the driver
underneath differs. Rows are always fetched whole, which suits an application that never
streams results.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
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


class ThreadedConnection:
    """A sqlite3 connection owned by one daemon thread; every call on it is one hop there."""

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
        self._wait_limit = float(kwargs.get("timeout", self._wait_limit))
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
                await self.run(self.sqlite.commit)
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


def _execute(
    cursor: sqlite3.Cursor, begin: str | None, operation: str, parameters: Any
) -> list[Any] | None:
    """On the connection's thread: begin if due, execute and fetch every row, in one hop."""
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
            rows = await connection.run(_execute, self._cursor, begin, operation, parameters)
            if rows is not None:
                self._rows = deque(rows)
            return self._cursor

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        connection: ThreadedConnection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            begin = connection.take_begin()
            await connection.queue_to_write(begin)
            return await connection.run(
                _executemany, self._cursor, begin, operation, seq_of_parameters
            )


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
