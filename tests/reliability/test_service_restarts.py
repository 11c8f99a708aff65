"""PostgreSQL and Redis restart under traffic: Rapport recovers by itself and loses nothing.

A web node and a worker run against a PostgreSQL cluster and a Redis of the test's own (the
machine's shared server must never be restarted by a test). An integration keeps posting
messages, retrying what is not acknowledged; PostgreSQL is crashed and started again mid-way,
then Redis. Nobody restarts Rapport: afterwards every message is stored once and an agent's
screen, which reconnects and resumes like app.js, has caught up with every one of them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text

from rapport.db.engine import create_nullpool_engine
from rapport.db.migrate import upgrade
from rapport.domain.conversations.models import Direction, Message
from rapport.services import build_services
from rapport.web.sandbox.common import SignedCall
from tests.conftest import make_settings, need_service
from tests.support.agents import AgentSocket
from tests.support.factory import Factory, signed_api_call
from tests.support.live import eventually, free_port
from tests.support.processes import (
    PrivatePostgres,
    RapportProcess,
    RedisServer,
    postgres_bindir,
    running,
    settings_env,
    wait_healthy,
)
from tests.support.senders import Sending, deliver_until_acked

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.redis]

MESSAGES = 300


@pytest.fixture
async def private_postgres():
    bindir = postgres_bindir()
    need_service("PostgreSQL server binaries (/usr/lib/postgresql/*/bin)", bindir is not None)
    if os.geteuid() == 0:
        need_service("runuser, to run PostgreSQL as postgres", shutil.which("runuser") is not None)
    assert bindir is not None
    cluster = PrivatePostgres(bindir)
    try:
        await asyncio.to_thread(cluster.init)
        await asyncio.to_thread(cluster.start)
        engine = create_nullpool_engine(cluster.admin_url)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text('CREATE DATABASE "rapport"'))
        await engine.dispose()
        await upgrade(cluster.url("rapport"))
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)


async def follow(agent: AgentSocket, done: Callable[[], bool], within: float) -> None:
    """Read the agent's screen until `done`, reconnecting (and resuming) whenever it drops."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("the agent's screen never caught up")
        try:
            await agent.wait_for(lambda _event: done(), timeout=remaining)
        except TimeoutError:
            raise
        except Exception:  # the socket dropped (or could not reconnect yet): resume like app.js
            await agent.disconnect()
            await asyncio.sleep(0.2)
            try:
                await agent.connect()
            except Exception:
                continue


async def test_postgres_and_redis_restarts_under_traffic(
    private_postgres: PrivatePostgres, redis_url, tmp_path
):
    pg = private_postgres
    redis = RedisServer(tmp_path)
    redis.start()
    settings = make_settings(pg.url("rapport"), tmp_path, redis_url=redis.url)
    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    user = await factory.user(account)
    await services.stop()  # the test's own pool must not hide what Rapport's pools do

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    calls = {}
    for n in range(MESSAGES):
        raw, headers = signed_api_call(
            {"id": f"m-{n}", "contact": {"id": f"user-{n % 7}"}, "content": f"message {n}"}
        )
        calls[f"m-{n}"] = SignedCall(f"{base}/hooks/api/{inbox.id}", raw, headers)

    env = settings_env(settings)
    web = RapportProcess(["serve", "--port", str(port)], env, tmp_path / "web.log")
    worker = RapportProcess(["worker"], env, tmp_path / "worker.log")
    with running(web, worker, redis):
        web.start()
        worker.start()
        await wait_healthy(base)
        agent = AgentSocket(base, user)
        await agent.connect()

        def created() -> set[str]:
            return {e["data"]["message_id"] for e in agent.events if e["type"] == "message.created"}

        # Well inside the outbox lease (60 s): a job the database outage failed must come back
        # when the database does, not when its lease runs out.
        screen = asyncio.create_task(follow(agent, lambda: len(created()) >= MESSAGES, within=45))
        sending = Sending(total=MESSAGES)
        traffic = asyncio.create_task(deliver_until_acked(calls, sending, connections=4))

        async def acked(count: int):
            return len(sending.acked) >= count

        await eventually(lambda: acked(MESSAGES // 4), within=60)
        await asyncio.to_thread(pg.stop, "immediate")  # a crash: every connection is cut
        # Keep it down until both the sender and the worker have run into the outage.
        failures_before = sum(sending.failures.values())
        await eventually(lambda: failing_since(sending, failures_before), within=30)
        await eventually(lambda: worker_noticed(tmp_path / "worker.log"), within=30)
        await asyncio.to_thread(pg.start)

        await eventually(lambda: acked(MESSAGES * 2 // 3), within=60)
        await asyncio.to_thread(redis.stop)
        await asyncio.to_thread(redis.start)  # same port

        await asyncio.wait_for(traffic, 120)
        await asyncio.wait_for(screen, 120)
        await agent.close()

        async def stored():
            checker = build_services(settings, with_hub=False)
            try:
                async with checker.read_session() as session:
                    rows = await session.execute(
                        select(Message.id, Message.provider_id).where(
                            Message.inbox_id == inbox.id, Message.direction == Direction.incoming
                        )
                    )
                    return rows.all()
            finally:
                await checker.stop()

        rows = await stored()
    # While the database was away the provider was asked to retry (503), never shown a crash.
    assert set(sending.failures) == {"503"}
    assert "Exception in ASGI application" not in (tmp_path / "web.log").read_text()
    provider_ids = [r.provider_id for r in rows]
    assert sorted(provider_ids) == sorted(calls), "a message was lost or doubled"
    assert created() >= {r.id for r in rows}, "the agent's screen missed a message"
    seqs = [e["seq"] for e in agent.events]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event was lost or doubled"


async def failing_since(sending: Sending, before: int) -> bool:
    return sum(sending.failures.values()) > before


async def worker_noticed(log: Path) -> bool:
    """A job failed, or the idle worker could not claim: it has met the outage."""
    text = await asyncio.to_thread(log.read_text)
    return '"worker.job_failed"' in text or '"worker.claim_failed"' in text
