"""The merged-into revision upgrades and downgrades, and matches the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rapport.db.engine import create_nullpool_engine
from rapport.db.migrate import downgrade, upgrade
from rapport.domain.models import Base


async def _columns(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("conversations")}
        )


async def test_upgrade_downgrade_and_no_drift(db_url):
    engine = create_nullpool_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert [d for d in diff if "merged_into" in str(d)] == []
        await downgrade(db_url, "c4m1")
        assert "merged_into_id" not in await _columns(engine)
        await upgrade(db_url)
        assert "merged_into_id" in await _columns(engine)
    finally:
        await engine.dispose()
