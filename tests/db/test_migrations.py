"""Migrations: upgrade from empty, downgrade to empty, and the models agree with the schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rapport.db.engine import create_nullpool_engine
from rapport.db.migrate import downgrade, head_revisions, upgrade
from rapport.domain.models import Base


async def _tables(url: str) -> set[str]:
    engine = create_nullpool_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def test_downgrade_to_empty_and_upgrade_again(db_url):
    assert await _tables(db_url) == set(Base.metadata.tables)
    await downgrade(db_url, "base")
    assert await _tables(db_url) == set()
    await upgrade(db_url)
    assert await _tables(db_url) == set(Base.metadata.tables)


async def test_models_match_the_migrated_schema(db_url):
    """A model change without its migration fails here (autogenerate finds a difference)."""
    engine = create_nullpool_engine(db_url)

    def diff(conn):
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []


def test_one_head():
    assert len(head_revisions()) == 1
