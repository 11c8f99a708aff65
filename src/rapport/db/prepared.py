"""Statements of the hot paths, compiled once and sent straight to the driver (ADR 11).

SQLAlchemy's execution path (execution context, cursor result, row processing, events) costs
about 100 to 250 µs of CPU per statement in a busy process, against 20 to 40 µs for the driver
itself, and a webhook shown on an agent's screen takes about fifteen statements. A `Prepared`
statement is a Core statement built once, at import; on first use with a dialect it is compiled
once into its SQL, the order of its parameters and SQLAlchemy's own type processors for its
parameters and result columns (`TypeEngine.bind_processor` / `result_processor`, so a
datetime, an enum or JSON reads and writes exactly as through the ORM). Each call then runs on
the session's own connection and transaction, through the same adapted driver cursor that
SQLAlchemy would use, so BEGIN, savepoints, the asyncpg statement cache and the SQLite driver's
rules (ADR 10) all hold.

What stays the same as `session.execute` of a Core statement: no autoflush (Core statements
have none), errors arrive as SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), a
connection that died is invalidated, and `before_cursor_execute` listeners see every statement
(the statement counts of the tests, the plan checks of the benchmarks). What it does not do:
lists for `IN` (expanding parameters), Python-side column defaults, executemany. Statements
needing those go through `session.execute`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per positional parameter: its name, its default (a literal in the statement) and its
    # type's bind processor.
    names: tuple[str, ...]
    defaults: tuple[Any, ...]
    binds: tuple[_Processor, ...]
    # The result columns that have a processor, by position.
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    row: type[tuple[Any, ...]]


_REQUIRED = object()


class Prepared:
    """A Core statement sent through the session's driver connection; see the module."""

    def __init__(self, statement: Executable, *, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    async def all(
        self, session: AsyncSession, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        return await self._run(session, params or {})

    async def first(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> Any:
        rows = await self._run(session, params or {})
        return rows[0] if rows else None

    async def scalar(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = await self._run(session, params or {})
        return rows[0][0] if rows else None

    async def _run(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        connection = await _connection(session)
        sync = connection.sync_connection
        assert sync is not None
        dialect = sync.dialect
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        args = tuple(
            _value(params, name, default, bind)
            for name, default, bind in zip(
                compiled.names, compiled.defaults, compiled.binds, strict=True
            )
        )
        if sync._has_events or sync.engine._has_events:
            for listener in sync.dispatch.before_cursor_execute:
                listener(sync, None, compiled.sql, args, None, False)
        adapted = sync.connection.dbapi_connection
        assert adapted is not None
        cursor = adapted.cursor()
        try:
            await _execute(cursor, compiled.sql, args)
        except Exception as error:
            await _raise_as_sqlalchemy(connection, dialect, adapted, error, compiled.sql, args)
        if cursor.description is None:
            return []
        make, results = compiled.row._make, compiled.results  # type: ignore[attr-defined]
        if not results:
            return [make(raw) for raw in cursor._rows]
        rows = []
        for raw in cursor._rows:
            values = list(raw)
            for index, process in results:
                values[index] = process(values[index])
            rows.append(make(values))
        return rows

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = cast(ClauseElement, self.statement)
        compiled = statement.compile(dialect=dialect, column_keys=self.column_keys)
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("a prepared statement cannot apply Python-side column defaults")
        names = tuple(compiled.positiontup or ())
        binds: list[BindParameter[Any]] = [compiled.binds[name] for name in names]
        if any(bind.expanding or bind.literal_execute for bind in binds):
            raise ValueError("a prepared statement takes no lists (expanding IN parameters)")
        if any(bind.callable is not None for bind in binds):
            raise ValueError("a prepared statement takes no values computed at execution")
        # What comes back: a SELECT's columns, or what an INSERT, UPDATE or DELETE returns
        # (including the primary key a dialect returns of its own accord).
        dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
        returning = compiled.effective_returning if dml else None
        selected = getattr(self.statement, "exported_columns", ())
        columns: list[Any] = list(returning) if returning else list(selected)
        keys = [str(column.key) for column in columns]
        made = _Compiled(
            sql=compiled.string,
            names=names,
            defaults=tuple(_REQUIRED if bind.required else bind.effective_value for bind in binds),
            binds=tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
            results=tuple(
                (index, process)
                for index, column in enumerate(columns)
                if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
            ),
            row=namedtuple("Row", keys, rename=True),
        )
        self._compiled[dialect.name] = made
        return made


async def _connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, remembered for its current transaction and savepoint:
    `session.connection()` is a trip through SQLAlchemy's greenlet machinery each time, and
    the first one inside a `begin_nested()` is what emits its SAVEPOINT."""
    sync = session.sync_session
    current = (sync.get_transaction(), sync.get_nested_transaction())
    remembered = session.info.get(_REMEMBERED)
    if current[0] is not None and remembered is not None and remembered[0] == current:
        return remembered[1]  # type: ignore[no-any-return]
    connection = await session.connection()
    session.info[_REMEMBERED] = (
        (sync.get_transaction(), sync.get_nested_transaction()),
        connection,
    )
    return connection


_REMEMBERED = "rapport.prepared.connection"


def _value(params: Mapping[str, Any], name: str, default: Any, bind: _Processor) -> Any:
    value = params.get(name, default)
    if value is _REQUIRED:
        raise ValueError(f"a value is required for parameter {name!r}")
    return value if bind is None else bind(value)


async def _execute(cursor: Any, sql: str, args: tuple[Any, ...]) -> None:
    """The adapted cursor's own asynchronous execute (what its `execute` waits for)."""
    run = getattr(cursor, "_prepare_and_execute", None) or cursor._execute_async
    await run(sql, args)


async def _raise_as_sqlalchemy(
    connection: Any, dialect: Dialect, adapted: Any, error: Exception, sql: str, args: Any
) -> None:
    """Raise `error` as SQLAlchemy would have: the driver's error translated to the DBAPI's,
    wrapped in SQLAlchemy's class for it, the connection invalidated if it died."""
    dbapi = dialect.loaded_dbapi
    if not isinstance(error, dbapi.Error):
        try:
            adapted._handle_exception(error)
        except Exception as translated:
            error = translated
    if not isinstance(error, dbapi.Error):
        raise error
    gone = dialect.is_disconnect(error, adapted, None)
    if gone:
        await connection.invalidate(error)
    raise DBAPIError.instance(
        sql, args, error, dbapi.Error, connection_invalidated=gone, dialect=dialect
    ) from error
