"""Running Alembic migrations from Rapport (the CLI, tests and readiness checks)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from rapport.db.engine import create_nullpool_engine


def migrations_dir() -> Path:
    """`migrations/` of a source checkout, or the copy packaged inside an installed wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_migrations", package.parents[1] / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("Rapport's migrations folder is missing from this installation")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def _run(connection: Connection, config: Config, action: str, revision: str) -> None:
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    await _migrate(database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await _migrate(database_url, "downgrade", revision)


async def _migrate(database_url: str, action: str, revision: str) -> None:
    config = alembic_config(database_url)
    engine = create_nullpool_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run, config, action, revision)
            await conn.commit()
    finally:
        await engine.dispose()


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return set(script.get_heads())


def current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())
