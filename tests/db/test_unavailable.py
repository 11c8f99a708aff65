"""Which database errors mean "not there right now" (a 503 and a retry) and which are bugs."""

import pytest
from sqlalchemy import text

from rapport.db.engine import create_nullpool_engine, database_unavailable
from tests.support.live import free_port


async def test_a_database_nobody_listens_for_is_unavailable():
    engine = create_nullpool_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/rapport")
    with pytest.raises(Exception) as caught:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
    assert database_unavailable(caught.value)


async def test_a_broken_query_is_not_an_outage(db_url):
    engine = create_nullpool_engine(db_url)
    with pytest.raises(Exception) as caught:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    await engine.dispose()
    assert not database_unavailable(caught.value)


async def test_a_duplicate_is_not_an_outage(db_url):
    engine = create_nullpool_engine(db_url)
    with pytest.raises(Exception) as caught:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
    await engine.dispose()
    assert not database_unavailable(caught.value)
