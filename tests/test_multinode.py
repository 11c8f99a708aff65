"""Two web nodes and a worker against one PostgreSQL and one Redis, as in production.

A message posted to node A's API channel reaches an agent connected to node B; Redis is
restarted in the middle and the agent's client catches up with no event lost.
"""

import asyncio

import httpx
import pytest

from rapport.services import build_services
from tests.conftest import TEST_SECRET, make_settings
from tests.support.agents import AgentSocket
from tests.support.factory import Factory, signed_api_call
from tests.support.live import free_port
from tests.support.processes import RapportProcess, RedisServer, rapport_env, running, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def backend():
    return "postgres"


async def _post(base, inbox, n):
    raw, headers = signed_api_call(
        {"id": f"m-{n}", "contact": {"id": f"user-{n % 3}"}, "content": f"message {n}"}
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base}/hooks/api/{inbox.id}", content=raw, headers=headers)
    assert response.status_code == 200


async def test_two_nodes_one_worker_and_a_redis_restart(db_url, tmp_path, redis_url):
    redis = RedisServer(tmp_path)
    redis.start()
    settings = make_settings(db_url, tmp_path, redis_url=redis.url)
    env = rapport_env(
        env="test",
        database_url=db_url,
        redis_url=redis.url,
        secret_key=TEST_SECRET,
        redis_prefix=settings.redis_prefix,
        storage_dir=str(tmp_path / "files"),
        http_allow_private="true",
        log_format="json",
    )
    port_a, port_b = free_port(), free_port()
    node_a = RapportProcess(["serve", "--port", str(port_a)], env, tmp_path / "a.log")
    node_b = RapportProcess(["serve", "--port", str(port_b)], env, tmp_path / "b.log")
    worker = RapportProcess(["worker"], env, tmp_path / "worker.log")
    base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"

    services = build_services(settings, with_hub=False)
    factory = Factory(services)
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    user = await factory.user(account)

    with running(node_a, node_b, worker, redis):
        for process in (node_a, node_b, worker):
            process.start()
        await asyncio.gather(wait_healthy(base_a), wait_healthy(base_b))
        agent = AgentSocket(base_b, user)
        await agent.connect()

        await _post(base_a, inbox, 1)
        first = await agent.wait_for(lambda e: e["type"] == "message.created", timeout=20)
        assert first["data"]["direction"] == "incoming"

        redis.stop()  # Redis goes away under traffic...
        for n in range(2, 7):
            await _post(base_a, inbox, n)
        redis.start()  # ...and comes back on the same port
        for n in range(7, 9):
            await _post(base_a, inbox, n)

        def all_created(_e):
            return sum(e["type"] == "message.created" for e in agent.events) >= 8

        await agent.wait_for(all_created, timeout=30)
        seqs = [e["seq"] for e in agent.events]
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event was lost or doubled"
        await agent.close()
    await services.stop()
