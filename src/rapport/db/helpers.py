"""Small query helpers that hide dialect differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
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
