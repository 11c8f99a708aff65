"""Statements sent straight to the driver: the same rows, transaction, savepoints, errors and
statement listeners as `session.execute`, on both databases."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from rapport.db.base import BigId, JsonDoc
from rapport.db.helpers import insert_rows
from rapport.db.prepared import Prepared
from rapport.db.types import UTCDateTime

_META = MetaData()
_NOTES = Table(
    "prepared_notes",
    _META,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(40), unique=True, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("doc", JsonDoc, nullable=False),
    Column("flag", Boolean, nullable=False),
)
_DEFAULTED = Table(
    "prepared_defaulted",
    _META,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("v", String(10), default="python-side"),
)
_ADD = Prepared(
    insert(_NOTES)
    .values(
        name=bindparam("name"),
        at=bindparam("at"),
        doc=bindparam("doc"),
        flag=bindparam("flag"),
    )
    .returning(_NOTES.c.id)
)
_BY_NAME = Prepared(
    select(_NOTES.c.id, _NOTES.c.name, _NOTES.c.at, _NOTES.c.doc, _NOTES.c.flag).where(
        _NOTES.c.name == bindparam("name")
    )
)
_COUNT = text("SELECT count(*) FROM prepared_notes")
AT = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def notes(services):  # type: ignore[no-untyped-def]
    async with services.db.engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    return services


async def _add(session, name: str, **extra):  # type: ignore[no-untyped-def]
    values = {"name": name, "at": AT, "doc": {"tags": ["a", "ñ"], "n": 1}, "flag": True}
    return await _ADD.scalar(session, {**values, **extra})


async def test_rows_read_and_write_as_through_sqlalchemy(notes):
    async with notes.session() as session:
        new_id = await _add(session, "ana")
        await session.commit()
    async with notes.read_session() as session:
        row = await _BY_NAME.first(session, {"name": "ana"})
        orm = (
            await session.execute(_BY_NAME.statement, {"name": "ana"})
        ).one()  # the same statement through SQLAlchemy
        assert await _BY_NAME.first(session, {"name": "nobody"}) is None
    assert tuple(row) == tuple(orm)
    assert row.id == new_id and row.name == "ana" and row.flag is True
    assert row.at == AT and row.at.tzinfo is not None  # aware, in UTC, to the microsecond
    assert row.doc == {"tags": ["a", "ñ"], "n": 1}


async def test_statements_share_the_sessions_transaction_and_savepoints(notes, backend):
    async with notes.session() as session:
        await _add(session, "kept")
        if backend == "postgres":  # SQLite's writers are serialised; Rapport takes none there
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await _add(session, "inner")
                    await _add(session, "kept")  # a duplicate: the savepoint rolls back
            # The transaction goes on after the savepoint's rollback.
            await _add(session, "after")
        await session.commit()
    async with notes.session() as session:
        await _add(session, "dropped")
        await session.rollback()
    async with notes.read_session() as session:
        names = (await session.execute(select(_NOTES.c.name).order_by(_NOTES.c.id))).scalars()
        assert list(names) == (["kept", "after"] if backend == "postgres" else ["kept"])


async def test_errors_arrive_as_sqlalchemys(notes):
    async with notes.session() as session:
        await _add(session, "twice")
        with pytest.raises(IntegrityError, match="prepared_notes"):
            await _add(session, "twice")
        await session.rollback()
    async with notes.session() as session:  # the connection went back to the pool usable
        await _add(session, "again")
        await session.commit()


async def test_listeners_see_every_statement(notes):
    seen: list[str] = []

    def capture(_conn, _cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
        seen.append(statement)

    engine = notes.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with notes.session() as session:
            await _add(session, "heard")
            await session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert any(statement.startswith("INSERT INTO prepared_notes") for statement in seen)


async def test_what_it_cannot_send_is_refused_up_front(notes):
    listed = Prepared(select(_NOTES.c.id).where(_NOTES.c.id.in_(bindparam("ids", expanding=True))))
    defaulted = Prepared(insert(_DEFAULTED), column_keys=[])  # `v` has a Python default
    async with notes.session() as session:
        with pytest.raises(ValueError, match="lists"):
            await listed.all(session, {"ids": [1, 2]})
        with pytest.raises(ValueError, match="required"):
            await _ADD.all(session, {"name": "no time"})
        with pytest.raises(ValueError, match="defaults"):
            await defaulted.all(session)
        await session.rollback()


async def test_updates_report_their_rows(notes):
    rename = Prepared(
        update(_NOTES)
        .where(_NOTES.c.name == bindparam("old"))
        .values(name=bindparam("new"))
        .returning(_NOTES.c.id)
    )
    async with notes.session() as session:
        new_id = await _add(session, "before")
        assert await rename.all(session, {"old": "before", "new": "after"}) == [(new_id,)]
        assert await rename.all(session, {"old": "missing", "new": "x"}) == []
        await session.commit()


async def test_insert_rows_few_in_one_statement_many_in_executemany(notes):
    def row(n: int) -> dict[str, object]:
        return {"name": f"row {n}", "at": AT, "doc": {"n": n}, "flag": n % 2 == 0}

    async with notes.session() as session:
        await insert_rows(session, _NOTES, [row(0)])
        await insert_rows(session, _NOTES, [row(n) for n in range(1, 4)])
        await insert_rows(session, _NOTES, [row(n) for n in range(4, 24)])
        with pytest.raises(ValueError, match="give exactly"):
            await insert_rows(session, _NOTES, [{"name": "partial"}])
        await session.commit()
    async with notes.read_session() as session:
        rows = (await session.execute(select(_NOTES.c.name, _NOTES.c.doc, _NOTES.c.flag))).all()
    assert sorted((r.name, r.doc["n"], r.flag) for r in rows) == sorted(
        (f"row {n}", n, n % 2 == 0) for n in range(24)
    )


async def test_a_connection_that_died_is_invalidated(notes, backend):
    if backend != "postgres":
        pytest.skip("SQLite's connections are files; nothing can cut them")
    async with notes.session() as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with notes.read_session() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as raised:
            await _add(session, "lost")
        assert raised.value.connection_invalidated
        await session.rollback()
    async with notes.session() as session:  # a fresh connection serves the next session
        await _add(session, "next")
        await session.commit()
    async with notes.read_session() as session:
        assert await session.scalar(_COUNT) == 1


async def test_a_row_becomes_the_sessions_object(services, factory):
    from rapport.db.helpers import object_of_row
    from rapport.domain.conversations.models import Conversation, Status

    account = await factory.account()
    conversation = (await factory.receive(account, await factory.api_inbox(account))).conversation
    by_id = Prepared(
        select(Conversation.__table__).where(Conversation.__table__.c.id == bindparam("id"))
    )
    async with services.session() as session:
        row = await by_id.first(session, {"id": conversation.id})
        loaded = object_of_row(session, Conversation, row)
        assert object_of_row(session, Conversation, row) is loaded  # the one the session holds
        assert await session.get(Conversation, conversation.id) is loaded
        assert not session.dirty
        loaded.status = Status.resolved  # changed and flushed like any loaded object
        await session.commit()
    async with services.read_session() as session:
        again = await session.get(Conversation, conversation.id)
        assert again is not None and again.status == Status.resolved
        assert again.subject == conversation.subject
