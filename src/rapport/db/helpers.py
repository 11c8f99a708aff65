"""Small query helpers that hide dialect differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement


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

    `only_if` is a condition the row is inserted under, in the same statement (its bound
    values in `only_if_values`); None is then also the answer when it did not hold."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if only_if is None:
        insert = builder(table).values(**values)
    else:
        insert = builder(table).from_select(list(values), typed_row(table, values).where(only_if))
        values = {**values, **(only_if_values or {})}
    stmt = insert.on_conflict_do_nothing(
        index_elements=list(conflict_columns), index_where=conflict_where
    ).returning(table.c.id)
    result = await session.execute(stmt, values if only_if is not None else None)
    row = result.first()
    return int(row[0]) if row else None


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


def add_persistent(session: AsyncSession, obj: object) -> None:
    """Put an object whose row a Core INSERT just wrote (every column set, primary key
    included) into the session's identity map, as if the ORM had flushed it."""
    make_transient_to_detached(obj)
    session.add(obj)
