"""The visitor sessions revision upgrades and downgrades, and matches the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rapport.db.engine import create_nullpool_engine
from rapport.db.migrate import downgrade, upgrade
from rapport.domain.models import Base


async def test_upgrade_downgrade_and_no_drift(db_url):
    engine = create_nullpool_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert [d for d in diff if "visitor_sessions" in str(d)] == []
        await downgrade(db_url, "0001")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "visitor_sessions" not in tables
        await upgrade(db_url)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "visitor_sessions" in tables
    finally:
        await engine.dispose()
