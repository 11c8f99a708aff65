"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with a busy timeout, and every transaction that may write starts with
BEGIN IMMEDIATE: a deferred transaction that later upgrades to a write lock fails at once with
"database is locked" instead of waiting, which is the classic SQLite failure under concurrency.
Read-only work uses `read_sessions`, which run without a transaction on both databases (see
`open_database`). SQLite connections come from `sqlite_driver`: short statements run on the
event loop, anything that could keep it waiting on the connection's thread, which applies the
busy timeout (the `timeout` connect argument).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from rapport.db import sqlite_driver
from rapport.settings import async_database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000

# A pooled connection back from use less than this ago is taken as alive; one idle for longer
# is pinged before use (see `_ping_after_idle`).
PING_AFTER_IDLE_SECONDS = 10.0

# SQLSTATE classes that say the database is not there right now, rather than that the query is
# wrong: 08 connection exception, 57P operator intervention (shutdown, crash, starting up).
UNAVAILABLE_SQLSTATES = ("08", "57P")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot serve us right now (restarting, failing over,
    or SQLite still locked after the busy timeout): worth a 503 and a retry, not a 500.

    The pool's pre-ping and the worker's retries recover by themselves once it is back.
    """
    if isinstance(exc, ConnectionError):  # asyncpg lets the socket's error through on connect
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith(UNAVAILABLE_SQLSTATES):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode is not None:  # None: each statement is its own transaction (read sessions)
            connection.connection.dbapi_connection.begin(mode)


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it has sat idle for a while.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip (about a sixth of a
    webhook acknowledgement's) to guard against connections that died while idle, which busy
    connections rarely do. A connection that died in use (PostgreSQL restarted under traffic)
    fails its statement instead; SQLAlchemy then invalidates the whole pool, the request is
    answered 503 with Retry-After (providers and the worker retry) and the next checkout
    connects afresh. See docs/adr/0009-round-trips-on-the-hot-paths.md.
    """
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and checks out again
            raise DisconnectionError(str(exc)) from exc


async def one_statement_alone(session: AsyncSession) -> None:
    """Declare that this session's work is a single statement: on PostgreSQL it then runs
    without a transaction around it (one statement is atomic by itself, and BEGIN and COMMIT
    would be two more round trips). SQLite keeps its IMMEDIATE transaction, which serialises
    writers. Call it before the statement; anything the session runs after it also commits
    on its own, so it is only for sessions that run exactly one."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


# Connections one process keeps to PostgreSQL. All are opened on demand and then kept: a pool
# that grew under a burst and closed the extra connections afterwards (SQLAlchemy's overflow)
# would open them again at the next one, paying PostgreSQL's backend start, the driver's
# handshake and its statement preparation just when the process is busiest (about 7 % of the
# web process's CPU under S1's bursts). Past this many, a session waits for a connection.
POOL_SIZE = 20


def create_engine(
    database_url: str, *, pool_size: int = POOL_SIZE, echo: bool = False
) -> AsyncEngine:
    url = make_url(async_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            echo=echo,
            module=sqlite_driver.dbapi(),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=0, pool_recycle=1800
    )
    _ping_after_idle(engine)
    return engine


def create_nullpool_engine(database_url: str) -> AsyncEngine:
    """An engine without pooling, for one-off administrative work (migrations, tests)."""
    url = make_url(async_database_url(database_url))
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, poolclass=NullPool)
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        module=sqlite_driver.dbapi(),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    _configure_sqlite(engine)
    return engine


@dataclass(frozen=True)
class Database:
    """The engine with its two session factories: writers and readers."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self.read_sessions() as session:
            yield session


def open_database(database_url: str, *, pool_size: int = POOL_SIZE, echo: bool = False) -> Database:
    engine = create_engine(database_url, pool_size=pool_size, echo=echo)
    # Readers run without a transaction: each statement takes its own snapshot, as it would at
    # PostgreSQL's READ COMMITTED anyway, so BEGIN and ROLLBACK would be two round trips (on
    # SQLite, two hops to the connection's thread) that buy nothing (ADR 0009). Nothing may
    # write through a read session on either database.
    reader = (
        engine.execution_options(sqlite_begin=None)
        if engine.dialect.name == "sqlite"
        else engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    return Database(
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        read_sessions=async_sessionmaker(reader, expire_on_commit=False),
    )
