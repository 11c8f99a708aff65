"""Small query helpers that hide dialect differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Insert, Select, Table, bindparam, select
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement

from rapport.db.base import Base


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
    result = await session.execute(statement, {**values, **(only_if_values or {})})
    row = result.first()
    return int(row[0]) if row else None


_INSERT_IGNORE: dict[tuple[Any, ...], Any] = {}


def _insert_ignore_statement(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    conflict_where: ColumnElement[bool] | None,
    only_if: ColumnElement[bool] | None,
) -> Any:
    key = (dialect, table.name, columns, conflict, conflict_where, only_if)
    statement = _INSERT_IGNORE.get(key)
    if statement is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        insert = (
            builder(table).values({name: bindparam(name) for name in columns})
            if only_if is None
            else builder(table).from_select(list(columns), typed_row(table, columns).where(only_if))
        )
        statement = _INSERT_IGNORE[key] = insert.on_conflict_do_nothing(
            index_elements=list(conflict), index_where=conflict_where
        ).returning(table.c.id)
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
_INSERTS: dict[type[Any], tuple[Insert, frozenset[str]]] = {}


async def insert_object(session: AsyncSession, model: type[_Row], values: dict[str, Any]) -> _Row:
    """INSERT one row with a Core statement (no unit-of-work flush) and return its object, in
    the session's identity map as if the ORM had flushed it. `values` names every column but
    the generated id, so the object never has to load one (async sessions cannot)."""
    if model not in _INSERTS:
        table = table_of(model)
        _INSERTS[model] = (
            core_insert(table).returning(table.c.id),
            frozenset(table.c.keys()) - {"id"},
        )
    statement, columns = _INSERTS[model]
    if values.keys() != columns:
        raise ValueError(f"{model.__name__}: give exactly {sorted(columns)}")
    new_id = (await session.execute(statement, values)).scalar_one()
    obj = model(id=new_id, **values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj
