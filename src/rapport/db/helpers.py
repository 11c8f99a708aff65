"""Small query helpers that hide dialect differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CTE, Select, Table, bindparam, select
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from rapport.db.base import Base
from rapport.db.prepared import Prepared


async def insert_ignore(
    session: AsyncSession,
    table: Table,
    values: dict[str, Any],
    *,
    conflict_columns: Sequence[str],
    conflict_where: ColumnElement[bool] | None = None,
    only_if: ColumnElement[bool] | None = None,
    only_if_values: Mapping[str, Any] | None = None,
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, or None when it existed.

    `only_if` is a condition the row is inserted under, in the same statement (built once,
    its bound values in `only_if_values`); None is then also the answer when it did not hold.
    The statement is built once per shape, with the values bound."""
    dialect = session.get_bind().dialect.name
    statement = _insert_ignore_statement(
        dialect, table, tuple(values), tuple(conflict_columns), conflict_where, only_if
    )
    new_id = await statement.scalar(session, {**values, **(only_if_values or {})})
    return int(new_id) if new_id is not None else None


_INSERT_IGNORE: dict[tuple[Any, ...], Prepared] = {}


def _insert_ignore_statement(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    conflict_where: ColumnElement[bool] | None,
    only_if: ColumnElement[bool] | None,
) -> Prepared:
    key = (dialect, table.name, columns, conflict, conflict_where, only_if)
    statement = _INSERT_IGNORE.get(key)
    if statement is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        insert = (
            builder(table).values({name: bindparam(name) for name in columns})
            if only_if is None
            else builder(table).from_select(list(columns), typed_row(table, columns).where(only_if))
        )
        statement = _INSERT_IGNORE[key] = Prepared(
            insert.on_conflict_do_nothing(
                index_elements=list(conflict), index_where=conflict_where
            ).returning(table.c.id)
        )
    return statement


def typed_row(table: Table, columns: Iterable[str]) -> Select[Any]:
    """SELECT :a, :b, ... with each parameter typed as its column, for INSERT ... SELECT."""
    return select(*(bindparam(name, type_=table.c[name].type) for name in columns))


def table_of(model: type[Any]) -> Table:
    """A mapped class's table, for Core statements that skip the ORM's loading and flushing."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def sync_loaded(
    session: AsyncSession, model: type[Any], ident: int, values: dict[str, Any]
) -> None:
    """After a Core UPDATE of one row: the session's loaded object of that row, if it holds one,
    takes the written values as its committed state (as an ORM flush would have left it)."""
    loaded = session.identity_map.get(identity_key(model, ident))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


_Row = TypeVar("_Row", bound=Base)


def object_of_row(session: AsyncSession, model: type[_Row], row: Any) -> _Row:
    """The session's object for a row of every column of `model`'s table (read as a plain
    row): the one the session already holds, as an ORM query would return it, or a new one
    in the identity map as if loaded. No autoflush, as for any Core statement."""
    held = session.identity_map.get(identity_key(model, row.id))
    if held is not None:
        return held
    return _as_loaded(session, model, row._asdict())


def _as_loaded(session: AsyncSession, model: type[_Row], values: dict[str, Any]) -> _Row:
    """A new object of every column's value, in the session as if loaded from the database."""
    obj = model(**values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


_INSERTS: dict[tuple[type[Any], CTE | None], tuple[Prepared, frozenset[str]]] = {}


async def insert_object(
    session: AsyncSession,
    model: type[_Row],
    values: dict[str, Any],
    *,
    with_cte: CTE | None = None,
    params: Mapping[str, Any] | None = None,
) -> _Row:
    """INSERT one row with a Core statement (no unit-of-work flush) and return its object, in
    the session's identity map as if the ORM had flushed it. `values` names every column but
    the generated id, so the object never has to load one (async sessions cannot).

    `with_cte`: a data-modifying CTE sent in the same statement (PostgreSQL), its values bound
    from `params`; none of its parameters may be named like a column."""
    key = (model, with_cte)
    if key not in _INSERTS:
        table = table_of(model)
        names = frozenset(table.c.keys()) - {"id"}
        if with_cte is None:
            prepared = Prepared(core_insert(table).returning(table.c.id), column_keys=sorted(names))
        else:  # the values named outright: `column_keys` would reach the CTE's SET clause too
            values_bound = {name: bindparam(name, type_=table.c[name].type) for name in names}
            prepared = Prepared(
                core_insert(table).values(values_bound).returning(table.c.id).add_cte(with_cte)
            )
        _INSERTS[key] = (prepared, names)
    statement, columns = _INSERTS[key]
    if values.keys() != columns:
        raise ValueError(f"{model.__name__}: give exactly {sorted(columns)}")
    new_id = await statement.scalar(session, {**values, **params} if params else values)
    return _as_loaded(session, model, {"id": new_id, **values})


# Up to this many rows go in one multi-row INSERT built once per count; more are an executemany.
_FEW_ROWS = 8
_ROW_INSERTS: dict[tuple[str, int], tuple[Prepared, tuple[str, ...]]] = {}


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT rows that name every column but the generated id, without reading ids back: a
    few rows in one statement sent straight to the driver (`Prepared`), more as an
    executemany. For logs appended to and not read back through the session."""
    if not rows:
        return
    if len(rows) > _FEW_ROWS:
        await session.execute(core_insert(table), rows)
        return
    key = (table.name, len(rows))
    if key not in _ROW_INSERTS:
        columns = tuple(column.key for column in table.c if column.key != "id")
        values = row_binds(table, columns, len(rows))
        _ROW_INSERTS[key] = (Prepared(core_insert(table).values(values).inline()), columns)
    statement, columns = _ROW_INSERTS[key]
    for row in rows:
        if row.keys() != set(columns):
            raise ValueError(f"{table.name}: give exactly {sorted(columns)}")
    await statement.all(session, row_params(columns, rows))


def row_binds(
    table: Table, columns: Sequence[str], count: int
) -> list[dict[str, BindParameter[Any]]]:
    """The bound values of a multi-row VALUES of `count` rows, built once per count: row n's
    `column` is the parameter `column__n` (`row_params` fills them)."""
    return [
        {name: bindparam(f"{name}__{n}", type_=table.c[name].type) for name in columns}
        for n in range(count)
    ]


def row_params(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of `row_binds` for these rows."""
    return {f"{name}__{n}": row[name] for n, row in enumerate(rows) for name in columns}
