"""Small query helpers that hide dialect differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
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
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, or None when it existed."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        builder(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict_columns), index_where=conflict_where)
        .returning(table.c.id)
    )
    result = await session.execute(stmt)
    row = result.first()
    return int(row[0]) if row else None
