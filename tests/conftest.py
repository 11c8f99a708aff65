"""Fixtures: a fresh database per test on SQLite and PostgreSQL, the running parts, an HTTP client.

PostgreSQL and Redis tests skip with a reason when the service is unreachable, unless
REQUIRE_SERVICES=1 (CI), where the skip becomes a failure. Each run creates its own databases
with random names and drops them afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from rapport.db.engine import create_nullpool_engine
from rapport.db.migrate import upgrade
from rapport.services import Services, build_services
from rapport.settings import Settings
from rapport.web.app import create_app
from rapport.workers.relay import Worker
from tests.support.factory import Factory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("RAPPORT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
RUN_ID = uuid.uuid4().hex[:8]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, available: bool) -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when a service is missing."""
    if available:
        return
    message = f"{name} is not reachable"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and REQUIRE_SERVICES=1")
    pytest.skip(f"{message}; start it to run these tests")


PG_UP = _reachable("127.0.0.1", 5432)
REDIS_UP = _reachable("127.0.0.1", 6379)


@pytest.fixture
def chromium() -> str:
    """The system Chromium for Playwright (never a downloaded browser)."""
    path = shutil.which("chromium")
    need_service("Chromium (make system-deps)", path is not None)
    assert path is not None
    return path


# --- databases ---------------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    engine = create_nullpool_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    if not PG_UP:
        yield None
        return
    name = f"rapport_tpl_{RUN_ID}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(upgrade(_pg_url(name)))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(
    backend: str, sqlite_template: Path, pg_template: str | None, tmp_path: Path
) -> AsyncIterator[str]:
    """A migrated, empty database of its own for this test."""
    if backend == "sqlite":
        path = tmp_path / "rapport.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    need_service("PostgreSQL", pg_template is not None)
    name = f"rapport_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the running parts -------------------------------------------------------------------------


def make_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": db_url,
        "secret_key": TEST_SECRET,
        "public_url": "http://testserver",
        "storage_dir": tmp_path / "files",
        "http_allow_private": True,
        "login_rate_limit": "1000/minute",
        "redis_url": None,
        "redis_prefix": f"rapport-test-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    running = build_services(settings, with_hub=True)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def app(settings: Settings, services: Services):  # type: ignore[no-untyped-def]
    application = create_app(settings, services=services)
    application.state.services = services
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(services: Services) -> Factory:
    return Factory(services)


@pytest.fixture
def worker(services: Services) -> Worker:
    return Worker(services, worker_id="test-worker", concurrency=4)


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", REDIS_UP)
    return REDIS_URL
